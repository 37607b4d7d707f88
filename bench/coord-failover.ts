/**
 * Failover time (issue 17): 3 daemon replicas share S standalone servers through a real 3-node JetStream
 * cluster; K times, the replica owning the most servers is SIGKILLed and the time until the survivors own
 * every server again (each listed by exactly one replica's /api/v1/servers) is measured, then it is started
 * again and the assignment settles. p50 / p99 / max against the bound 2 × lease_ttl + poll.interval.
 *
 *   node --import tsx bench/coord-failover.ts [--n 6] [--trials 10] [--smoke]     (needs `npm run build`)
 */
import { removeTempDirs, startDaemon, tempDir, type Daemon } from '../test/helpers/daemon.js';
import { startJetStreamCluster } from '../test/helpers/nats-cluster.js';
import { APP_PASSWORD, APP_USER, cleanupTempDirs, startServer, type NatsServer } from '../test/helpers/nats-server.js';
import { sleep } from './lib/children.js';
import { log, row, runAlone, type BenchOptions, type BenchResult } from './lib/report.js';

const BENCH = 'coord-failover';
const LEASE_TTL_MS = 3_000;
const HEARTBEAT_MS = 1_000;
const POLL_MS = 500;

function config(servers: NatsServer[], cluster: NatsServer[], instance: string): string {
  return `log: { level: warn }
http: { listen: "127.0.0.1:{{PORT}}" }
poll: { interval: ${POLL_MS}ms, timeout: 400ms }
servers:
${servers.map((s) => `  - { url: "${s.monitorUrl}", name: ${s.name} }`).join('\n')}
storage: { dir: "{{DIR}}/profiles" }
coordination:
  url: [${cluster.map((s) => s.natsUrl).join(', ')}]
  user: ${APP_USER}
  password: ${APP_PASSWORD}
  instance: ${instance}
  heartbeat: ${HEARTBEAT_MS}ms
  lease_ttl: ${LEASE_TTL_MS}ms
  replicas: 3
`;
}

async function owned(d: Daemon): Promise<string[]> {
  const res = await fetch(`${d.url}/api/v1/servers`, { signal: AbortSignal.timeout(5_000) });
  return ((await res.json()) as { servers: { server: string }[] }).servers.map((s) => s.server);
}

/** server -> replica when each of `total` servers is owned by exactly one of `replicas`. */
async function assignment(replicas: Map<string, Daemon>, total: number): Promise<Map<string, string> | undefined> {
  const out = new Map<string, string>();
  for (const [name, d] of replicas) {
    for (const s of await owned(d)) {
      if (out.has(s)) return undefined;
      out.set(s, name);
    }
  }
  return out.size === total ? out : undefined;
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
}

export async function coordFailover(o: BenchOptions): Promise<BenchResult> {
  const n = o.n?.[0] ?? 6;
  const trials = o.trials ?? (o.smoke ? 2 : 10);
  const boundMs = 2 * LEASE_TTL_MS + POLL_MS;
  const cluster = await startJetStreamCluster(['f1', 'f2', 'f3'], 'bench-failover');
  const servers = await Promise.all(Array.from({ length: n }, (_, i) => startServer({ name: `w${i + 1}`, clusterName: `w${i + 1}`, profPort: false })));
  const dirs = new Map<string, string>();
  const running = new Map<string, Daemon>();
  const start = async (name: string): Promise<void> => {
    const dir = dirs.get(name) ?? tempDir();
    dirs.set(name, dir);
    running.set(name, await startDaemon({ config: config(servers, cluster, name), dir }));
  };
  const settle = async (): Promise<Map<string, string>> => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const a = await assignment(running, n);
      if (a && new Set(a.values()).size >= Math.min(running.size, 2)) return a;
      if (Date.now() > deadline) throw new Error('the replicas did not settle on one owner per server');
      await sleep(100);
    }
  };
  const times: number[] = [];
  try {
    await Promise.all(['r1', 'r2', 'r3'].map(start));
    for (let t = 0; t < trials; t++) {
      const before = await settle();
      await sleep(HEARTBEAT_MS * 2);
      const counts = new Map<string, number>();
      for (const r of before.values()) counts.set(r, (counts.get(r) ?? 0) + 1);
      const victim = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] as string;
      const d = running.get(victim) as Daemon;
      running.delete(victim);
      const killed = performance.now();
      await d.stop('SIGKILL');
      for (;;) {
        if (await assignment(running, n)) break;
        if (performance.now() - killed > 60_000) throw new Error('the survivors did not take over');
        await sleep(50);
      }
      const ms = performance.now() - killed;
      times.push(ms);
      log(o, `trial ${t + 1}: ${counts.get(victim)} server(s) of ${victim} owned again after ${Math.round(ms)} ms`);
      await start(victim);
    }
  } finally {
    await Promise.all([...running.values()].map((d) => d.stop('SIGKILL')));
    await Promise.all([...cluster, ...servers].map((s) => s.stop('SIGKILL')));
    cleanupTempDirs();
    removeTempDirs();
  }
  const sorted = [...times].sort((a, b) => a - b);
  const within = (v: number): boolean => v <= boundMs;
  return {
    bench: BENCH,
    title: `Failover: a SIGKILLed replica's servers owned again (3 replicas, ${n} servers, ${trials} kills)`,
    rows: [
      row(BENCH, `${trials} kills`, 'p50', 'ms', quantile(sorted, 0.5), null, `<= ${boundMs} ms`, within),
      row(BENCH, `${trials} kills`, 'p99', 'ms', quantile(sorted, 0.99), null, `<= ${boundMs} ms`, within),
      row(BENCH, `${trials} kills`, 'max', 'ms', sorted[sorted.length - 1] ?? NaN, null, `<= ${boundMs} ms`, within),
    ],
    notes: [`lease_ttl ${LEASE_TTL_MS} ms, heartbeat ${HEARTBEAT_MS} ms, poll.interval ${POLL_MS} ms (bound 2 × lease_ttl + poll.interval = ${boundMs} ms); times: ${times.map((x) => Math.round(x)).join(', ')} ms`],
    seconds: 0,
  };
}

runAlone(import.meta.url, coordFailover);
