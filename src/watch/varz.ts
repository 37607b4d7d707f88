/**
 * Reading a server's `/varz`: a pure parser (untrusted JSON -> typed sample) and an HTTP fetcher
 * (keep-alive HTTP/1.1, response-size cap, timeout, cancellation).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { requestCancel, type Canceller } from '../cancel.js';
import { PollError } from '../errors.js';
import { endpointOf, Http1Aborted, Http1Error, Http1Pool, Http1TooLarge, requestHead, type Http1Endpoint, type Http1Response } from './http1.js';
import type { ServerConfig, TlsConfig } from '../config/types.js';

/** The varz fields the daemon uses. */
export interface Varz {
  serverId: string;
  serverName: string;
  cluster: string | undefined;
  tags: string[];
  version: string;
  /** Percent of one core, as the server reports it. */
  cpu: number;
  /** Resident set size, bytes. */
  mem: number;
  cores: number;
  gomaxprocs: number | undefined;
  gomemlimit: number | undefined;
  /**
   * The parsed document, for rules on a field path (varz from its root; STATSZ, the reply's `statsz` object).
   * The rule engine reads only the paths its rules name; the flow drops it once the rules have read it, so
   * it is not kept for an interval.
   */
  doc?: Readonly<Record<string, unknown>> | undefined;
}

export class VarzParseError extends Error {
  override readonly name = 'VarzParseError';
}

function num(o: Record<string, unknown>, key: string, required: boolean): number | undefined {
  const v = o[key];
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (v === undefined && !required) return undefined;
  throw new VarzParseError(`varz field "${key}" is ${v === undefined ? 'missing' : `not a number (${typeof v})`}`);
}

function str(o: Record<string, unknown>, key: string, required: boolean): string | undefined {
  const v = o[key];
  if (typeof v === 'string') return v;
  if (v === undefined && !required) return undefined;
  throw new VarzParseError(`varz field "${key}" is ${v === undefined ? 'missing' : `not a string (${typeof v})`}`);
}

/** Parses an already-decoded JSON value as varz. Throws VarzParseError. */
export function varzFromJson(doc: unknown): Varz {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new VarzParseError('varz is not a JSON object');
  }
  const o = doc as Record<string, unknown>;
  const serverId = str(o, 'server_id', true) as string;
  if (serverId.length === 0) throw new VarzParseError('varz field "server_id" is empty');
  const cluster = o['cluster'];
  let clusterName: string | undefined;
  if (typeof cluster === 'object' && cluster !== null) {
    const n = (cluster as Record<string, unknown>)['name'];
    if (typeof n === 'string' && n.length > 0) clusterName = n;
  }
  const rawTags = o['tags'];
  const tags = Array.isArray(rawTags) ? rawTags.filter((t): t is string => typeof t === 'string') : [];
  const gomemlimit = num(o, 'gomemlimit', false);
  return {
    serverId,
    serverName: str(o, 'server_name', false) || serverId,
    cluster: clusterName,
    tags,
    version: str(o, 'version', true) as string,
    cpu: num(o, 'cpu', true) as number,
    mem: num(o, 'mem', true) as number,
    cores: num(o, 'cores', false) ?? 0,
    gomaxprocs: num(o, 'gomaxprocs', false),
    gomemlimit: gomemlimit !== undefined && gomemlimit > 0 ? gomemlimit : undefined,
    doc: o,
  };
}

/** Parses varz JSON text. Throws VarzParseError for anything that is not varz. */
export function parseVarz(text: string): Varz {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new VarzParseError(`varz is not valid JSON: ${(err as Error).message}`);
  }
  return varzFromJson(doc);
}

/** The result of one successful poll: parsed fields plus the body, kept for the incident snapshot. */
export interface VarzReading {
  readonly varz: Varz;
  /** The bytes as received (kept as a Buffer: off the JS heap, so holding one per server costs the GC little). */
  readonly body: Uint8Array;
  readonly kind: 'varz';
}

export interface VarzFetchOptions {
  timeoutMs: number;
  maxBodyBytes: number;
  /** Cancels the request when it fires (the poller's, per server). */
  cancel?: Canceller;
}

/** A server's TLS settings as loaded: the files' contents, and the key its connections are pooled under. */
interface TlsEntry {
  /** URL + settings + a digest of the files' contents: a reload that rotates a CA or a cert changes it. */
  readonly key: string;
  readonly connect: ConnectionOptions;
}

/** Reads the TLS files (throws the read error, e.g. ENOENT). */
function loadTls(url: string, tls: TlsConfig): TlsEntry {
  const ca = tls.ca ? readFileSync(tls.ca) : undefined;
  const cert = tls.cert ? readFileSync(tls.cert) : undefined;
  const key = tls.key ? readFileSync(tls.key) : undefined;
  const digest = createHash('sha256');
  for (const b of [ca, cert, key]) digest.update(b === undefined ? '-' : `${b.length}:`).update(b ?? '');
  return {
    key: `tls ${JSON.stringify([url, tls.insecure, tls.ca ?? null, tls.cert ?? null, tls.key ?? null, digest.digest('hex')])}`,
    connect: { rejectUnauthorized: !tls.insecure, ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) },
  };
}

/**
 * GETs `/varz` over one keep-alive connection per monitoring endpoint (src/watch/http1.ts), with per-server
 * TLS where configured. Connections are pooled by origin, and for https by the TLS files as loaded, so a
 * rotated CA never reuses a connection verified with the old one.
 */
export class VarzClient {
  readonly #pool: Http1Pool;
  /** Per config object, built once: where to connect and the request's bytes (a reload brings new objects, so rotated files are read again). */
  readonly #endpoints = new WeakMap<ServerConfig, Http1Endpoint>();

  constructor(opts: { idleMs?: number } = {}) {
    this.#pool = new Http1Pool(opts);
  }

  /** Throws what reading the server's TLS files throws (ENOENT…), or a TypeError for a header it cannot send. */
  #endpoint(server: ServerConfig): Http1Endpoint {
    let e = this.#endpoints.get(server);
    if (!e) {
      const u = new URL(`${server.url}/varz`);
      const tls = server.tls ? loadTls(server.url, server.tls) : undefined;
      e = endpointOf(u, requestHead(`${u.pathname}${u.search}`, u.host, VarzClient.headers(server)), tls?.connect, tls?.key ?? u.origin);
      this.#endpoints.set(server, e);
    }
    return e;
  }

  /** Connections open now, idle or polling (for tests and diagnostics). */
  get openConnections(): number {
    return this.#pool.open;
  }

  /**
   * Keeps the idle connections of `servers` (the servers watched from now on) and closes every other one:
   * those of removed servers and those verified with TLS files a reload has since replaced. A poll in
   * flight finishes on its connection, which is then closed rather than kept. Returns how many were closed.
   */
  async retain(servers: readonly ServerConfig[]): Promise<number> {
    const keep = new Set<string>();
    for (const s of servers) {
      try {
        keep.add(this.#endpoint(s).key);
      } catch {
        // An unreadable file: that server's polls report it; it has no connection to keep.
      }
    }
    return this.#pool.retain(keep);
  }

  static headers(server: ServerConfig): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json', 'user-agent': 'nats-autoprof' };
    for (const [k, v] of Object.entries(server.headers)) h[k.toLowerCase()] = v.reveal();
    if (server.basicAuth) {
      const token = Buffer.from(`${server.basicAuth.username}:${server.basicAuth.password.reveal()}`).toString('base64');
      h['authorization'] = `Basic ${token}`;
    } else if (server.bearerToken) {
      h['authorization'] = `Bearer ${server.bearerToken.reveal()}`;
    }
    return h;
  }

  /** GETs `<url>/varz`. Throws PollError (kind tells why); never returns a partial body. */
  async fetch(server: ServerConfig, opts: VarzFetchOptions): Promise<VarzReading> {
    const url = `${server.url}/varz`;
    const ctx = { url };
    const cancel = requestCancel(opts.timeoutMs, opts.cancel);
    let res: Http1Response;
    try {
      res = await this.#pool.get(this.#endpoint(server), { maxBodyBytes: opts.maxBodyBytes, cancel: cancel.signal });
    } catch (err) {
      if (err instanceof Http1TooLarge) {
        const msg = err.declared === undefined
          ? `${url} sent more than poll.max_body_size (${opts.maxBodyBytes} bytes)`
          : `${url} sent ${err.declared} bytes, more than poll.max_body_size (${opts.maxBodyBytes})`;
        throw new PollError(msg, 'too_large', ctx);
      }
      throw classify(err, url, cancel, opts.timeoutMs);
    } finally {
      cancel.release();
    }
    if (res.status !== 200) throw new PollError(`${url} answered HTTP ${res.status}`, 'http', ctx, { status: res.status });
    try {
      return { varz: parseVarz(res.body.toString('utf8')), body: res.body, kind: 'varz' };
    } catch (err) {
      throw new PollError(`${url}: ${(err as Error).message}`, 'invalid', ctx, { cause: err });
    }
  }

  async close(): Promise<void> {
    this.#pool.close();
  }
}

function classify(err: unknown, url: string, cancel: { timedOut: boolean }, timeoutMs: number): PollError {
  const ctx = { url };
  if (cancel.timedOut) return new PollError(`${url} did not answer within ${timeoutMs} ms`, 'timeout', ctx, { cause: err });
  if (err instanceof Http1Aborted) return new PollError(`poll of ${url} was cancelled`, 'aborted', ctx, { cause: err });
  if (err instanceof Http1Error && err.code === 'EPROTO') return new PollError(`${url} sent a malformed HTTP answer: ${err.message}`, 'invalid', ctx, { cause: err });
  if (err instanceof Http1Error) return new PollError(`${url} could not be reached: ${err.message}`, 'network', ctx, { cause: err });
  const code = (err as { code?: string }).code;
  const detail = code ? `${code}` : (err as Error).message;
  return new PollError(`${url} could not be reached: ${detail}`, 'network', ctx, { cause: err });
}
