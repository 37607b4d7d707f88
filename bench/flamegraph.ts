/**
 * Benchmark 9: flame graphs of a large profile, off the event loop. A synthetic Go-like CPU profile of about
 * 20 MB uncompressed (--smoke: about 1 MB; --n sets the sample count) is turned into the API's flame-graph
 * answer (decode + tree + JSON text) K times through the ProfileWorker thread, and K times on the main thread
 * (the baseline, same run), while a 10 ms interval timer measures how late the event loop runs its timers
 * (what a poll due meanwhile would suffer). Also: time per tree both ways, a tree from the thread's already
 * decoded profile, a hit in the answer cache, and the process's peak RSS while the thread works.
 *
 *   node --import tsx bench/flamegraph.ts [--n 200000] [--trials 3] [--smoke]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Function as PFunction, Line, Location, Profile, Sample, StringTable, ValueType } from 'pprof-format';
import { buildFlameGraph } from '../src/insight/flamegraph.js';
import { InsightCache } from '../src/insight/insight-cache.js';
import { decodeProfile } from '../src/insight/pprof-summary.js';
import { ProfileWorker } from '../src/insight/profile-worker.js';
import { prng } from '../test/helpers/prng.js';
import { percentile } from './lib/prom.js';
import { log, row, runAlone, type BenchOptions, type BenchResult } from './lib/report.js';

const BENCH = 'flamegraph';
const TICK_MS = 10;

/** A CPU profile shaped like Go's: a few thousand functions, deep stacks sharing prefixes, one value per 10 ms. */
export function syntheticProfile(samples: number): Uint8Array {
  const rand = prng(14);
  const strings = new StringTable();
  const functions: PFunction[] = [];
  const FUNCTIONS = 4000;
  for (let i = 0; i < FUNCTIONS; i++) {
    const pkg = ['runtime', 'github.com/nats-io/nats-server/v2/server', 'net', 'sync', 'encoding/json'][i % 5] as string;
    const name = strings.dedup(`${pkg}.(*T${i % 97}).method${i}`);
    functions.push(new PFunction({ id: i + 1, name, systemName: name, filename: strings.dedup(`${pkg}/file${i % 50}.go`) }));
  }
  // One location per function (plus a few with an inlined callee), as the Go runtime writes them.
  const locations: Location[] = functions.map(
    (f, i) =>
      new Location({
        id: i + 1,
        address: 0x400000 + i * 16,
        line: i % 10 === 0 ? [new Line({ functionId: ((i + 1) % FUNCTIONS) + 1, line: 7 }), new Line({ functionId: f.id, line: 3 })] : [new Line({ functionId: f.id, line: 3 })],
      }),
  );
  // Stacks: a root chosen among 20 entry points, then walks biased towards a few hot paths.
  const sample: Sample[] = [];
  for (let s = 0; s < samples; s++) {
    const depth = 15 + Math.floor(rand() * 30);
    const ids: number[] = [];
    let at = 1 + Math.floor(rand() * 20);
    for (let d = 0; d < depth; d++) {
      ids.push(at);
      at = rand() < 0.7 ? ((at * 31 + d) % 400) + 1 : 1 + Math.floor(rand() * FUNCTIONS);
    }
    sample.push(new Sample({ locationId: ids.reverse(), value: [1, 10_000_000] }));
  }
  const p = new Profile({
    sampleType: [new ValueType({ type: strings.dedup('samples'), unit: strings.dedup('count') }), new ValueType({ type: strings.dedup('cpu'), unit: strings.dedup('nanoseconds') })],
    sample,
    location: locations,
    function: functions,
    stringTable: strings,
    durationNanos: 30e9,
    period: 10_000_000,
    periodType: new ValueType({ type: strings.dedup('cpu'), unit: strings.dedup('nanoseconds') }),
  });
  return p.encode();
}

/** Lateness of a 10 ms interval timer (ms per tick beyond its due time) while `work` runs. */
async function lateness(work: () => Promise<void>): Promise<{ late: number[]; rssPeak: number }> {
  const late: number[] = [];
  let due = performance.now() + TICK_MS;
  let rssPeak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    const now = performance.now();
    late.push(Math.max(0, now - due));
    due = now + TICK_MS;
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
  }, TICK_MS);
  try {
    await work();
    // One more tick so that a block at the very end is counted.
    await new Promise((r) => setTimeout(r, TICK_MS * 2));
  } finally {
    clearInterval(timer);
  }
  return { late, rssPeak };
}

export async function flamegraph(o: BenchOptions): Promise<BenchResult> {
  const samples = o.n?.[0] ?? (o.smoke ? 10_000 : 200_000);
  const trials = o.trials ?? (o.smoke ? 2 : 3);
  const dir = mkdtempSync(join(tmpdir(), 'nats-autoprof-bench-flamegraph-'));
  const worker = new ProfileWorker({ timeoutMs: 600_000 });
  try {
    log(o, `${BENCH}: encoding a profile of ${samples} samples`);
    const raw = syntheticProfile(samples);
    const gz = gzipSync(raw);
    // Copies under different names: the thread keeps its last two decoded files, and each trial must decode.
    const paths = Array.from({ length: trials + 2 }, (_, i) => join(dir, `cpu-${i}.pb.gz`));
    for (const p of paths) writeFileSync(p, gz);
    const head = { incident: 'bench~20260101T000000.000Z-manual', profile: 'cpu' };
    const opts = { head, sampleType: undefined, minShare: 0.001 };

    // Warm-up (JIT, thread start) on both sides, not measured.
    await worker.flamegraph({ path: paths[trials + 1] as string }, opts);
    JSON.stringify(buildFlameGraph(decodeProfile(gz), { minShare: 0.001 }));

    log(o, `${BENCH}: idle event loop`);
    const idle = await lateness(() => new Promise((r) => setTimeout(r, 1_000)));

    log(o, `${BENCH}: ${trials} trees through the worker thread`);
    const workerMs: number[] = [];
    let json = '';
    const viaWorker = await lateness(async () => {
      for (let i = 0; i < trials; i++) {
        const t = performance.now();
        json = await worker.flamegraph({ path: paths[i] as string }, opts);
        workerMs.push(performance.now() - t);
      }
    });
    // The thread's decoded profile is kept: another sample type or min_share of the same file.
    const t0 = performance.now();
    await worker.flamegraph({ path: paths[trials - 1] as string }, { ...opts, minShare: 0.01 });
    const decodedMs = performance.now() - t0;

    log(o, `${BENCH}: ${trials} trees on the main thread (baseline)`);
    const mainMs: number[] = [];
    let mainJson = '';
    const onMain = await lateness(async () => {
      for (let i = 0; i < trials; i++) {
        // Yield between trials as the API would between requests, so the timer can fire.
        await new Promise((r) => setTimeout(r, TICK_MS * 3));
        const t = performance.now();
        mainJson = JSON.stringify({ ...head, ...buildFlameGraph(decodeProfile(gz), { minShare: 0.001 }) });
        mainMs.push(performance.now() - t);
      }
    });
    if (mainJson !== json) throw new Error('the worker and the main thread built different trees');

    const cache = new InsightCache<string>();
    await cache.getOrCompute('k', async () => json);
    const hits: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const t = performance.now();
      await cache.getOrCompute('k', async () => '');
      hits.push(performance.now() - t);
    }

    const p99 = (v: number[]): number | null => percentile(v, 0.99);
    const max = (v: number[]): number => Math.max(0, ...v);
    const med = (v: number[]): number | null => percentile(v, 0.5);
    const c = `${(raw.byteLength / 1e6).toFixed(1)} MB profile`;
    const tree = JSON.parse(json) as { nodes: unknown[]; names: unknown[] };
    return {
      bench: BENCH,
      title: 'flame graphs of a large profile, worker thread vs main thread',
      rows: [
        row(BENCH, c, 'event-loop lateness p99 while building', 'ms', p99(viaWorker.late), p99(onMain.late), '≤ 0.1× main thread', (_v, r) => r !== null && r <= 0.1),
        row(BENCH, c, 'event-loop lateness max while building', 'ms', max(viaWorker.late), max(onMain.late)),
        row(BENCH, c, 'event-loop lateness p99, idle', 'ms', p99(idle.late)),
        row(BENCH, c, 'time per tree (decode + tree + JSON), median', 'ms', med(workerMs), med(mainMs)),
        row(BENCH, c, 'tree from the thread\'s decoded profile', 'ms', decodedMs),
        row(BENCH, c, 'answer cache hit, median', 'µs', (med(hits) ?? 0) * 1000),
        row(BENCH, c, 'peak RSS while the thread builds', 'MB', viaWorker.rssPeak / 1e6, onMain.rssPeak / 1e6),
      ],
      notes: [
        `profile: ${samples} samples, ${(raw.byteLength / 1e6).toFixed(1)} MB uncompressed, ${(gz.byteLength / 1e6).toFixed(1)} MB gzipped; ` +
          `tree at min_share 0.001: ${tree.nodes.length} nodes, ${tree.names.length} names, ${(json.length / 1e3).toFixed(0)} kB of JSON; ` +
          `${trials} trees per side (worker first); baseline = the same work on the main thread in the same run; lateness of a ${TICK_MS} ms interval timer ` +
          `(${viaWorker.late.length} ticks via the worker, ${onMain.late.length} on the main thread); per-tree times worker ${workerMs.map((x) => x.toFixed(0)).join('/')} ms, main ${mainMs.map((x) => x.toFixed(0)).join('/')} ms`,
      ],
      seconds: 0,
    };
  } finally {
    await worker.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

runAlone(import.meta.url, flamegraph);
