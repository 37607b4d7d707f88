/**
 * Varz simulator (a child process): serves `count` distinct /varz documents, each on its own loopback port,
 * as `count` separate monitoring endpoints. One request handler, one node:http server per port, keep-alive
 * without an idle timeout (like nats-server's Go HTTP server). Each server rotates through a few
 * pre-rendered variants so values change from poll to poll without costing the simulator a render.
 *
 * IPC: {type:'start', first, count, seed} -> {type:'ready', ports}
 *      {type:'set', cpu, indices?}         -> {type:'set-done'}   (cpu forced; null restores random values)
 *      {type:'stats'}                      -> {type:'stats', requests, maxUnanswered}
 *
 * maxUnanswered: the most connections open at once that had not yet been answered once (a poller that opens
 * 1000 connections in one instant shows ~1000; one with at most K requests in flight, at most K).
 */
import { createServer, type Server } from 'node:http';
import { renderVarz, rng, simServers, values, type SimServer } from './docs.js';

const VARIANTS = 4;

interface Endpoint {
  sim: SimServer;
  port: number;
  bodies: Buffer[];
  next: number;
  server: Server;
}

const endpoints: Endpoint[] = [];
let requests = 0;
let unanswered = 0;
let maxUnanswered = 0;
const answered = new WeakSet<object>();
let r = rng(7);

function render(e: Endpoint, cpu: number | null): void {
  const now = Date.now();
  e.bodies = [];
  for (let k = 0; k < VARIANTS; k++) {
    e.bodies.push(Buffer.from(renderVarz(e.sim, values(r, cpu ?? undefined), { client: 4222, http: e.port }, now + k * 1000)));
  }
}

function listen(sim: SimServer): Promise<Endpoint> {
  const e: Endpoint = { sim, port: 0, bodies: [], next: 0, server: undefined as unknown as Server };
  const server = createServer((req, res) => {
    requests++;
    if (!answered.has(req.socket)) {
      answered.add(req.socket);
      unanswered--;
    }
    if (req.url !== '/varz') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found\n');
      return;
    }
    const body = e.bodies[e.next++ % e.bodies.length] as Buffer;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body);
  });
  server.on('connection', (socket) => {
    unanswered++;
    maxUnanswered = Math.max(maxUnanswered, unanswered);
    socket.once('close', () => {
      if (!answered.has(socket)) unanswered--;
    });
  });
  server.keepAliveTimeout = 0;
  server.headersTimeout = 0;
  server.requestTimeout = 0;
  e.server = server;
  return new Promise((res, rej) => {
    server.once('error', rej);
    server.listen(0, '127.0.0.1', 4096, () => {
      e.port = (server.address() as { port: number }).port;
      render(e, null);
      res(e);
    });
  });
}

process.on('message', (m: { type: string; first?: number; count?: number; seed?: number; cpu?: number | null; indices?: number[] }) => {
  void (async () => {
    try {
      if (m.type === 'start') {
        const first = m.first ?? 0;
        r = rng((m.seed ?? 1) * 7919 + first);
        const sims = simServers(first + (m.count ?? 0), m.seed ?? 1).slice(first);
        for (let i = 0; i < sims.length; i += 200) {
          endpoints.push(...(await Promise.all(sims.slice(i, i + 200).map(listen))));
        }
        process.send?.({ type: 'ready', ports: endpoints.map((e) => e.port) });
      } else if (m.type === 'set') {
        const which = m.indices ? m.indices.map((i) => endpoints[i]).filter((e): e is Endpoint => e !== undefined) : endpoints;
        for (const e of which) render(e, m.cpu ?? null);
        process.send?.({ type: 'set-done' });
      } else if (m.type === 'stats') {
        process.send?.({ type: 'stats', requests, maxUnanswered });
      }
    } catch (err) {
      process.send?.({ type: 'error', error: String(err) });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
