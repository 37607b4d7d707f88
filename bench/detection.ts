/**
 * Benchmark 3: detection latency. A real nats-server (GOMAXPROCS=1, so it can burn at most one core of
 * this machine); a load generator starts at a known time; the daemon polls the server's /varz every 1 s
 * through a recording proxy, with a rule `cpu above 40 for 0s`, and captures `allocs` through a recording
 * proxy in front of the server's prof_port.
 *
 * Per trial: t0 load starts; tVarz the server's varz first shows cpu > 40 (an observer reads it every
 * 20 ms); tPoll the proxy hands the daemon the first such varz (the poll that saw it); tDecide the daemon
 * logs 'capturing' (ISO time, ms); tReq the capture request reaches the prof_port proxy.
 * The daemon's added latency is tDecide - tPoll; end to end is tDecide - t0, against the floor tPoll - t0
 * (the server's once-a-second cpu refresh plus the wait for the next poll; at most 1 s + 1 s interval,
 * plus the part of a second the load must run before the averaged cpu crosses the threshold).
 *
 *   node --import tsx bench/detection.ts [--trials 20] [--smoke]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, createServer, request, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APP_PASSWORD, APP_USER, cleanupTempDirs, startServer, type NatsServer } from '../test/helpers/nats-server.js';
import { ask, forkTs, sleep, stopChild } from './lib/children.js';
import { daemonConfig } from './lib/config.js';
import { BenchDaemon, type LogLine } from './lib/daemon.js';
import { percentile } from './lib/prom.js';
import { rng } from './lib/docs.js';
import { log, row, runAlone, type BenchOptions, type BenchResult } from './lib/report.js';

const BENCH = 'detection';
const ABOVE = 40;
const REARM = 10;
const INTERVAL_MS = 1000;

interface Seen {
  at: number;
  cpu: number;
}

const upstream = new Agent({ keepAlive: true, maxSockets: 4 });

function get(url: string): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> {
  return new Promise((res, rej) => {
    const req = request(url, { agent: upstream }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => res({ status: r.statusCode ?? 0, headers: r.headers, body: Buffer.concat(chunks) }));
      r.on('error', rej);
    });
    req.on('error', rej);
    req.end();
  });
}

function cpuOf(body: Buffer): number {
  try {
    return (JSON.parse(body.toString('utf8')) as { cpu: number }).cpu;
  } catch {
    return -1;
  }
}

/** A proxy on a loopback port that forwards GETs to `target` and calls `record` as it answers. */
function proxy(target: string, record: (path: string, body: Buffer) => void): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    get(`${target}${req.url ?? '/'}`).then(
      (r) => {
        const headers: Record<string, string> = {};
        for (const k of ['content-type', 'content-encoding']) {
          const v = r.headers[k];
          if (typeof v === 'string') headers[k] = v;
        }
        res.writeHead(r.status, { ...headers, 'content-length': r.body.length });
        record(req.url ?? '/', r.body);
        res.end(r.body);
      },
      () => res.writeHead(502).end(),
    );
  });
  server.keepAliveTimeout = 0;
  return new Promise((res) => server.listen(0, '127.0.0.1', () => res({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` })));
}

async function until<T>(what: string, timeoutMs: number, fn: () => T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export async function detection(o: BenchOptions): Promise<BenchResult> {
  const trials = o.trials ?? (o.smoke ? 2 : 20);
  const notes: string[] = [];
  const prevGomaxprocs = process.env['GOMAXPROCS'];
  process.env['GOMAXPROCS'] = '1';
  let srv: NatsServer | undefined;
  const closers: (() => Promise<void> | void)[] = [];
  try {
    log(o, `${BENCH}: starting a nats-server (GOMAXPROCS=1) and the load generator`);
    srv = await startServer({ name: 'bench-target' });
    const s = srv;
    const polls: Seen[] = [];
    const profReqs: number[] = [];
    const observed: Seen[] = [];
    const mon = await proxy(s.monitorUrl, (path, body) => {
      if (path === '/varz') polls.push({ at: Date.now(), cpu: cpuOf(body) });
    });
    closers.push(() => void mon.server.close());
    const prof = await proxy(s.profUrl, () => undefined);
    prof.server.prependListener('request', () => profReqs.push(Date.now()));
    closers.push(() => void prof.server.close());
    // The observer: the server's own view, read every 20 ms.
    let observing = true;
    const observer = (async () => {
      while (observing) {
        try {
          const r = await get(`${s.monitorUrl}/varz`);
          observed.push({ at: Date.now(), cpu: cpuOf(r.body) });
          if (observed.length > 20_000) observed.splice(0, 10_000);
        } catch {
          // keep observing
        }
        await sleep(20);
      }
    })();
    closers.push(async () => {
      observing = false;
      await observer;
    });
    const load = forkTs('lib/load-gen.ts');
    closers.push(() => stopChild(load));
    await ask(load, { type: 'init', host: '127.0.0.1', port: s.ports.client, user: APP_USER, pass: APP_PASSWORD, subs: 4 }, 'ready');

    const dir = mkdtempSync(join(tmpdir(), 'nats-autoprof-bench-'));
    closers.push(() => rmSync(dir, { recursive: true, force: true }));
    const decisions: number[] = [];
    const d = await BenchDaemon.start({
      dir,
      config: daemonConfig({
        servers: [{ url: mon.url, name: 'bench', profUrl: prof.url }],
        intervalMs: INTERVAL_MS,
        timeoutMs: INTERVAL_MS,
        triggers: `triggers:\n  - { name: spike, metric: cpu, above: ${ABOVE}, for: 0s, rearm_below: ${REARM}, cooldown: 0s, profiles: [allocs] }\n`,
        extra: 'capture: { via: prof_port, limit: { count: 10000, window: 1h } }\n',
      }),
      onLog: (l: LogLine) => {
        if (l.msg === 'capturing' && typeof l.time === 'string') decisions.push(Date.parse(l.time));
      },
    });
    closers.push(async () => void (await d.stop()));

    const r = rng(11);
    const added: number[] = [];
    const e2e: number[] = [];
    const floor: number[] = [];
    const lag: number[] = [];
    const wait: number[] = [];
    const dispatch: number[] = [];
    for (let i = 0; i < trials; i++) {
      // Idle and re-armed: the server is quiet and the daemon has seen it quiet twice since the last trial.
      const since = Date.now();
      await until('the server to be idle and the rule re-armed', 30_000, () =>
        polls.filter((p) => p.at > since && p.cpu >= 0 && p.cpu < REARM).length >= 2 && (observed.at(-1)?.cpu ?? 100) < REARM ? true : undefined,
      );
      await sleep(r() * INTERVAL_MS);
      const { at: t0 } = await ask<{ at: number }>(load, { type: 'start' }, 'started');
      const tDecide = await until('the daemon to decide to capture', 15_000, () => decisions.find((t) => t >= t0));
      const tReq = await until('the capture request', 5_000, () => profReqs.find((t) => t >= tDecide - 1));
      // Keep the load on until this benchmark's own observer has seen it too: on a loaded machine its 20 ms
      // polls can lag the daemon's, and stopping at once left no reading above the threshold (CI, once).
      await until('the observer to see the server busy', 15_000, () => observed.find((x) => x.at >= t0 && x.cpu > ABOVE)).catch(() => undefined);
      await ask(load, { type: 'stop' }, 'stopped');
      const tVarz = observed.find((x) => x.at >= t0 && x.cpu > ABOVE)?.at;
      const tPoll = polls.find((x) => x.at >= t0 && x.cpu > ABOVE)?.at;
      if (tPoll === undefined || tVarz === undefined) throw new Error(`trial ${i}: no varz above ${ABOVE} recorded`);
      added.push(tDecide - tPoll);
      e2e.push(tDecide - t0);
      floor.push(tPoll - t0);
      lag.push(tVarz - t0);
      wait.push(Math.max(0, tPoll - tVarz));
      dispatch.push(tReq - tDecide);
      log(o, `${BENCH} trial ${i + 1}/${trials}: e2e ${tDecide - t0} ms = server ${tVarz - t0} + poll wait ${tPoll - tVarz} + daemon ${tDecide - tPoll}; request sent +${tReq - tDecide} ms`);
    }
    const p = (v: number[], q: number): number | null => percentile(v, q);
    const floorBound = 1000 + INTERVAL_MS;
    notes.push(
      `${trials} trials, poll interval ${INTERVAL_MS} ms, rule cpu > ${ABOVE} for 0s; server lag (load start to varz above) p50 ${p(lag, 0.5)} / p99 ${p(lag, 0.99)} ms; ` +
        `wait for the next poll p50 ${p(wait, 0.5)} / p99 ${p(wait, 0.99)} ms; capture request reached prof_port p50 ${p(dispatch, 0.5)} / p99 ${p(dispatch, 0.99)} ms after the decision; ` +
        `theoretical floor ${floorBound} ms (1 s refresh + 1 s interval) plus the time the load must run before the 1 s average crosses ${ABOVE} %; log times have 1 ms resolution`,
    );
    return {
      bench: BENCH,
      title: 'detection latency',
      rows: [
        row(BENCH, `${trials} trials`, 'daemon added latency p50', 'ms', p(added, 0.5), null, '< 20 ms', (v) => v < 20),
        row(BENCH, `${trials} trials`, 'daemon added latency p99', 'ms', p(added, 0.99), null, '< 100 ms', (v) => v < 100),
        row(BENCH, `${trials} trials`, 'end to end p50 (vs floor)', 'ms', p(e2e, 0.5), p(floor, 0.5)),
        row(BENCH, `${trials} trials`, 'end to end p99 (vs floor)', 'ms', p(e2e, 0.99), p(floor, 0.99)),
      ],
      notes,
      seconds: 0,
    };
  } finally {
    for (const c of closers.reverse()) await c();
    upstream.destroy();
    await srv?.stop();
    cleanupTempDirs();
    if (prevGomaxprocs === undefined) delete process.env['GOMAXPROCS'];
    else process.env['GOMAXPROCS'] = prevGomaxprocs;
  }
}

runAlone(import.meta.url, detection);
