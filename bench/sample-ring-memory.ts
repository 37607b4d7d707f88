/**
 * What the viewer's sample rings cost at fleet size (issue 16: 5,000 servers in bounded memory), measured,
 * not computed: the heap and ArrayBuffer bytes of N full rings (every bucket written), per server, and
 * whether recording allocates once the rings exist, and how long a reload with a new ui.history takes.
 *
 *   node --expose-gc --import tsx bench/sample-ring-memory.ts [--n 5000] [--records 2000000]
 *
 * Baseline, in the same run: the same N keys in a Map of plain objects holding one sample each (what
 * keeping only the latest value would cost), so that the ring's cost is read against the least any
 * per-server record costs.
 */
import { SAMPLE_BUCKETS, SampleRings } from '../src/watch/sample-ring.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error('run with node --expose-gc');
  process.exit(2);
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const N = arg('n', 5000);
const RECORDS = arg('records', 2_000_000);
const HISTORY_MS = 10 * 60 * 1000;
const BUCKET_MS = HISTORY_MS / SAMPLE_BUCKETS;

function used(): number {
  (gc as () => void)();
  (gc as () => void)();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const keys = Array.from({ length: N }, (_, i) => `http://nats-${i}.example.internal:8222`);
const t0 = 1_800_000_000_000;

// Baseline: one plain record per server.
let before = used();
const latest = new Map<string, { at: number; cpu: number; mem: number }>();
for (const k of keys) latest.set(k, { at: t0, cpu: 1.5, mem: 1e8 });
const baselineBytes = (used() - before) / N;

// The rings, every bucket written.
before = used();
const rings = new SampleRings({ historyMs: HISTORY_MS });
for (let b = 0; b < SAMPLE_BUCKETS; b++) {
  for (let i = 0; i < N; i++) rings.record(keys[i] as string, t0 + b * BUCKET_MS, (i % 400) + b / 10, 1e8 + i);
}
const ringBytes = (used() - before) / N;

// Hot path: records into existing rings (servers polled round-robin, time moving on), heap before and after.
before = used();
const started = performance.now();
let at = t0 + SAMPLE_BUCKETS * BUCKET_MS;
for (let r = 0; r < RECORDS; r++) {
  const i = r % N;
  if (i === 0) at += BUCKET_MS;
  rings.record(keys[i] as string, at, r % 997, 1e8 + r);
}
const ns = ((performance.now() - started) * 1e6) / RECORDS;
const growth = used() - before;

// A reload that changes ui.history: each ring is re-bucketed at its next sample; the cost of doing all of them.
const rebucketStarted = performance.now();
rings.setHistory(2 * HISTORY_MS);
for (let i = 0; i < N; i++) rings.record(keys[i] as string, at + BUCKET_MS, 1, 1);
const rebucketMs = performance.now() - rebucketStarted;

console.log(`servers: ${N}, buckets per server: ${SAMPLE_BUCKETS}, history: ${HISTORY_MS / 60000}m (${BUCKET_MS / 1000}s buckets)`);
console.log(`baseline (latest sample only, plain object in a Map): ${baselineBytes.toFixed(0)} bytes per server`);
console.log(`sample ring (full):                                  ${ringBytes.toFixed(0)} bytes per server (${((ringBytes * N) / 1024 / 1024).toFixed(1)} MiB for ${N}), ${(ringBytes / baselineBytes).toFixed(1)}x the baseline`);
console.log(`record(): ${ns.toFixed(0)} ns each over ${RECORDS} records; heap growth over them: ${growth} bytes`);
console.log(`reload to a history of ${(2 * HISTORY_MS) / 60000}m: every ring re-bucketed (at its next sample) in ${rebucketMs.toFixed(1)} ms in all, ${((rebucketMs * 1000) / N).toFixed(0)} µs per ring`);
console.log(`(kept alive: ${latest.size} baseline entries, ${rings.size} rings)`);
