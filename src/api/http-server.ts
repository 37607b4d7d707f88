/**
 * The daemon's HTTP listener (node:http, or node:https with http.tls): a small route table with
 * per-route access rules (open, metrics, read, write), a capped JSON body reader, and JSON errors
 * without stack traces. Handlers live in routes.ts.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { createGzip, gzip as gzipCallback, gzipSync } from 'node:zlib';
import type { HttpAuthConfig, HttpTlsConfig } from '../config/types.js';
import { UnavailableError } from '../errors.js';
import type { Logger } from '../log.js';

export const MAX_BODY_BYTES = 1024 * 1024;
/** zlib level for compressible replies (see BENCHMARKS.md, issue 19: CPU per scrape by level). */
export const GZIP_LEVEL = 1;
/**
 * Bodies up to this size are gzipped on the event loop (`gzipSync`): ~40-80 µs for a small daemon's ~20 KB
 * exposition, where the thread-pool hop of `zlib.gzip` cost ~300-400 µs of CPU per scrape (BENCHMARKS.md,
 * issue 19). Larger bodies (thousands of servers: ~600 KB, ~4 ms to compress) go to the pool so that the
 * event loop is not held.
 */
export const GZIP_SYNC_MAX_BYTES = 64 * 1024;

/**
 * open: never needs a token. metrics: needs it only with http.auth.metrics. read: needs it when a token
 * is configured. write: needs it, and answers 403 when none is configured (never open by default).
 */
export type Access = 'open' | 'metrics' | 'read' | 'write';

/** A short, bounded description of an untrusted value for an error message (never the whole value). */
export function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 100 ? `${v.slice(0, 100)}...` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return `(a ${Array.isArray(v) ? 'list' : typeof v})`;
}

export class HttpError extends Error {
  override readonly name = 'HttpError';
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

export type Reply =
  | { status: number; json: unknown; headers?: Record<string, string> }
  | {
      status: number;
      text: string;
      contentType: string;
      /** Gzip the body when the request's Accept-Encoding allows it (and only then); answers `Vary: Accept-Encoding`. */
      compressible?: boolean;
    }
  | {
      status: number;
      /**
       * The body in pieces, sent on as they come (gzipped when the request allows it) so that the whole text is
       * never held at once; a body that ends within GZIP_SYNC_MAX_BYTES is answered as `text` would be.
       */
      chunks: AsyncIterable<string>;
      contentType: string;
    }
  | { status: number; stream: Readable; size: number; contentType: string; headers?: Record<string, string> };

export interface RequestContext {
  /** Path parameters, percent-decoded and checked (no `/`, `\`, NUL). */
  params: string[];
  query: URLSearchParams;
  /** The JSON body (POST), capped at 1 MiB. */
  body(): Promise<unknown>;
}

export interface Route {
  method: 'GET' | 'POST';
  /** Matched against the raw (still percent-encoded) path; each group is a parameter. */
  path: RegExp;
  /** Bounded label for the request metric. */
  name: string;
  access: Access;
  handle(ctx: RequestContext): Promise<Reply>;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  tls: HttpTlsConfig | undefined;
  auth: () => HttpAuthConfig;
  routes: Route[];
  log: Logger;
  /** Called once per request with the route name (or `unmatched`) and the status code. */
  onRequest?: (route: string, code: number) => void;
}

const gzip = promisify(gzipCallback);

/**
 * A compressible text body: gzipped when the request accepts it. Prometheus asks for gzip: at 1000 servers the
 * exposition is about 580 KB, about 35 KB gzipped. Level 1: at N=1000 it adds ~4 ms of CPU per scrape to the
 * ~37 ms of rendering, where the default level (6) adds ~11 ms for 13 % fewer bytes (BENCHMARKS.md, issue 19).
 */
async function sendCompressible(req: IncomingMessage, res: ServerResponse, method: string, status: number, contentType: string, text: string): Promise<void> {
  const zipped = acceptsGzip(req.headers['accept-encoding']);
  const body = !zipped
    ? Buffer.from(text)
    : text.length <= GZIP_SYNC_MAX_BYTES
      ? gzipSync(text, { level: GZIP_LEVEL })
      : await gzip(text, { level: GZIP_LEVEL });
  const headers: Record<string, string | number> = { 'content-type': contentType, 'content-length': body.length, vary: 'Accept-Encoding' };
  if (zipped) headers['content-encoding'] = 'gzip';
  res.writeHead(status, headers);
  res.end(method === 'HEAD' ? undefined : body);
}

/**
 * A body in pieces. Up to GZIP_SYNC_MAX_BYTES it is gathered and sent as a compressible text. Beyond, each
 * piece goes on as it comes and is dropped: into one gzip stream (the compressed bytes, ~6 % of the text, are
 * gathered for a Content-Length), or, without gzip, to the client in chunked encoding. HEAD gets the head GET
 * would (so a gzip HEAD still renders the body, for its length).
 */
async function sendChunks(req: IncomingMessage, res: ServerResponse, method: string, reply: { status: number; chunks: AsyncIterable<string>; contentType: string }): Promise<void> {
  const it = reply.chunks[Symbol.asyncIterator]();
  let head = '';
  let next = await it.next();
  while (!next.done && head.length <= GZIP_SYNC_MAX_BYTES) {
    head += next.value;
    next = await it.next();
  }
  if (next.done) {
    await sendCompressible(req, res, method, reply.status, reply.contentType, head);
    return;
  }
  const rest = async function* (): AsyncGenerator<string> {
    yield head;
    head = '';
    while (!next.done) {
      yield next.value;
      next = await it.next();
    }
  };
  if (acceptsGzip(req.headers['accept-encoding'])) {
    const z = createGzip({ level: GZIP_LEVEL });
    const out: Buffer[] = [];
    z.on('data', (b: Buffer) => out.push(b));
    // Each piece is encoded into one scratch buffer, reused once zlib has taken the piece before: a Buffer per
    // piece (~40 KB each, ~3 MB per scrape at 5,000 servers) outlived enough young collections to be promoted.
    let scratch = Buffer.allocUnsafeSlow(64 * 1024);
    try {
      for await (const piece of rest()) {
        const size = Buffer.byteLength(piece);
        if (size > scratch.length) scratch = Buffer.allocUnsafeSlow(size);
        const n = scratch.write(piece);
        await new Promise<void>((resolve, reject) => z.write(scratch.subarray(0, n), (err) => (err ? reject(err) : resolve())));
      }
      z.end();
      await once(z, 'end');
    } catch (err) {
      // The source or zlib failed: the stream goes now, not at the next GC; the caller answers 500.
      z.destroy();
      throw err;
    }
    const body = Buffer.concat(out);
    res.writeHead(reply.status, { 'content-type': reply.contentType, 'content-length': body.length, 'content-encoding': 'gzip', vary: 'Accept-Encoding' });
    res.end(method === 'HEAD' ? undefined : body);
    return;
  }
  res.writeHead(reply.status, { 'content-type': reply.contentType, vary: 'Accept-Encoding' });
  if (method === 'HEAD') {
    res.end();
    return;
  }
  try {
    for await (const piece of rest()) if (!res.write(piece)) await once(res, 'drain');
    res.end();
  } catch (err) {
    // The head is gone: the client sees the answer cut off, not a JSON error.
    res.destroy(err as Error);
  }
}

/**
 * Whether an Accept-Encoding header accepts gzip: `gzip` (or `x-gzip`, or `*` when gzip is not named)
 * with a q-value above 0. No header, or one that does not name it, means identity.
 */
export function acceptsGzip(header: string | string[] | undefined): boolean {
  if (header === undefined) return false;
  let star: boolean | undefined;
  for (const part of (Array.isArray(header) ? header.join(',') : header).split(',')) {
    const [coding = '', ...params] = part.split(';').map((x) => x.trim().toLowerCase());
    let q = 1;
    for (const p of params) {
      const m = /^q\s*=\s*([0-9.]+)$/.exec(p);
      if (m) q = Number(m[1]);
    }
    if (coding === 'gzip' || coding === 'x-gzip') return q > 0;
    if (coding === '*') star = q > 0;
  }
  return star ?? false;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body, null, 2);
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Constant-time comparison of a presented bearer token with the configured one. */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  // Compare digests so that neither length nor content leaks through timing.
  return timingSafeEqual(digest(m?.[1] ?? ''), digest(token)) && m !== null;
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) {
    throw new HttpError(413, `request body too large (${declared} bytes, at most ${MAX_BODY_BYTES})`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `request body too large (more than ${MAX_BODY_BYTES} bytes)`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new HttpError(400, 'the request body is empty; send a JSON object');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HttpError(400, `the request body is not valid JSON: ${(err as Error).message}`);
  }
}

function decodeParam(raw: string): string {
  let v: string;
  try {
    v = decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, `malformed percent-encoding in the path: ${raw.slice(0, 100)}`);
  }
  if (/[/\\\0]/.test(v) || v === '.' || v === '..') throw new HttpError(400, `invalid path segment: ${JSON.stringify(v.slice(0, 100))}`);
  return v;
}

export class HttpServer {
  readonly #o: HttpServerOptions;
  #server: Server | undefined;

  constructor(o: HttpServerOptions) {
    this.#o = o;
  }

  /** Listens; rejects with the listen error (e.g. EADDRINUSE) instead of retrying. */
  async start(): Promise<AddressInfo> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      this.#handle(req, res).catch((err: unknown) => {
        this.#o.log.error({ err, path: req.url?.split('?')[0] }, 'HTTP handler failed');
        if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    };
    const server = this.#o.tls
      ? createHttpsServer({ cert: readFileSync(this.#o.tls.cert), key: readFileSync(this.#o.tls.key) }, handler)
      : createHttpServer(handler);
    server.keepAliveTimeout = 5_000;
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    server.maxHeadersCount = 100;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#o.port, this.#o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
    return server.address() as AddressInfo;
  }

  #authorize(access: Access, req: IncomingMessage): void {
    const auth = this.#o.auth();
    const token = auth.bearerToken?.reveal();
    const challenge = { 'www-authenticate': 'Bearer realm="nats-autoprof"' };
    const needs = access === 'write' || (access === 'read' && token !== undefined) || (access === 'metrics' && auth.metrics);
    if (!needs) return;
    if (token === undefined) {
      throw new HttpError(403, 'starting captures through the API is disabled: set http.auth.bearer_token_file (or http.auth.bearer_token) in the configuration to enable it');
    }
    if (!tokenMatches(req.headers.authorization, token)) {
      throw new HttpError(401, req.headers.authorization ? 'invalid bearer token' : 'missing "Authorization: Bearer <token>" header', challenge);
    }
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
    const query = new URLSearchParams(q >= 0 ? rawUrl.slice(q + 1) : '');
    const method = req.method ?? 'GET';
    let routeName = 'unmatched';
    let status = 500;
    try {
      const candidates = this.#o.routes
        .map((r) => ({ r, m: r.path.exec(path) }))
        .filter((x): x is { r: Route; m: RegExpExecArray } => x.m !== null);
      if (candidates.length === 0) throw new HttpError(404, `no such endpoint: ${path.slice(0, 200)}`);
      const hit = candidates.find((c) => c.r.method === method || (method === 'HEAD' && c.r.method === 'GET'));
      if (!hit) {
        routeName = candidates[0]?.r.name ?? routeName;
        const allow = [...new Set(candidates.map((c) => c.r.method))].join(', ');
        throw new HttpError(405, `method ${method} is not allowed here; use ${allow}`, { allow });
      }
      routeName = hit.r.name;
      this.#authorize(hit.r.access, req);
      const params = hit.m.slice(1).map((p) => decodeParam(p ?? ''));
      const reply = await hit.r.handle({ params, query, body: () => readBody(req) });
      status = reply.status;
      if ('json' in reply) sendJson(res, reply.status, reply.json, reply.headers);
      else if ('chunks' in reply) await sendChunks(req, res, method, reply);
      else if ('text' in reply) {
        if (reply.compressible) {
          await sendCompressible(req, res, method, reply.status, reply.contentType, reply.text);
        } else {
          res.writeHead(reply.status, { 'content-type': reply.contentType, 'content-length': Buffer.byteLength(reply.text) });
          res.end(method === 'HEAD' ? undefined : reply.text);
        }
      } else {
        res.writeHead(reply.status, { ...reply.headers, 'content-type': reply.contentType, 'content-length': reply.size });
        if (method === 'HEAD') {
          reply.stream.destroy();
          res.end();
        } else {
          reply.stream.on('error', () => res.destroy());
          reply.stream.pipe(res);
        }
      }
    } catch (caught) {
      // Unreachable for now (the object store of incidents): 503 and a hint to retry, never a 404 or a 500.
      const err = caught instanceof UnavailableError ? new HttpError(503, caught.message, { 'retry-after': '5' }) : caught;
      if (!(err instanceof HttpError)) throw err;
      status = err.status;
      // Drain what the client is still sending so the error reaches it, but never buffer it.
      if (!req.readableEnded) req.resume();
      sendJson(res, err.status, { error: err.message }, err.headers);
    } finally {
      this.#o.onRequest?.(routeName, status);
    }
  }

  /** Closes the listener and idle connections. Idempotent. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), 1_000).unref();
    });
  }
}
