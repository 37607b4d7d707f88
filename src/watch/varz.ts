/**
 * Reading a server's `/varz`: a pure parser (untrusted JSON -> typed sample) and an HTTP fetcher
 * (undici, keep-alive, response-size cap, timeout, cancellation).
 */
import { Agent, type Dispatcher } from 'undici';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { requestCancel, type Canceller, type RequestCancel } from '../cancel.js';
import { PollError } from '../errors.js';
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
  /** The server's own clock at the time of the reply (ISO). */
  now: string | undefined;
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
    now: str(o, 'now', false),
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

/** A server's TLS settings as loaded: the files' contents, and the key they are pooled under. */
interface TlsEntry {
  /** URL + settings + a digest of the files' contents: a reload that rotates a CA or a cert changes it. */
  readonly key: string;
  readonly connect: NonNullable<Agent.Options['connect']>;
}

/** Reads the TLS files (throws the read error, e.g. ENOENT). */
function loadTls(url: string, tls: TlsConfig): TlsEntry {
  const ca = tls.ca ? readFileSync(tls.ca) : undefined;
  const cert = tls.cert ? readFileSync(tls.cert) : undefined;
  const key = tls.key ? readFileSync(tls.key) : undefined;
  const digest = createHash('sha256');
  for (const b of [ca, cert, key]) digest.update(b === undefined ? '-' : `${b.length}:`).update(b ?? '');
  return {
    key: JSON.stringify([url, tls.insecure, tls.ca ?? null, tls.cert ?? null, tls.key ?? null, digest.digest('hex')]),
    connect: { rejectUnauthorized: !tls.insecure, ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) },
  };
}

/** A keep-alive HTTP pool for monitoring endpoints, with per-server TLS where configured. */
export class VarzClient {
  readonly #shared: Agent;
  /** TLS agents by TlsEntry.key (not by URL alone: a rotated CA must not reuse the old connections). */
  readonly #tlsAgents = new Map<string, Agent>();
  /** Files read once per config object (a reload brings new objects, so rotated files are read again). */
  readonly #tlsEntries = new WeakMap<ServerConfig, TlsEntry>();

  constructor(connections = 1) {
    this.#shared = new Agent({ keepAliveTimeout: 30_000, connections, pipelining: 1 });
  }

  #tlsEntry(server: ServerConfig & { tls: TlsConfig }): TlsEntry {
    let e = this.#tlsEntries.get(server);
    if (!e) {
      e = loadTls(server.url, server.tls);
      this.#tlsEntries.set(server, e);
    }
    return e;
  }

  #dispatcher(server: ServerConfig): Dispatcher {
    if (!server.tls) return this.#shared;
    const e = this.#tlsEntry(server as ServerConfig & { tls: TlsConfig });
    let agent = this.#tlsAgents.get(e.key);
    if (!agent) {
      agent = new Agent({ keepAliveTimeout: 30_000, connect: e.connect });
      this.#tlsAgents.set(e.key, agent);
    }
    return agent;
  }

  /** TLS agents open now (their count, for tests and diagnostics). */
  get tlsAgents(): number {
    return this.#tlsAgents.size;
  }

  /**
   * Keeps the TLS agents of `servers` (the servers watched from now on) and closes every other one: those of
   * removed servers and those built from TLS files a reload has since replaced. Their requests in flight
   * finish first (undici's graceful close). Returns how many were closed.
   */
  async retain(servers: readonly ServerConfig[]): Promise<number> {
    const keep = new Set<string>();
    for (const s of servers) {
      if (!s.tls) continue;
      try {
        keep.add(this.#tlsEntry(s as ServerConfig & { tls: TlsConfig }).key);
      } catch {
        // An unreadable file: that server's polls report it; it has no agent to keep.
      }
    }
    const closing: Agent[] = [];
    for (const [key, agent] of this.#tlsAgents) {
      if (keep.has(key)) continue;
      this.#tlsAgents.delete(key);
      closing.push(agent);
    }
    await Promise.all(closing.map((a) => a.close().catch(() => a.destroy())));
    return closing.length;
  }

  /** Per server, built once: the request's origin, path and headers (a URL parse per poll shows in profiles). */
  readonly #requestCache = new WeakMap<ServerConfig, { origin: string; path: string; headers: Record<string, string> }>();

  #request(server: ServerConfig): { origin: string; path: string; headers: Record<string, string> } {
    let r = this.#requestCache.get(server);
    if (!r) {
      const u = new URL(`${server.url}/varz`);
      r = { origin: u.origin, path: `${u.pathname}${u.search}`, headers: VarzClient.headers(server) };
      this.#requestCache.set(server, r);
    }
    return r;
  }

  static headers(server: ServerConfig): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json' };
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
    const cancel = requestCancel(opts.timeoutMs, opts.cancel);
    try {
      return await this.#get(server, url, cancel, opts);
    } finally {
      cancel.release();
    }
  }

  async #get(server: ServerConfig, url: string, cancel: RequestCancel, opts: VarzFetchOptions): Promise<VarzReading> {
    let res: Dispatcher.ResponseData;
    try {
      const r = this.#request(server);
      res = await this.#dispatcher(server).request({
        origin: r.origin,
        path: r.path,
        method: 'GET',
        headers: r.headers,
        signal: cancel.signal,
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
      });
    } catch (err) {
      throw classify(err, url, cancel, opts.timeoutMs);
    }
    const ctx = { url };
    try {
      if (res.statusCode !== 200) {
        throw new PollError(`${url} answered HTTP ${res.statusCode}`, 'http', ctx, { status: res.statusCode });
      }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > opts.maxBodyBytes) {
        throw new PollError(`${url} sent ${declared} bytes, more than poll.max_body_size (${opts.maxBodyBytes})`, 'too_large', ctx);
      }
      const body = await readCapped(res.body, opts.maxBodyBytes);
      if (body === undefined) {
        throw new PollError(`${url} sent more than poll.max_body_size (${opts.maxBodyBytes} bytes)`, 'too_large', ctx);
      }
      try {
        return { varz: parseVarz(body.toString('utf8')), body, kind: 'varz' };
      } catch (err) {
        throw new PollError(`${url}: ${(err as Error).message}`, 'invalid', ctx, { cause: err });
      }
    } catch (err) {
      if (err instanceof PollError) throw err;
      throw classify(err, url, cancel, opts.timeoutMs);
    } finally {
      // Drop whatever is left of the body so the socket is freed (or destroyed when over the cap).
      // Destroying an unread body makes undici emit 'error'; without a listener that would crash the process.
      res.body.on('error', () => undefined);
      if (!res.body.destroyed) res.body.destroy();
    }
  }

  async close(): Promise<void> {
    const agents = [this.#shared, ...this.#tlsAgents.values()];
    this.#tlsAgents.clear();
    await Promise.all(agents.map((a) => a.close().catch(() => a.destroy())));
  }
}

/**
 * The whole body, or undefined as soon as it exceeds `max` bytes. Read through 'data' events: an async
 * iterator costs a promise per chunk. A single-chunk body is kept as undici delivered it (a view of exactly
 * the socket read that carried it), larger ones are joined once.
 */
function readCapped(body: Readable, max: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const onData = (b: Buffer): void => {
      size += b.length;
      if (size > max) {
        settled = true;
        body.off('data', onData);
        resolve(undefined);
        return;
      }
      chunks.push(b);
    };
    body.on('data', onData);
    body.once('end', () => {
      settled = true;
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    });
    body.once('error', (err) => {
      settled = true;
      reject(err);
    });
    // Closed without 'end' or 'error' (destroyed from outside): not a complete body. 'close' follows every
    // body, so the error (and its stack) is made only when nothing else settled the read.
    body.once('close', () => {
      if (!settled) reject(new Error('the response body was closed before its end'));
    });
  });
}

function classify(err: unknown, url: string, cancel: { timedOut: boolean }, timeoutMs: number): PollError {
  const ctx = { url };
  const code = (err as { code?: string }).code;
  if (cancel.timedOut || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new PollError(`${url} did not answer within ${timeoutMs} ms`, 'timeout', ctx, { cause: err });
  }
  if ((err as Error).name === 'AbortError' || code === 'UND_ERR_ABORTED') {
    return new PollError(`poll of ${url} was cancelled`, 'aborted', ctx, { cause: err });
  }
  const detail = code ? `${code}` : (err as Error).message;
  return new PollError(`${url} could not be reached: ${detail}`, 'network', ctx, { cause: err });
}
