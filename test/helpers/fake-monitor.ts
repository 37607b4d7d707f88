/**
 * A fake NATS monitoring endpoint on a random loopback port, for faults a real nats-server cannot produce
 * on demand: error statuses, HTML, truncated or foreign JSON, huge bodies, silence, redirect loops. The
 * `varz` mode serves a recorded varz (test/fixtures/varz/2.10.27-standalone.json) under its own identity
 * and can require request headers, so a test can prove that credentials really were sent.
 * Always `close()` it in an `after` hook.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { ROOT } from './daemon.js';

export type MonitorMode =
  | 'varz'
  | 'status500'
  | 'html'
  | 'truncated'
  | 'not-varz'
  | 'huge-with-length'
  | 'huge-chunked'
  | 'silent'
  | 'headers-then-silence'
  | 'redirect-loop';

/** The varz recorded from a real nats-server 2.10.27, parsed. */
export function fixtureVarz(): Record<string, unknown> {
  return JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'varz', '2.10.27-standalone.json'), 'utf8')) as Record<string, unknown>;
}

/** A valid-looking server_id (N + 55 base32 characters) derived from a name, distinct per name. */
export function fakeServerId(name: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let h = 2166136261;
  let out = 'N';
  for (let i = 0; out.length < 56; i++) {
    h = Math.imul(h ^ (name.charCodeAt(i % name.length) + i), 16777619) >>> 0;
    out += alphabet[h % 32];
  }
  return out;
}

export interface FakeMonitorOptions {
  /** varz mode: server_name (also used to derive a distinct server_id). */
  name?: string;
  /** varz mode: fields merged over the fixture on every request (a function is called per request). */
  varz?: Record<string, unknown> | ((n: number) => Record<string, unknown>);
  /** varz mode: headers (lower-case names) that must be present with exactly this value, else 401. */
  requireHeaders?: Record<string, string>;
  /** varz mode: answer each request this much later (a slow endpoint). */
  delayMs?: number;
  /** varz mode: a refused request gets its own headers back in the 401 body (like a chatty proxy). */
  echoOnRefuse?: boolean;
  /** huge modes: total body size (default 100 MiB). */
  hugeBytes?: number;
}

export interface FakeMonitor {
  readonly mode: MonitorMode;
  readonly port: number;
  readonly url: string;
  /** Requests received (any path). */
  readonly requests: number;
  /** /varz requests answered with a varz document (varz mode). */
  readonly served: number;
  /** Requests refused for missing or wrong required headers. */
  readonly refused: number;
  /** Headers of every request received, oldest first (at most the last 1000). */
  readonly headers: IncomingHttpHeaders[];
  /** Body bytes actually written by the huge modes, all requests together. */
  readonly bytesSent: number;
  /** Largest number of connections open at once. */
  readonly maxConnections: number;
  close(): Promise<void>;
}

const CHUNK = Buffer.alloc(64 * 1024, 0x20); // spaces: never valid varz, whatever the cut

/** Writes `total` bytes in 64 KiB chunks, respecting backpressure; stops when the peer goes away. */
async function streamBytes(res: ServerResponse, total: number, counted: (n: number) => void): Promise<void> {
  let left = total;
  let gone = false;
  res.once('close', () => (gone = true));
  while (left > 0 && !gone && !res.destroyed) {
    const n = Math.min(left, CHUNK.length);
    const ok = res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n));
    counted(n);
    left -= n;
    if (!ok) {
      await new Promise<void>((r) => {
        const done = (): void => {
          res.off('drain', done);
          res.off('close', done);
          r();
        };
        res.once('drain', done);
        res.once('close', done);
      });
    }
  }
  if (!gone && !res.destroyed) res.end();
}

export async function startFakeMonitor(mode: MonitorMode, o: FakeMonitorOptions = {}): Promise<FakeMonitor> {
  const sockets = new Set<Socket>();
  const base = fixtureVarz();
  const name = o.name ?? `fake-${mode}`;
  const hugeBytes = o.hugeBytes ?? 100 * 1024 * 1024;
  const state = { requests: 0, served: 0, refused: 0, bytesSent: 0, maxConnections: 0, headers: [] as IncomingHttpHeaders[] };
  let port = 0;

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    state.requests++;
    state.headers.push(req.headers);
    if (state.headers.length > 1000) state.headers.shift();
    req.resume();
    switch (mode) {
      case 'varz': {
        for (const [k, v] of Object.entries(o.requireHeaders ?? {})) {
          if (req.headers[k] !== v) {
            state.refused++;
            res.writeHead(401, { 'content-type': 'text/plain' });
            res.end(o.echoOnRefuse ? `unauthorized; you sent ${JSON.stringify(req.headers)}\n` : 'unauthorized\n');
            return;
          }
        }
        if (!(req.url ?? '').startsWith('/varz')) {
          res.writeHead(404, { 'content-type': 'text/plain' });
          res.end('404 page not found\n');
          return;
        }
        const extra = typeof o.varz === 'function' ? o.varz(state.served) : (o.varz ?? {});
        state.served++;
        const doc = { ...base, server_id: fakeServerId(name), server_name: name, now: new Date().toISOString(), ...extra };
        const text = JSON.stringify(doc, null, 2);
        const answer = (): void => {
          if (res.destroyed) return;
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
          res.end(text);
        };
        if (o.delayMs) setTimeout(answer, o.delayMs);
        else answer();
        return;
      }
      case 'status500':
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('internal server error\n');
        return;
      case 'html': {
        const text = '<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>\n';
        res.writeHead(200, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(text) });
        res.end(text);
        return;
      }
      case 'truncated': {
        const full = JSON.stringify({ ...base, server_id: fakeServerId(name), server_name: name });
        const text = full.slice(0, Math.floor(full.length / 2));
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
        return;
      }
      case 'not-varz': {
        // Valid JSON, and even looks like a monitoring reply, but it is /connz, not /varz.
        const text = JSON.stringify({ server_id: fakeServerId(name), now: new Date().toISOString(), num_connections: 0, total: 0, offset: 0, limit: 1024, connections: [] });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
        return;
      }
      case 'huge-with-length':
      case 'huge-chunked': {
        const headers: Record<string, string | number> = { 'content-type': 'application/json' };
        if (mode === 'huge-with-length') headers['content-length'] = hugeBytes;
        res.writeHead(200, headers);
        void streamBytes(res, hugeBytes, (n) => (state.bytesSent += n));
        return;
      }
      case 'silent':
        // Accepted and read, never answered.
        return;
      case 'headers-then-silence':
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': 100_000 });
        res.write('{"server_id": "NSILENT", "cpu": 1');
        return;
      case 'redirect-loop':
        res.writeHead(302, { location: `http://127.0.0.1:${port}${req.url ?? '/varz'}`, 'content-length': 0 });
        res.end();
        return;
    }
  };

  const server = createServer(handler);
  server.keepAliveTimeout = 30_000;
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    state.maxConnections = Math.max(state.maxConnections, sockets.size);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  return {
    mode,
    port,
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return state.requests;
    },
    get served() {
      return state.served;
    },
    get refused() {
      return state.refused;
    },
    get headers() {
      return state.headers;
    },
    get bytesSent() {
      return state.bytesSent;
    },
    get maxConnections() {
      return state.maxConnections;
    },
    close(): Promise<void> {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      return closed;
    },
  };
}
