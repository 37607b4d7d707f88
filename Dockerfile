# nats-autoprof container image.
#
#   docker build -t nats-autoprof .
#   docker run --rm -v "$PWD/my-config.yaml:/etc/nats-autoprof/config.yaml:ro" \
#     -v nats-autoprof-profiles:/var/lib/nats-autoprof -p 9745:9745 nats-autoprof
#
# Other commands go through the same entrypoint: `docker run --rm nats-autoprof check`,
# `docker run --rm nats-autoprof capture --help`.
#
# Both stages use the same Node.js LTS base. The build steps are the ones CI runs (.ci/run):
# `npm ci`, then `npm run build`; test/static/dockerfile.test.ts checks that they stay the same.

# ---- build: every dependency, TypeScript -> dist/ ---------------------------------------------------
FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src/ src/
RUN npm run build

# ---- runtime: production dependencies and dist/ only, as the unprivileged `node` user ---------------
FROM node:22-bookworm-slim
ENV NODE_ENV=production \
    NATS_AUTOPROF_CONFIG=/etc/nats-autoprof/config.yaml
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
    && npm cache clean --force
COPY --from=build /src/dist/ dist/
# The default configuration: one server at $NATS_MONITOR_URL, profiles in the volume below.
# Mount your own file over it (same path) for anything else.
COPY deploy/docker/config.yaml /etc/nats-autoprof/config.yaml
# The storage directory must belong to the user the daemon runs as before it becomes a volume:
# a new named volume copies this ownership.
RUN mkdir -p /var/lib/nats-autoprof \
    && chown node:node /var/lib/nats-autoprof
VOLUME ["/var/lib/nats-autoprof"]
USER node
EXPOSE 9745
# No curl in the slim image: node itself asks /healthz (the port of the default http.listen).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:9745/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM lets in-flight captures finish (up to shutdown_timeout); give `docker stop -t` more than that.
STOPSIGNAL SIGTERM
# --max-semi-space-size=4: a young generation of 8 MB instead of V8's 32 MB for a daemon whose garbage dies
# young (BENCHMARKS.md, issue 16: 24 MB less at 5,000 servers); the same flag in every launcher (package.json).
ENTRYPOINT ["node", "--max-semi-space-size=4", "/app/dist/main.js"]
CMD ["run"]
