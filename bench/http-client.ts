/**
 * Benchmark: the poller's HTTP client (src/watch/http1.ts) against undici, the client it replaced (issue 16).
 * Each client runs alone in a child process of its own and GETs the /varz of N simulated endpoints once a
 * second (one keep-alive connection each, at most 128 GETs in flight, JSON.parse of every body), for the
 * window after two warm rounds. Baseline: undici, same endpoints, same schedule, same run.
 *
 *   node --import tsx bench/http-client.ts [--n 1000,5000] [--duration 20]
 */
import { fork } from 'node:child_process';
import { resolve } from 'node:path';
import { BENCH_DIR, ROOT, ask, stopChild } from './lib/children.js';
import { VarzFleet } from './lib/fleet-sim.js';
import { log, row, runAlone, type BenchOptions, type BenchResult, type Row } from './lib/report.js';

const BENCH = 'http-client';

interface Done {
  polls: number;
  errors: number;
  cpuUs: number;
  hwmMB: number;
  heapMB: number;
  rssMB: number;
}

async function measure(kind: 'undici' | 'http1', urls: string[], seconds: number): Promise<Done> {
  const p = fork(resolve(BENCH_DIR, 'lib/http-client-child.ts'), [], { execArgv: ['--import', 'tsx', '--expose-gc'], cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const r = await ask<Done>(p, { type: 'run', kind, urls, seconds }, 'done', (seconds + 120) * 1000);
    if (r.errors > 0) throw new Error(`${kind}: ${r.errors} GETs failed`);
    return r;
  } finally {
    await stopChild(p);
  }
}

export async function httpClient(o: BenchOptions): Promise<BenchResult> {
  const ns = o.n ?? (o.smoke ? [5] : [1000, 5000]);
  const seconds = o.duration ?? (o.smoke ? 2 : 20);
  const rows: Row[] = [];
  const notes: string[] = [`${seconds} s window per client after two warm rounds; GETs once a second, at most 128 in flight; each client alone in its own process`];
  for (const n of ns) {
    const c = `N=${n}`;
    const fleet = await VarzFleet.start(n);
    try {
      log(o, `${BENCH} ${c}: undici`);
      const base = await measure('undici', fleet.urls, seconds);
      log(o, `${BENCH} ${c}: http1`);
      const own = await measure('http1', fleet.urls, seconds);
      rows.push(
        row(BENCH, c, 'CPU per GET (http1 vs undici)', 'µs', own.cpuUs, base.cpuUs),
        row(BENCH, c, 'peak RSS (VmHWM)', 'MB', own.hwmMB, base.hwmMB),
        row(BENCH, c, 'JS heap after a full GC', 'MB', own.heapMB, base.heapMB),
        row(BENCH, c, 'RSS at the end of the window', 'MB', own.rssMB, base.rssMB),
      );
      notes.push(`${c}: http1 ${own.polls} GETs, undici ${base.polls} GETs`);
    } finally {
      await fleet.stop();
    }
  }
  return { bench: BENCH, title: "the poller's HTTP client vs undici", rows, notes, seconds: 0 };
}

runAlone(import.meta.url, httpClient);
