/**
 * A fake Go `prof_port` (/debug/pprof/*) on a random loopback port: answers every profile with the bytes
 * of a recorded profile (test/fixtures/profiles/allocs.pb.gz, as a real nats-server sent them) after a
 * delay, and records how many requests were in flight at once. Always `close()` it in an `after` hook.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { ROOT } from './daemon.js';

export const ALLOCS_PROFILE: Buffer = readFileSync(join(ROOT, 'test', 'fixtures', 'profiles', 'allocs.pb.gz'));

export interface FakePprof {
  readonly port: number;
  readonly url: string;
  /** Profile requests received. */
  readonly requests: number;
  /** Requests in flight right now. */
  readonly inFlight: number;
  /** Largest number of requests in flight at once. */
  readonly maxInFlight: number;
  /** Request paths, oldest first. */
  readonly paths: string[];
  close(): Promise<void>;
}

export async function startFakePprof(o: { delayMs?: number } = {}): Promise<FakePprof> {
  const delayMs = o.delayMs ?? 100;
  const sockets = new Set<Socket>();
  const state = { requests: 0, inFlight: 0, maxInFlight: 0, paths: [] as string[] };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    req.resume();
    const path = req.url ?? '/';
    if (!path.startsWith('/debug/pprof/')) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('404 page not found\n');
      return;
    }
    state.requests++;
    state.paths.push(path);
    state.inFlight++;
    state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      state.inFlight--;
    };
    res.once('close', finish);
    const timer = setTimeout(() => {
      if (res.destroyed) return;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': ALLOCS_PROFILE.length });
      res.end(ALLOCS_PROFILE, finish);
    }, delayMs);
    res.once('close', () => clearTimeout(timer));
  };
  const server = createServer(handler);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | undefined;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return state.requests;
    },
    get inFlight() {
      return state.inFlight;
    },
    get maxInFlight() {
      return state.maxInFlight;
    },
    get paths() {
      return state.paths;
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
