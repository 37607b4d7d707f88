/**
 * Coordination overhead (issue 17): N simulated monitoring endpoints watched at a 1 s interval, either by one
 * daemon without coordination (the baseline, same run, same endpoints) or by 3 replicas sharing them through
 * a real 3-node JetStream cluster. Figures: CPU of the replicas together and of the busiest one against the
 * baseline, and JetStream API calls per second made by the replicas (from the cluster's /jsz account
 * counters), at N and at a small N: heartbeats and leases must cost O(replicas), not O(servers).
 *
 *   node --import tsx bench/coord.ts [--n 10,1000] [--duration 30] [--smoke]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { cleanupTempDirs, APP_PASSWORD, APP_USER, type NatsServer } from '../test/helpers/nats-server.js';
import { startJetStreamCluster } from '../test/helpers/nats-cluster.js';
import { sleep } from './lib/children.js';
import { daemonConfig } from './lib/config.js';
import { BenchDaemon } from './lib/daemon.js';
import { VarzFleet } from './lib/fleet-sim.js';
import { histogram } from './lib/prom.js';
import { readProc } from './lib/proc.js';
import { log, row, runAlone, type BenchOptions, type BenchResult, type Row } from './lib/report.js';

const BENCH = 'coord';
const INTERVAL_MS = 1_000;

/** JetStream API calls made so far by the APP account, summed over the cluster's servers. */
async function apiCalls(cluster: NatsServer[]): Promise<number> {
  let total = 0;
  for (const s of cluster) {
    const res = await fetch(`${s.monitorUrl}/jsz?accounts=true&acc=APP`);
    const body = (await res.json()) as { account_details?: { name: string; api?: { total?: number } }[] };
    total += body.account_details?.find((a) => a.name === 'APP')?.api?.total ?? 0;
  }
  return total;
}

async function pollsDone(d: BenchDaemon): Promise<number> {
  return histogram(await d.metrics(), 'nats_autoprof_poll_duration_seconds').count;
}

interface Phase {
  cpuSec: number[];
  wallSec: number;
  apiPerSec: number;
}

async function phase(o: BenchOptions, urls: string[], cluster: NatsServer[] | undefined, replicas: number, durationS: number): Promise<Phase> {
  const dirs: string[] = [];
  const daemons: BenchDaemon[] = [];
  try {
    for (let i = 0; i < replicas; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'nats-autoprof-bench-coord-'));
      dirs.push(dir);
      const extra = cluster
        ? `coordination:\n  url: [${cluster.map((s) => s.natsUrl).join(', ')}]\n  user: ${APP_USER}\n  password: ${APP_PASSWORD}\n  instance: r${i}\n  replicas: 3\n  buckets: { live: bench_live_${urls.length}, state: bench_state_${urls.length} }\n`
        : '';
      const config = daemonConfig({ servers: urls.map((url) => ({ url, profUrl: url })), intervalMs: INTERVAL_MS, timeoutMs: INTERVAL_MS, extra });
      daemons.push(await BenchDaemon.start({ config, dir, readyTimeoutMs: 120_000 }));
    }
    // Steady: every server polled by someone, and the member list settled (a few heartbeats).
    const deadline = Date.now() + 120_000;
    for (;;) {
      const polled = (await Promise.all(daemons.map(pollsDone))).reduce((a, b) => a + b, 0);
      if (polled >= 3 * urls.length) break;
      if (Date.now() > deadline) throw new Error('the daemons did not poll every server');
      await sleep(500);
    }
    await sleep((o.smoke ? 2 : 10) * 1000);
    const a0 = cluster ? await apiCalls(cluster) : 0;
    const p0 = daemons.map((d) => readProc(d.pid));
    await sleep(durationS * 1000);
    const p1 = daemons.map((d) => readProc(d.pid));
    const a1 = cluster ? await apiCalls(cluster) : 0;
    const wallSec = ((p1[0]?.at ?? 0) - (p0[0]?.at ?? 0)) / 1000;
    return { cpuSec: p1.map((p, i) => p.cpuSec - (p0[i]?.cpuSec ?? 0)), wallSec, apiPerSec: (a1 - a0) / wallSec };
  } finally {
    await Promise.all(daemons.map((d) => d.stop()));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

export async function coord(o: BenchOptions): Promise<BenchResult> {
  const ns = o.n ?? (o.smoke ? [5] : [10, 1000]);
  const durationS = o.duration ?? (o.smoke ? 3 : 30);
  const rows: Row[] = [];
  const notes: string[] = [`poll interval ${INTERVAL_MS} ms, heartbeat 2 s, lease_ttl 10 s (defaults), 3 replicas, buckets with 3 JetStream replicas, ${durationS} s windows`];
  const cluster = await startJetStreamCluster(['b1', 'b2', 'b3'], 'bench-coord');
  try {
    for (const n of ns) {
      const fleet = await VarzFleet.start(n);
      try {
        log(o, `coord n=${n}: baseline (one daemon, no coordination)`);
        const base = await phase(o, fleet.urls, undefined, 1, durationS);
        log(o, `coord n=${n}: 3 replicas with coordination`);
        const co = await phase(o, fleet.urls, cluster, 3, durationS);
        const baseCpu = (base.cpuSec[0] ?? 0) / base.wallSec;
        const sum = co.cpuSec.reduce((a, b) => a + b, 0) / co.wallSec;
        const max = Math.max(...co.cpuSec) / co.wallSec;
        const c = `n=${n}`;
        rows.push(row(BENCH, c, 'CPU of the 3 replicas together', 'cores', sum, baseCpu, '< 1.2x', (_v, r) => r !== null && r < 1.2));
        rows.push(row(BENCH, c, 'CPU of the busiest replica', 'cores', max, baseCpu));
        rows.push(row(BENCH, c, 'JetStream API calls by the replicas', '/s', co.apiPerSec));
        notes.push(`n=${n}: replica CPU ${co.cpuSec.map((x) => (x / co.wallSec).toFixed(4)).join(', ')} cores; baseline ${baseCpu.toFixed(4)}`);
      } finally {
        await fleet.stop();
      }
    }
  } finally {
    await Promise.all(cluster.map((s) => s.stop()));
    cleanupTempDirs();
  }
  return { bench: BENCH, title: 'Coordination overhead: 3 replicas over JetStream KV against one uncoordinated daemon', rows, notes, seconds: 0 };
}

runAlone(import.meta.url, coord);
