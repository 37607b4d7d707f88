/**
 * The configuration, defined once with zod: each section's keys, value types, ranges, defaults (written as
 * users write them, `5s`, `4MiB`), descriptions, and the cross-field rules next to the section they belong
 * to. The YAML keys are snake_case (a contract with users); `toConfig` gives the camelCase `Config` the rest
 * of the daemon reads, and its type is inferred from here (types.ts). The same definition gives
 * `config/schema.json` (scripts/gen-schema.ts) and the README's configuration reference.
 *
 * Rules are `superRefine(..., ALWAYS)`: they run even when another key of the section has a problem, so
 * that every problem is reported at once; they read only values that parsed (`ok`).
 */
import { z } from 'zod';

import { Secret } from '../secret.js';
import { formatDuration, formatSize } from './duration.js';
import {
  bad,
  bool,
  choice,
  clip,
  closestMatch,
  duration,
  entries,
  field,
  filePath,
  hideUserinfo,
  list,
  mapping,
  num,
  ok,
  PROTO_KEY,
  parseNumber,
  parseSizeValue,
  parseString,
  pickSecret,
  report,
  secret,
  secretFile,
  secretRule,
  section,
  size,
  str,
} from './fields.js';
import type { Bounds, Ctx, SchemaContext } from './fields.js';
import { checkPath, closestPath, numericPaths, type MonitorDoc } from '../trigger/monitor-fields.js';
import { FRAMING_HEADERS, HEADER_NAME, HEADER_VALUE } from './header.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
// allocs_delta: what was allocated during capture.allocs_window (allocs is cumulative since the server started).
export const PROFILE_NAMES = ['cpu', 'allocs', 'heap', 'goroutine', 'block', 'mutex', 'threadcreate', 'allocs_delta'] as const;
export const TRIGGER_METRICS = ['cpu', 'cpu_per_core', 'mem', 'mem_of_limit'] as const;
export const CAPTURE_VIAS = ['auto', 'system_account', 'prof_port'] as const;

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const MiB = 1024 * 1024;
/** The server answers PROFILEZ CPU requests only for `0 < duration <= 15s`. */
export const PROFILEZ_MAX_CPU_MS = 15 * SECOND;
/** Durations used as timers stay below Node's setTimeout limit (2^31-1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 24 * 24 * 60 * MINUTE;
/** A secret file larger than this is certainly the wrong file. */
export const MAX_SECRET_FILE_BYTES = 64 * 1024;

/** Rules run even when a sibling key has a problem. */
const ALWAYS = { when: () => true };

/** A server name: configured under servers[].name, or a discovered server's server_name. */
const SERVER_NAME = /^[A-Za-z0-9._-]+$/;
const SERVER_NAME_HINT = 'use letters, digits, ".", "_" and "-" only';

type Raw = Record<string, unknown>;
const rec = (v: unknown): Raw => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Raw) : {});
const given = (v: unknown): boolean => v !== undefined;

// ---------------------------------------------------------------------------------------------------------
// Values with their own syntax

function listenAddress() {
  return field({ type: 'string', pattern: '^(\\[[0-9A-Fa-f:.%\\w-]+\\]|[A-Za-z0-9.-]*):\\d{1,5}$|\\$\\{' }, (v) => {
    if (typeof v === 'number') bad(`expected host:port, got the number ${v}`, `write ":${v}" to listen on every address`);
    const text = parseString(v, 'host:port');
    const m = /^(?:\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(text);
    if (m === null) {
      const v6 = (text.match(/:/g)?.length ?? 0) > 1 && !text.startsWith('[');
      bad(`${JSON.stringify(clip(text))} is not a listen address`, v6 ? 'put an IPv6 address in brackets: [::1]:9745' : 'write host:port, [ipv6]:port or :port, e.g. 0.0.0.0:9745');
    }
    const port = Number(m[3]);
    if (port > 65535) bad(`port ${port} is out of range`, 'use a port from 0 to 65535');
    const host = m[1] ?? (m[2] === '' || m[2] === undefined ? '0.0.0.0' : m[2]);
    return { listen: m[1] !== undefined ? `[${host}]:${port}` : `${host}:${port}`, host, port };
  });
}

/** An http(s) URL without query, fragment or credentials, normalised without a trailing slash. */
function httpUrl(example: string) {
  return field({ type: 'string', pattern: '^(https?://|\\$\\{)' }, (v) => {
    const text = parseString(v, `a URL like ${example}`);
    const shown = JSON.stringify(clip(hideUserinfo(text)));
    let url: URL;
    try {
      if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text)) throw new Error('no scheme');
      url = new URL(text);
    } catch {
      return bad(`${shown} is not a URL`, `write it like ${example}`);
    }
    const scheme = url.protocol.slice(0, -1);
    if (scheme !== 'http' && scheme !== 'https') {
      bad(
        `scheme "${scheme}" is not supported here; use http or https`,
        ['nats', 'tls'].includes(scheme)
          ? `this endpoint speaks HTTP, e.g. ${example}; ${scheme}:// URLs belong in system_account.url`
          : `write it like ${example}`,
      );
    }
    if (url.username !== '' || url.password !== '') bad('must not contain a user name or password', 'use basic_auth (with password_file) instead');
    if (text.includes('?') || text.includes('#')) bad(`${shown} must not have a query or fragment`, 'remove the part from ? or #');
    return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
  });
}

/** A system-account URL. The node transport speaks nats:// and tls:// only (no websockets). */
function parseNatsUrl(v: unknown): string {
  const example = 'nats://127.0.0.1:4222';
  const text = parseString(v, `a URL like ${example}`);
  if (text.includes(',')) bad('one URL per entry', `write a list: url: [${example}, nats://127.0.0.2:4222]`);
  let url: URL;
  try {
    if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]/.test(text)) throw new Error('no scheme');
    url = new URL(text);
  } catch {
    return bad(`${JSON.stringify(clip(hideUserinfo(text)))} is not a URL`, `write it like ${example}`);
  }
  const scheme = url.protocol.slice(0, -1);
  if (scheme === 'ws' || scheme === 'wss') {
    bad(
      `scheme "${scheme}" is not supported here; use nats or tls`,
      `nats-autoprof connects with the NATS node transport, which cannot use websockets: use the server's client port, e.g. ${example}`,
    );
  }
  if (scheme !== 'nats' && scheme !== 'tls') bad(`scheme "${scheme}" is not supported here; use nats or tls`, `write it like ${example}`);
  if (url.username !== '' || url.password !== '') bad('must not contain a user name or password', 'use user with password_file, token_file, creds or nkey_seed_file');
  return text;
}

/** `system_account.url`: one URL or a list; problems of list items at the item. */
function natsUrls() {
  const one = { type: 'string', pattern: '^((nats|tls)://|\\$\\{)' };
  return z
    .unknown()
    .transform((v, ctx): string[] => {
      const items = Array.isArray(v) ? v : [v];
      if (v === undefined) return (report(ctx, [], 'missing required key', { hint: 'add url: nats://127.0.0.1:4222' }), z.NEVER);
      if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
        return (report(ctx, [], 'expected a URL like nats://127.0.0.1:4222 or a list of them, got a mapping'), z.NEVER);
      }
      if (items.length === 0) report(ctx, [], 'must list at least one URL', { hint: 'url: [nats://127.0.0.1:4222]' });
      const urls: string[] = [];
      items.forEach((item, i) => {
        try {
          urls.push(parseNatsUrl(item));
        } catch (err) {
          const e = err as { message: string; hint?: string };
          report(ctx, Array.isArray(v) ? [i] : [], e.message, e.hint === undefined ? {} : { hint: e.hint });
        }
      });
      return urls;
    })
    .meta({ json: { anyOf: [one, { type: 'array', items: one, minItems: 1 }] } });
}

/** A list of distinct profile names. */
function profiles() {
  return list(choice('profile', PROFILE_NAMES), 'a list of profiles', 'write profiles: [cpu, allocs]').superRefine((v, ctx) => {
    if (v.length === 0) report(ctx, [], 'must list at least one profile', { hint: `use some of: ${PROFILE_NAMES.join(', ')}` });
    v.forEach((p, i) => {
      if (ok(p) && v.indexOf(p) < i) report(ctx, [i], `profile "${p}" is listed twice`);
    });
  }, ALWAYS);
}

function tls(c: SchemaContext) {
  return section(
    {
      ca: filePath(c, true).optional().describe('CA certificate file (PEM) to verify the server with'),
      cert: filePath(c, true).optional().describe('client certificate file (PEM)'),
      key: filePath(c, true).optional().describe('client key file (PEM)'),
      insecure: bool().prefault(false).describe('skip server certificate verification'),
    },
    'a mapping like { ca: ca.pem, insecure: false }',
  ).superRefine((v, ctx) => {
    if (given(v.cert) !== given(v.key)) {
      const [have, lack] = given(v.cert) ? ['cert', 'key'] : ['key', 'cert'];
      report(ctx, [lack as string], `${have} is set but ${lack} is not`, { hint: 'give both cert and key (a client certificate), or neither' });
    }
  }, ALWAYS);
}

// ---------------------------------------------------------------------------------------------------------
// Sections

function http(c: SchemaContext) {
  const auth = section(
    {
      bearer_token: secret().optional().describe('token required on /api/; without one the POST endpoints answer 403'),
      bearer_token_file: secretFile(c, 'bearer_token').optional().describe('file holding the bearer token (instead of bearer_token)'),
      metrics: bool().prefault(false).describe('also require the token on /metrics, /healthz and /readyz'),
    },
    'a mapping like { bearer_token_file: /run/secrets/token }',
  ).superRefine((v, ctx) => {
    secretRule(ctx, v, 'bearer_token');
    if (v.metrics === true && !given(v.bearer_token) && !given(v.bearer_token_file)) {
      report(ctx, ['metrics'], 'true needs a bearer token, and none is set', { hint: 'set bearer_token or bearer_token_file' });
    }
  }, ALWAYS);
  const httpTls = section(
    {
      cert: filePath(c, true).need('cert: server.pem').describe("the listener's certificate file (PEM)"),
      key: filePath(c, true).need('key: server-key.pem').describe("the listener's key file (PEM)"),
    },
    'a mapping like { cert: server.pem, key: server-key.pem }',
  );
  return section({
    listen: listenAddress().prefault('0.0.0.0:9745').describe('address of /metrics, /healthz, /readyz and /api/v1: host:port, [ipv6]:port or :port'),
    auth: auth.prefault({}).describe('bearer token of the HTTP API'),
    tls: httpTls.optional().describe('serve HTTPS with this certificate'),
    external_url: httpUrl('https://autoprof.example.com')
      .optional()
      .describe("the daemon's address as users reach it (behind a proxy, say): log lines, manifests and API answers then link each incident's page, `<external_url>/ui/#/incidents/<id>`"),
  });
}

function poll(c: SchemaContext) {
  return section({
    interval: duration({ min: 100, max: MAX_TIMER_MS }).prefault('5s').describe('how often each /varz is read'),
    timeout: duration({ gt: 0, max: MAX_TIMER_MS }).prefault('2s').describe('timeout of one /varz request; at most interval'),
    max_body_size: size({ gt: 0 }).prefault('4MiB').describe('a larger /varz reply is an error'),
    max_in_flight: num({ integer: true, min: 1, max: 10_000 })
      .prefault(128)
      .describe('/varz requests in flight at most, whatever the number of servers; the others wait for a slot (late, not failed)'),
  }).superRefine((v, ctx) => {
    if (ok(v.interval) && ok(v.timeout) && v.timeout > v.interval) {
      const what = c.has('poll.timeout') ? 'timeout' : 'the default timeout';
      report(ctx, ['timeout'], `${what} ${formatDuration(v.timeout)} is longer than interval ${formatDuration(v.interval)}`, {
        hint: `set timeout: to ${formatDuration(v.interval)} or less`,
      });
    }
  }, ALWAYS);
}

const valueProblem = (what: string): string => `${what} must not contain line breaks, control characters or characters beyond latin-1`;
const VALUE_HINT = 'write it in ASCII; percent-encode or base64 anything else';

function server(c: SchemaContext) {
  const headerValue = field({ type: 'string' }, (v) => {
    const s = parseString(v, 'a string', { secret: true, allowEmpty: true });
    if (!HEADER_VALUE.test(s)) bad(valueProblem('a header value'), VALUE_HINT);
    return new Secret(s);
  });
  const basicAuth = section({
    username: str('a user name').need('username: the user name').describe('user name'),
    password: secret().optional().describe('password'),
    password_file: secretFile(c, 'password').optional().describe('file holding the password (instead of password)'),
  }).superRefine((v, ctx) => {
    secretRule(ctx, v, 'password');
    if (!given(v.password) && !given(v.password_file)) report(ctx, ['password'], 'missing required key', { hint: 'add password: or password_file:' });
  }, ALWAYS);
  return section(
    {
      url: httpUrl('http://127.0.0.1:8222').need('url: http://127.0.0.1:8222').describe('monitoring base URL; varz is <url>/varz'),
      name: field({ type: 'string', pattern: SERVER_NAME.source }, (v) => {
        const name = parseString(v, 'a name');
        if (!SERVER_NAME.test(name)) bad(`${JSON.stringify(clip(name))} is not a valid server name`, SERVER_NAME_HINT);
        return name;
      })
        .optional()
        .describe("the server label and directory name; the varz server_name when left out"),
      prof_url: httpUrl('http://127.0.0.1:65432').optional().describe("base URL of the server's prof_port (Go's /debug/pprof)"),
      headers: mapping(headerValue, 'a mapping of header names to values', 'write headers: { X-Scope: abc }')
        .superRefine((v, ctx) => {
          for (const name of Object.keys(v)) {
            if (!HEADER_NAME.test(name)) {
              report(ctx, [name], `${JSON.stringify(clip(name))} is not a valid HTTP header name`, { at: 'key', only: true });
            } else if (FRAMING_HEADERS.has(name.toLowerCase())) {
              report(ctx, [name], `${name} frames the request: the daemon sets it`, { at: 'key', only: true, hint: `remove ${name}` });
            }
          }
        }, ALWAYS)
        .optional()
        .describe('extra request headers for the monitoring endpoint (values are secrets)'),
      basic_auth: basicAuth.optional().describe('{username, password or password_file} for the monitoring endpoint'),
      bearer_token: secret().optional().describe('bearer token for the monitoring endpoint'),
      bearer_token_file: secretFile(c, 'bearer_token').optional().describe('file holding the bearer token (instead of bearer_token)'),
      tls: tls(c).optional().describe('client TLS for the monitoring endpoint: {ca, cert, key, insecure}'),
    },
    'a server mapping like { url: http://127.0.0.1:8222 }',
  ).superRefine((v, ctx) => {
    secretRule(ctx, v, 'bearer_token');
    const token = pickSecret(v, 'bearer_token');
    if (token !== undefined && !HEADER_VALUE.test(token.reveal())) {
      report(ctx, [given(v.bearer_token) ? 'bearer_token' : 'bearer_token_file'], valueProblem('a bearer token'), { hint: VALUE_HINT, at: 'key' });
    }
    if ((given(v.bearer_token) || given(v.bearer_token_file)) && given(v.basic_auth)) {
      report(ctx, [given(v.bearer_token) ? 'bearer_token' : 'bearer_token_file'], 'bearer_token and basic_auth are both set', {
        hint: 'a request carries one Authorization header: keep one of them',
        at: 'key',
      });
    }
  }, ALWAYS);
}

function servers(c: SchemaContext) {
  return list(server(c), 'a list of servers', 'start each server with "- url: http://host:8222"').superRefine((items, ctx) => {
    const names = new Map<string, number>();
    const urls = new Map<string, number>();
    items.forEach((s, i) => {
      const name = rec(s)['name'];
      const url = rec(s)['url'];
      if (typeof name === 'string') {
        const first = names.get(name);
        if (first === undefined) names.set(name, i);
        else {
          const line = c.line(`servers[${first}].name`) ?? '?';
          report(ctx, [i, 'name'], `duplicate server name "${name}"`, { hint: `servers[${first}] on line ${line} has it already; names must be unique` });
        }
      }
      if (typeof url === 'string') {
        const first = urls.get(url);
        if (first === undefined) urls.set(url, i);
        else report(ctx, [i, 'url'], `duplicate server url ${url}`, { hint: `servers[${first}] on line ${c.line(`servers[${first}].url`) ?? '?'} watches it already` });
      }
    });
  }, ALWAYS);
}

function systemAccount(c: SchemaContext) {
  const selectName = field({ type: 'string', pattern: '^[A-Za-z0-9._*?-]+$' }, (v) => {
    const name = parseString(v, 'a server name');
    if (!/^[A-Za-z0-9._*?-]+$/.test(name)) {
      bad(`${JSON.stringify(clip(name))} is not a valid server name or pattern`, 'use letters, digits, ".", "_", "-" and the wildcards * and ?');
    }
    return name;
  });
  const select = section(
    {
      names: list(selectName, 'a list of server names', 'write names: [nats-a, nats-east-*]').prefault([]).describe('server names or globs (*, ?)'),
      clusters: list(str('a cluster name'), 'a list of cluster names', 'write clusters: [east]').prefault([]).describe('exact cluster names'),
      tags: list(str('a tag'), 'a list of tags', 'write tags: ["az:eu-1"]').prefault([]).describe('tags a server must all carry (case-insensitive)'),
    },
    'a mapping like { names: [nats-*], clusters: [east] }',
  );
  const profUrls = mapping(httpUrl('http://127.0.0.1:65432'), 'a mapping of server names to prof_port URLs', 'write prof_urls: { nats-a: "http://127.0.0.1:65432" }').superRefine(
    (v, ctx) => {
      for (const [name] of entries(v)) {
        if (!SERVER_NAME.test(name)) report(ctx, [name === '__proto__' ? PROTO_KEY : name], `${JSON.stringify(clip(name))} is not a valid server name`, { hint: SERVER_NAME_HINT, at: 'key', only: true });
      }
    },
    ALWAYS,
  );
  return section({
    ...natsConnection(c, {
      url: 'one URL or a list (nats:// or tls://); enables capture over PROFILEZ and discovery',
      timeout: 'timeout of one request over the system account',
    }),
    discover: bool().prefault(false).describe('watch every server that answers PING.STATSZ (and passes select)'),
    select: select.prefault({}).describe('which discovered servers to watch: {names, clusters, tags}; empty lists select everything'),
    stall: duration({ min: 10, max: 10 * SECOND }).prefault('250ms').describe('a discovery round ends once no reply came for this long'),
    forget_after: duration({ min: SECOND }).prefault('5m').describe('a discovered server missing for this long is no longer watched; at least two poll intervals'),
    prof_urls: profUrls.prefault({}).describe('prof_port URLs of discovered servers, by server name'),
  }).superRefine((v, ctx) => natsAuthRule(v, ctx), ALWAYS);
}

/**
 * The keys of a NATS connection: URLs, one authentication method, TLS, request timeout. The system account
 * and coordination connect the same ways, so they share these keys (and `natsAuthRule`, `toNatsConnection`).
 */
function natsConnection(c: SchemaContext, describe: { url: string; timeout: string }) {
  return {
    url: natsUrls().describe(describe.url),
    user: str('a user name').optional().describe('user name (with password or password_file)'),
    password: secret().optional().describe('password of user'),
    password_file: secretFile(c, 'password').optional().describe('file holding the password (instead of password)'),
    token: secret().optional().describe('authentication token'),
    token_file: secretFile(c, 'token').optional().describe('file holding the token (instead of token)'),
    creds: filePath(c, true).optional().describe('.creds file (JWT and nkey seed)'),
    nkey_seed: secret().optional().describe('nkey seed'),
    nkey_seed_file: secretFile(c, 'nkey_seed').optional().describe('file holding the nkey seed (instead of nkey_seed)'),
    tls: tls(c).optional().describe('client TLS: {ca, cert, key, insecure}'),
    timeout: duration({ gt: 0, max: MAX_TIMER_MS }).prefault('5s').describe(describe.timeout),
  };
}

/** One authentication method at most, and user with password. */
function natsAuthRule(v: Raw, ctx: Ctx): void {
  for (const key of ['password', 'token', 'nkey_seed']) secretRule(ctx, v, key);
  const keyOf = (k: 'password' | 'token' | 'nkey_seed'): string => (given(v[k]) ? k : `${k}_file`);
  const password = given(v['password']) || given(v['password_file']);
  if (password && !given(v['user'])) report(ctx, [keyOf('password')], 'password without user', { hint: 'add user: or remove the password', at: 'key' });
  if (given(v['user']) && !password) report(ctx, ['user'], 'user without password', { hint: 'add password: or password_file:', at: 'key' });
  const methods: string[] = [];
  if (given(v['user']) || password) methods.push(given(v['user']) ? 'user' : keyOf('password'));
  if (given(v['token']) || given(v['token_file'])) methods.push(keyOf('token'));
  if (given(v['creds'])) methods.push('creds');
  if (given(v['nkey_seed']) || given(v['nkey_seed_file'])) methods.push(keyOf('nkey_seed'));
  const second = methods[1];
  if (second !== undefined) {
    report(ctx, [second], `more than one authentication method: ${methods.join(', ')}`, { hint: 'use one of user+password, token, creds or nkey_seed', at: 'key' });
  }
}

/** KV bucket names: what JetStream accepts as a bucket name. */
function bucketName() {
  return field({ type: 'string', pattern: '^[A-Za-z0-9_-]+$' }, (v) => {
    const name = parseString(v, 'a bucket name');
    if (!/^[A-Za-z0-9_-]+$/.test(name)) bad(`${JSON.stringify(clip(name))} is not a valid bucket name`, 'use letters, digits, "_" and "-" only');
    return name;
  });
}

/** `coordination:`: replicas that share the fleet through JetStream KV (src/coord/). */
function coordination(c: SchemaContext) {
  return section(
    {
      ...natsConnection(c, {
        url: 'one URL or a list (nats:// or tls://) of a JetStream-enabled account (not the system account)',
        timeout: 'timeout of one connection attempt and of one KV operation',
      }),
      instance: field({ type: 'string', pattern: '^[A-Za-z0-9_=.-]+$' }, (v) => {
        const name = parseString(v, 'an instance name');
        if (!/^[A-Za-z0-9_=.-]+$/.test(name)) bad(`${JSON.stringify(clip(name))} is not a valid instance name`, 'use letters, digits, "_", "=", "." and "-" only (it is part of a KV key)');
        return name;
      })
        .optional()
        .describe("this replica's name among the replicas, unique (default: host name and process id)"),
      heartbeat: duration({ min: 100, max: MAX_TIMER_MS }).prefault('2s').describe('how often this replica renews its membership and reads the member list; at most half of lease_ttl'),
      lease_ttl: duration({ min: SECOND, max: MAX_TIMER_MS }).prefault('10s').describe('a replica that stopped renewing is gone after this long (its servers move); also the life of a capture lease between renewals'),
      buckets: section(
        {
          live: bucketName().prefault('nats_autoprof_live').describe('KV bucket of members and capture leases (its TTL is lease_ttl)'),
          state: bucketName().prefault('nats_autoprof_state').describe('KV bucket of fleet-wide state: the capture.limit window, last firings (no TTL)'),
        },
        'a mapping like { live: nats_autoprof_live, state: nats_autoprof_state }',
      )
        .prefault({})
        .describe('KV bucket names; created when missing'),
      replicas: num({ integer: true, min: 1, max: 5 }).prefault(1).describe('JetStream replicas of the buckets when they are created (1, 3 or 5; 3 on a 3-node cluster)'),
    },
    'a mapping like { url: nats://127.0.0.1:4222, user: autoprof, password_file: /run/secrets/nats }',
  ).superRefine((v, ctx) => {
    natsAuthRule(v, ctx);
    if (ok(v.heartbeat) && ok(v.lease_ttl) && v.heartbeat * 2 > v.lease_ttl) {
      const what = c.has('coordination.heartbeat') ? 'heartbeat' : 'the default heartbeat';
      report(ctx, ['heartbeat'], `${what} ${formatDuration(v.heartbeat)} is more than half of lease_ttl ${formatDuration(v.lease_ttl)}`, {
        hint: `set heartbeat: ${formatDuration(Math.floor(v.lease_ttl / 2))} or less, or a longer lease_ttl (a replica must renew at least twice per lease)`,
      });
    }
    if (ok(v.buckets) && v.buckets.live === v.buckets.state) {
      report(ctx, ['buckets', 'state'], `the same bucket "${v.buckets.live}" as buckets.live`, { hint: 'live has a TTL and state has none: use two buckets' });
    }
  }, ALWAYS);
}

const PERCENT_METRICS: readonly string[] = ['cpu', 'cpu_per_core', 'mem_of_limit'];
const BUILTIN_METRICS: readonly string[] = TRIGGER_METRICS;
const isBuiltin = (metric: unknown): boolean => typeof metric === 'string' && BUILTIN_METRICS.includes(metric);

/**
 * A trigger level: bytes for mem, a percentage for the other built-ins (at most 100 but for cpu, which counts
 * cores); for a field of the monitoring document a number (a rate is per second) or a size like 3GiB.
 */
function parseLevel(metric: unknown, v: unknown, b: Bounds): number {
  if (metric === 'mem') return parseSizeValue(v, b);
  if (typeof metric === 'string' && PERCENT_METRICS.includes(metric)) return parseNumber(v, metric === 'cpu' ? b : { ...b, max: 100 });
  // A field, or an unknown metric: check what does not depend on it.
  return typeof v === 'string' ? parseSizeValue(v, b) : parseNumber(v, b);
}

/** `metric:`: a built-in, or a dotted path into the monitoring document (checked against the servers in crossRules). */
function metricField() {
  return field({ anyOf: [{ enum: [...TRIGGER_METRICS] }, { type: 'string', pattern: '^[a-z][a-z0-9_]*(\\.[a-z][a-z0-9_]*)*$' }] }, (v) => {
    const text = parseString(v, 'a metric');
    if (!/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/.test(text)) {
      const close = closestPath(text, [...TRIGGER_METRICS, ...numericPaths('varz'), ...numericPaths('statsz')]);
      bad(
        `${JSON.stringify(clip(text))} is not a metric`,
        close !== undefined ? `did you mean "${close}"?` : `use ${TRIGGER_METRICS.join(', ')} or a dotted field path like jetstream.stats.memory`,
      );
    }
    return text;
  });
}

/** `escalate: 25%`: a percentage above the last capture's peak. */
function percent() {
  return field({ type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?%$' }, (v) => {
    const hint = 'write a percentage like 25%';
    if (typeof v === 'number') bad(`expected a percentage, got the number ${v}`, `write ${v}%`);
    const text = parseString(v, 'a percentage like 25%');
    const m = /^([0-9]+(?:\.[0-9]+)?)%$/.exec(text.trim());
    if (m === null) return bad(`${JSON.stringify(clip(text))} is not a percentage`, hint);
    const n = Number(m[1]);
    if (!(n > 0) || n > 1000) bad(`must be more than 0% and at most 1000%, got ${text.trim()}`, hint);
    return n;
  });
}

/** Runs a parser and reports its problem at `key`. */
function check<T>(ctx: Ctx, key: string, f: () => T): T | undefined {
  try {
    return f();
  } catch (err) {
    const e = err as { message: string; hint?: string };
    report(ctx, [key], e.message, e.hint === undefined ? {} : { hint: e.hint });
    return undefined;
  }
}

function trigger() {
  const level = field({ anyOf: [{ type: 'number', minimum: 0 }, { type: 'string' }] }, (v) => v);
  return section(
    {
      name: field({ type: 'string', pattern: '^[a-z0-9][a-z0-9-]*$', maxLength: 63 }, (v) => {
        const name = parseString(v, 'a name');
        if (!/^[a-z0-9][a-z0-9-]*$/.test(name) || name.length > 63) {
          bad(`${JSON.stringify(clip(name))} is not a valid trigger name`, 'use lower-case letters, digits and "-", starting with a letter or digit, at most 63 characters');
        }
        return name;
      })
        .need('name: a name like high-cpu')
        .describe('unique rule name: lower-case letters, digits and -'),
      metric: metricField()
        .need(`metric: ${TRIGGER_METRICS.join(' | ')} | a field like slow_consumers`)
        .describe(
          'cpu (percent of one core), cpu_per_core (cpu / gomaxprocs), mem (bytes), mem_of_limit (percent of GOMEMLIMIT), or a numeric field of the monitoring document as a dotted path: varz for servers under servers:, STATSZ for discovered ones (slow_consumers, connections, jetstream.stats.memory)',
        ),
      above: level
        .optional()
        .meta({ 'x-required': true })
        .describe('the level that fires the rule: a percentage, a size like 1GiB for mem, a number (or size) for a field, per second with rate'),
      rate: duration({ min: SECOND, max: MAX_TIMER_MS }).optional().describe('compare the field\'s per-second increase over this window (a counter), e.g. 1m; a counter that goes down or a restarted server restarts the window'),
      escalate: percent().optional().describe('within the cooldown, capture again when the value exceeds the last capture\'s by this much, e.g. 25%'),
      escalate_max: num({ integer: true, min: 1, max: 10 }).optional().describe('at most this many escalations per firing (default: 2; needs escalate)'),
      for: duration({ min: 0 }).prefault('0s').describe('how long the value must stay above before the rule fires'),
      rearm_below: level.optional().describe('the rule fires again only after the value went below this (default: above)'),
      cooldown: duration({ min: 0 }).prefault('10m').describe('no second capture by this rule for this long'),
      profiles: profiles().prefault(['cpu', 'allocs']).describe(`profiles to capture: ${PROFILE_NAMES.join(', ')}`),
      servers: list(str('a server name'), 'a list of server names', 'write servers: [nats-a]')
        .superRefine((v, ctx) => {
          if (v.length === 0) report(ctx, [], 'must name at least one server', { hint: 'remove servers: to apply the trigger to every server' });
        }, ALWAYS)
        .optional()
        .describe('server names the rule applies to (default: every watched server)'),
    },
    'a trigger mapping like { name: high-cpu, metric: cpu, above: 80 }',
  ).superRefine((v, ctx) => {
    const metric = ok(v.metric) ? v.metric : undefined;
    if (v.above === undefined) {
      report(ctx, ['above'], 'missing required key', { hint: `add above: ${metric === 'mem' ? 'a size like 1GiB' : 'a percentage like 80'}` });
      return;
    }
    if (ok(v.rate) && isBuiltin(metric)) {
      report(ctx, ['rate'], `rate needs a counter, and ${metric as string} is a gauge`, { hint: 'remove rate:, or use a counter field such as slow_consumers or in_msgs' });
    }
    if (ok(v.escalate) && ok(v.cooldown) && v.cooldown === 0) {
      report(ctx, ['escalate'], 'escalate needs a cooldown, and cooldown is 0s', { hint: 'escalations happen within the cooldown: set cooldown: 10m, or remove escalate:' });
    }
    if (v.escalate_max !== undefined && v.escalate === undefined) {
      report(ctx, ['escalate_max'], 'escalate_max without escalate', { hint: 'add escalate: 25%, or remove escalate_max:', at: 'key' });
    }
    // A field or a rate may well be 0 ("any new slow consumer"); the built-ins must be above 0.
    let above = check(ctx, 'above', () => parseLevel(metric, v.above, isBuiltin(metric) ? { gt: 0 } : { min: 0 }));
    if (above !== undefined && metric === 'mem' && above < MiB) {
      report(ctx, ['above'], `for metric mem, above is in bytes, and ${formatSize(above)} is less than any nats-server uses`, {
        hint: 'write a size like 1GiB, or use metric: mem_of_limit for a percentage',
      });
      above = undefined;
    }
    if (v.rearm_below === undefined) return;
    const rearm = check(ctx, 'rearm_below', () => parseLevel(metric, v.rearm_below, { min: 0 }));
    if (rearm !== undefined && above !== undefined && rearm > above) {
      const show = metric === 'mem' ? formatSize : String;
      report(ctx, ['rearm_below'], `must be at most above (${show(above)}), got ${show(rearm)}`, {
        hint: 'rearm_below may not exceed above; leave it out to rearm as soon as the value drops below above',
      });
    }
  }, ALWAYS);
}

function triggers(c: SchemaContext) {
  return list(trigger(), 'a list of triggers', 'start each trigger with "- name: high-cpu"').superRefine((items, ctx) => {
    const first = new Map<string, number>();
    items.forEach((t, i) => {
      const name = rec(t)['name'];
      if (typeof name !== 'string') return;
      const j = first.get(name);
      if (j === undefined) first.set(name, i);
      else report(ctx, [i, 'name'], `duplicate trigger name "${name}"`, { hint: `triggers[${j}] on line ${c.line(`triggers[${j}].name`) ?? '?'} has it already; names must be unique` });
    });
  }, ALWAYS);
}

function alerts() {
  const label = field({ type: 'string', pattern: '^[a-zA-Z_][a-zA-Z0-9_]*$' }, (v) => {
    const s = parseString(v, 'a label name');
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(s)) bad(`${JSON.stringify(clip(s))} is not a valid label name`, 'use letters, digits and "_", not starting with a digit');
    return s;
  });
  const labels = list(label, 'a list of label names', 'write labels: [server_name, instance]').superRefine((v, ctx) => {
    if (v.length === 0) report(ctx, [], 'must list at least one label', { hint: 'the default is [server_name, server, instance]' });
    v.forEach((l, i) => {
      if (ok(l) && v.indexOf(l) < i) report(ctx, [i], `label "${l}" is listed twice`);
    });
  }, ALWAYS);
  return section(
    {
      labels: labels.prefault(['server_name', 'server', 'instance']).describe('alert labels that name the server, tried in order; instance is also matched against monitoring URLs'),
      profiles: profiles().prefault(['cpu', 'allocs']).describe('profiles an alert captures'),
      cooldown: duration({ min: 0 }).prefault('10m').describe('the same alert (fingerprint) does not capture twice within this time'),
    },
    'a mapping like { labels: [server_name], cooldown: 10m }',
  );
}

function capture() {
  return section({
    via: choice('capture method', CAPTURE_VIAS)
      .prefault('auto')
      .describe('auto: the system account when configured and the server supports the profile, else prof_url; or force system_account or prof_port'),
    cpu_duration: duration({ min: SECOND, max: 5 * MINUTE }).prefault('5s').describe('length of a CPU profile: 1s to 5m; at most 15s through the system account'),
    timeout: duration({ gt: 0, max: MAX_TIMER_MS }).prefault('10s').describe('time allowed for a non-CPU profile; added to cpu_duration for a CPU profile'),
    allocs_window: duration({ min: SECOND, max: 5 * MINUTE })
      .prefault('10s')
      .describe('window of the allocs_delta profile (what was allocated in it): 1s to 5m (rounded to whole seconds through prof_port, whose request may take the window plus timeout)'),
    max_concurrent: num({ integer: true, min: 1, max: 64 }).prefault(4).describe('profile requests in flight across all servers'),
    limit: section({
      count: num({ integer: true, min: 1 }).prefault(12).describe('most incidents in any window, all servers together'),
      window: duration({ gt: 0 }).prefault('1h').describe('the window of limit.count'),
    })
      .prefault({})
      .describe('most incidents in any window, all servers together'),
    max_profile_size: size({ gt: 0 }).prefault('64MiB').describe('a larger profile is refused'),
  });
}

function storage(c: SchemaContext) {
  return section({
    dir: filePath(c, false).prefault('./profiles').describe('where incidents are written; relative to the config file'),
    retention: section({
      max_incidents_per_server: num({ integer: true, min: 1 }).prefault(50).describe('newest incidents kept per server'),
      max_total_size: size({ gt: 0 }).prefault('2GiB').describe('total size kept; oldest incidents go first'),
      max_age: duration({ gt: 0 }).prefault('14d').describe('incidents older than this are removed'),
      interval: duration({ min: SECOND, max: MAX_TIMER_MS }).prefault('10m').describe('how often retention runs besides after every incident'),
    })
      .prefault({})
      .describe('what is kept; oldest incidents go first'),
    object_store: section(
      {
        bucket: bucketName().prefault('nats_autoprof_incidents').describe('JetStream object store bucket of the incidents; created when missing'),
        replicas: num({ integer: true, min: 1, max: 5 }).prefault(1).describe('JetStream replicas of the bucket when it is created (3 on a 3-node cluster)'),
        max_bytes: size({ gt: 0 }).prefault('10GiB').describe('most bytes the bucket holds when it is created (retention keeps it under storage.retention.max_total_size)'),
      },
      'a mapping like { bucket: nats_autoprof_incidents, replicas: 3, max_bytes: 10GiB }',
    )
      .optional()
      .describe('replicas share their incidents through a JetStream object store on the coordination connection (needs coordination:; off when absent)'),
  });
}

/**
 * The incident viewer's data: how much recent CPU/memory per server is kept in memory (the ring is a fixed
 * number of buckets per server whatever the history, so a longer history coarsens it, it does not grow it),
 * and the bound on the decoded-profile cache.
 */
function ui() {
  return section({
    history: duration({ min: MINUTE, max: 24 * 60 * MINUTE })
      .prefault('10m')
      .describe('recent CPU and memory kept per server for the viewer (GET /api/v1/servers/{name}/samples), in 120 buckets: 1m to 1d'),
    cache_size: size({ min: MiB, max: 4 * 1024 * MiB }).prefault('64MiB').describe("bound on the viewer's cache of decoded profiles: 1MiB to 4GiB"),
  });
}

// ---------------------------------------------------------------------------------------------------------
// The whole document

/** The document's sections (what `config/schema.json` describes). */
export function root(c: SchemaContext) {
  return section(
    {
      log: section({ level: choice('log level', LOG_LEVELS).prefault('info').describe('trace, debug, info, warn or error (JSON lines on stdout)') })
        .prefault({})
        .describe('logging'),
      http: http(c).prefault({}).describe('the HTTP listener: metrics, health and the API'),
      ui: ui().prefault({}).describe('the incident viewer (/ui/) and its data'),
      poll: poll(c).prefault({}).describe('reading /varz'),
      shutdown_timeout: duration({ min: 0, max: MAX_TIMER_MS }).prefault('20s').describe('how long SIGTERM waits for captures in progress'),
      servers: servers(c).prefault([]).describe('servers watched through their monitoring port'),
      system_account: systemAccount(c).optional().describe('the system-account connection: PROFILEZ captures and discovery'),
      triggers: triggers(c).prefault([]).describe('rules that capture profiles'),
      alerts: alerts().prefault({}).describe('Alertmanager webhook'),
      capture: capture().prefault({}).describe('how profiles are captured'),
      storage: storage(c).prefault({}).describe('where incidents are kept, and for how long'),
      coordination: coordination(c).optional().describe('replicas sharing the fleet through JetStream KV: one owner per server, one capture per server at a time, a fleet-wide capture.limit (off when absent)'),
    },
    'a mapping of settings (log, http, poll, servers, triggers, ...)',
  );
}

/** The configuration schema; `c` gives file access, positions and the file the YAML came from. */
export function configSchema(c: SchemaContext & { readonly file: string }) {
  return root(c)
    .superRefine((v, ctx) => crossRules(c, v, ctx), ALWAYS)
    .transform((v) => toConfig(c.file, v));
}

/** Rules between sections. */
function crossRules(c: SchemaContext, v: Raw, ctx: Ctx): void {
  const poll = rec(v['poll']);
  const sys = v['system_account'] === undefined ? undefined : rec(v['system_account']);
  const cap = rec(v['capture']);
  const servers = Array.isArray(v['servers']) ? v['servers'].map(rec) : [];
  const interval = typeof poll['interval'] === 'number' ? poll['interval'] : undefined;

  // A server that misses one discovery round (one poll interval) must not be forgotten for it. The default
  // only matters, and is only checked, when discovery is on.
  const forget = sys?.['forget_after'];
  if (sys !== undefined && typeof forget === 'number' && interval !== undefined && forget < 2 * interval) {
    const written = c.has('system_account.forget_after');
    if (written || sys['discover'] === true) {
      report(ctx, ['system_account', 'forget_after'], `${written ? 'forget_after' : 'the default forget_after'} ${formatDuration(forget)} is shorter than two poll intervals (${formatDuration(2 * interval)})`, {
        hint: `set forget_after: ${formatDuration(2 * interval)} or more`,
      });
    }
  }

  // Triggers name configured servers; with discovery (or an invalid discover:) any well-formed name may turn up later.
  const names = servers.flatMap((s) => (typeof s['name'] === 'string' ? [s['name']] : []));
  const discover = sys === undefined ? false : typeof sys['discover'] === 'boolean' ? sys['discover'] : undefined;
  (Array.isArray(v['triggers']) ? v['triggers'] : []).forEach((t, i) => {
    const on = rec(t)['servers'];
    if (!Array.isArray(on)) return;
    on.forEach((n: unknown, j) => {
      if (typeof n !== 'string') return;
      const at = ['triggers', i, 'servers', j];
      const known = names.includes(n);
      if (!known && discover === false) {
        const hint = names.length === 0 ? 'no server has a name: set name: on the server under servers' : `the configured server names are ${names.join(', ')}`;
        report(ctx, at, `unknown server "${clip(n)}"`, { hint });
      } else if (!known && !SERVER_NAME.test(n)) {
        report(ctx, at, `${JSON.stringify(clip(n))} is not a valid server name`, { hint: `${SERVER_NAME_HINT}; wildcards are not allowed here` });
      } else if (on.indexOf(n) < j) {
        report(ctx, at, `server "${n}" is listed twice`);
      }
    });
  });

  // A field path must be a number in every document the rule reads: varz for servers watched over HTTP, STATSZ
  // for discovered ones. A rule reads STATSZ when discovery is on and it has no servers: list, or its list names
  // a server that is not under servers: (only a discovered server can carry that name). It reads varz when
  // servers: has entries and the rule has no servers: list, or its list names one of them.
  (Array.isArray(v['triggers']) ? v['triggers'] : []).forEach((raw, i) => {
    const t = rec(raw);
    const metric = t['metric'];
    if (typeof metric !== 'string' || isBuiltin(metric) || !/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/.test(metric)) return;
    const on = Array.isArray(t['servers']) ? t['servers'].filter((n): n is string => typeof n === 'string') : undefined;
    const docs: MonitorDoc[] = [];
    if (servers.length > 0 && (on === undefined || on.some((n) => names.includes(n)))) docs.push('varz');
    if (discover === true && (on === undefined || on.some((n) => !names.includes(n)))) docs.push('statsz');
    const problem = checkPath(metric, docs.length > 0 ? docs : ['varz']);
    if (problem !== undefined) {
      const candidates = problem.unknownIn === undefined ? [] : [...TRIGGER_METRICS, ...numericPaths(problem.unknownIn)];
      // A typo first (slow_consumer), then a prefix or another case style (cpu_percent -> cpu).
      const close = problem.unknownIn === undefined ? undefined : (closestPath(metric, candidates) ?? closestMatch(metric, candidates));
      report(ctx, ['triggers', i, 'metric'], problem.message, { hint: close === undefined ? problem.hint : `did you mean "${close}"?` });
    }
    // The rate window must hold at least two samples.
    const rate = t['rate'];
    if (typeof rate === 'number' && interval !== undefined && rate < 2 * interval) {
      report(ctx, ['triggers', i, 'rate'], `the rate window ${formatDuration(rate)} is shorter than two poll intervals (${formatDuration(2 * interval)})`, {
        hint: `set rate: ${formatDuration(2 * interval)} or more`,
      });
    }
  });

  // The system account cannot use JetStream: coordination connecting to the same servers as the same user
  // (or with the same credentials file) cannot work. The daemon also checks at connect time (src/coord/).
  const co = v['coordination'] === undefined ? undefined : rec(v['coordination']);
  if (sys !== undefined && co !== undefined) {
    const urls = (x: unknown): string[] => (Array.isArray(x) ? x.filter((u): u is string => typeof u === 'string') : []);
    const sysUrls = urls(sys['url']);
    const sameServers = urls(co['url']).some((u) => sysUrls.includes(u));
    const key = ['user', 'creds', 'nkey_seed_file', 'token_file'].find((k) => given(co[k]) && JSON.stringify(co[k]) === JSON.stringify(sys[k]));
    if (sameServers && key !== undefined) {
      report(ctx, ['coordination', key], `coordination connects as the system_account ${key === 'user' ? 'user' : 'credentials'}, and the system account cannot use JetStream`, {
        hint: 'use a user of an account with JetStream enabled (jetstream: enabled in its accounts block)',
      });
    }
  }

  // The object store lives on the coordination connection (src/store/incident-sync.ts).
  if (given(rec(v['storage'])['object_store']) && co === undefined) {
    report(ctx, ['storage', 'object_store'], 'storage.object_store needs a coordination section (it uses the coordination connection to JetStream)', {
      hint: 'add coordination: with the url and credentials of a JetStream-enabled account, or remove storage.object_store',
    });
  }

  // What the capture method needs.
  const via = cap['via'];
  if (via === 'system_account' && sys === undefined && c.has('capture.via')) {
    report(ctx, ['capture', 'via'], 'via system_account needs a system_account section', { hint: 'add system_account: with url: and credentials, or use via: auto' });
  }
  if (via === 'prof_port') {
    servers.forEach((s, i) => {
      if (s['prof_url'] === undefined) report(ctx, ['servers', i], 'via prof_port needs prof_url on every server, and this one has none', { hint: 'add prof_url or use via: auto' });
    });
  }
  const cpu = cap['cpu_duration'];
  if (typeof cpu === 'number' && cpu > PROFILEZ_MAX_CPU_MS && (via === 'system_account' || (via === 'auto' && sys !== undefined))) {
    const hint = 'use cpu_duration: 15s or less, or via: prof_port with prof_url on every server';
    report(ctx, ['capture', 'cpu_duration'], 'PROFILEZ refuses CPU profiles longer than 15s', {
      hint: via === 'system_account' ? hint : `${hint}; via: auto uses the system account where a server has no prof_url`,
    });
  }
}

type Parsed = z.output<ReturnType<typeof root>>;
type TlsParsed = NonNullable<Parsed['system_account']>['tls'];

function toTls(t: TlsParsed) {
  return t === undefined ? undefined : { ca: t.ca, cert: t.cert, key: t.key, insecure: t.insecure };
}

/** The daemon's view: camelCase keys with units in the names; runs only when there was no problem. */
function toConfig(file: string, v: Parsed) {
  const sys = v.system_account;
  return {
    /** Absolute path of the file this came from. */
    file,
    log: { level: v.log.level },
    http: {
      ...v.http.listen,
      auth: { bearerToken: pickSecret(v.http.auth, 'bearer_token'), metrics: v.http.auth.metrics },
      tls: v.http.tls === undefined ? undefined : { cert: v.http.tls.cert, key: v.http.tls.key },
      externalUrl: v.http.external_url,
    },
    ui: { historyMs: v.ui.history, cacheSizeBytes: v.ui.cache_size },
    poll: { intervalMs: v.poll.interval, timeoutMs: v.poll.timeout, maxBodyBytes: v.poll.max_body_size, maxInFlight: v.poll.max_in_flight },
    servers: v.servers.map((s) => ({
      url: s.url,
      name: s.name,
      profUrl: s.prof_url,
      headers: Object.fromEntries(entries(s.headers ?? {})) as Readonly<Record<string, Secret>>,
      basicAuth:
        s.basic_auth === undefined
          ? undefined
          : { username: s.basic_auth.username, password: pickSecret(s.basic_auth, 'password') as Secret },
      bearerToken: pickSecret(s, 'bearer_token'),
      tls: toTls(s.tls),
    })),
    systemAccount:
      sys === undefined
        ? undefined
        : {
            ...toNatsConnection(sys),
            discover: sys.discover,
            // Tags compare case-insensitively; stored in one case.
            select: { names: sys.select.names, clusters: sys.select.clusters, tags: sys.select.tags.map((t) => t.toLowerCase()) },
            stallMs: sys.stall,
            forgetAfterMs: sys.forget_after,
            // fromEntries, not assignment: a server named __proto__ must stay a server.
            profUrls: Object.fromEntries(entries(sys.prof_urls)) as Readonly<Record<string, string>>,
          },
    triggers: v.triggers.map((t) => {
      const above = parseLevel(t.metric, t.above, {});
      const rearm = t.rearm_below === undefined ? above : parseLevel(t.metric, t.rearm_below, {});
      return {
        name: t.name,
        metric: t.metric,
        above,
        forMs: t.for,
        rearmBelow: Math.min(rearm, above),
        cooldownMs: t.cooldown,
        /** The per-second increase over this window is compared, not the field (undefined: the field itself). */
        rateMs: t.rate,
        /** Percent above the last capture's peak that captures again within the cooldown (undefined: never). */
        escalatePercent: t.escalate,
        escalateMax: t.escalate === undefined ? 0 : (t.escalate_max ?? 2),
        profiles: t.profiles,
        servers: t.servers,
      };
    }),
    capture: {
      via: v.capture.via,
      cpuDurationMs: v.capture.cpu_duration,
      timeoutMs: v.capture.timeout,
      allocsWindowMs: v.capture.allocs_window,
      maxConcurrent: v.capture.max_concurrent,
      limit: { count: v.capture.limit.count, windowMs: v.capture.limit.window },
      maxProfileBytes: v.capture.max_profile_size,
    },
    storage: {
      dir: v.storage.dir,
      retention: {
        maxIncidentsPerServer: v.storage.retention.max_incidents_per_server,
        maxTotalSizeBytes: v.storage.retention.max_total_size,
        maxAgeMs: v.storage.retention.max_age,
        intervalMs: v.storage.retention.interval,
      },
      // Left out when absent: a single daemon's config is exactly what it was before.
      ...(v.storage.object_store === undefined
        ? {}
        : { objectStore: { bucket: v.storage.object_store.bucket, replicas: v.storage.object_store.replicas, maxBytes: v.storage.object_store.max_bytes } }),
    },
    alerts: { labels: v.alerts.labels, profiles: v.alerts.profiles, cooldownMs: v.alerts.cooldown },
    shutdownTimeoutMs: v.shutdown_timeout,
    // Left out when absent (not `undefined`): a config without it is exactly what it was before replicas.
    ...(v.coordination === undefined
      ? {}
      : {
          coordination: {
            ...toNatsConnection(v.coordination),
            /** undefined: host name and pid (src/coord/). */
            instance: v.coordination.instance,
            heartbeatMs: v.coordination.heartbeat,
            leaseTtlMs: v.coordination.lease_ttl,
            buckets: { live: v.coordination.buckets.live, state: v.coordination.buckets.state },
            replicas: v.coordination.replicas,
          },
        }),
  };
}

type ConnParsed = NonNullable<Parsed['system_account']> | NonNullable<Parsed['coordination']>;

/** The connection keys of system_account or coordination, as the NATS client is given them. */
function toNatsConnection(c: ConnParsed) {
  return {
    urls: c.url,
    user: c.user,
    password: pickSecret(c, 'password'),
    token: pickSecret(c, 'token'),
    creds: c.creds,
    nkeySeed: pickSecret(c, 'nkey_seed'),
    tls: toTls(c.tls),
    timeoutMs: c.timeout,
  };
}

/** A context for reading the schema's shape without loading a file (JSON Schema, docs, key lists). */
export const STATIC_CONTEXT: SchemaContext & { readonly file: string } = {
  file: 'config.yaml',
  dir: '.',
  readFile: () => '',
  fileProblem: () => undefined,
  has: () => false,
  line: () => undefined,
};

/** The keys each YAML mapping allows, by its location (`servers[]` is any item of `servers`). */
export const KEYS: Readonly<Record<string, readonly string[]>> = (() => {
  const out: Record<string, string[]> = {};
  const walk = (s: z.ZodType, where: string): void => {
    for (;;) {
      const def = s.def as { type: string; innerType?: z.ZodType; in?: z.ZodType };
      if (def.innerType !== undefined) s = def.innerType;
      else if (def.type === 'pipe' && def.in !== undefined) s = def.in;
      else break;
    }
    if (s instanceof z.ZodArray) walk(s.element as z.ZodType, `${where}[]`);
    if (!(s instanceof z.ZodObject)) return;
    const shape = s.shape as Record<string, z.ZodType>;
    out[where] = Object.keys(shape);
    for (const [key, value] of Object.entries(shape)) walk(value, where === '' ? key : `${where}.${key}`);
  };
  walk(root(STATIC_CONTEXT), '');
  return out;
})();
