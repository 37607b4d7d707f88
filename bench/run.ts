/**
 * Runs every benchmark, one after the other (they share this machine's cores, so never in parallel), and
 * prints one table: each figure next to its baseline (taken in the same run) and its goal.
 *
 *   npm run bench                                  # all five, full size (about 20 minutes on 2 cores)
 *   node --import tsx bench/run.ts --smoke         # tiny N, a few seconds each (what CI runs)
 *   node --import tsx bench/run.ts --only polling,footprint --duration 20 --json out.json
 *
 * Each benchmark also runs alone: node --import tsx bench/<polling|fleet|detection|capture-memory|footprint|capture-lateness|store-index|server-cost|flamegraph>.ts
 * (--help: the flags and their defaults)
 * Flags: --smoke, --n 100,1000, --duration S, --trials K, --scrape S (0: no Prometheus-like scrapes),
 * --named (servers get names in the config), --baseline-spread (the baseline spreads its first polls over one
 * interval, like the daemon since 77402b4; default: all at once, the cheapest loop), --cpu-prof DIR (CPU profile of each measured window),
 * --main PATH / --node-args "..." (another build of the daemon, or node flags, for before/after runs),
 * --before PATH (capture-lateness, store-index: a built checkout of the earlier code, measured in the same run), --json FILE.
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { captureLateness } from './capture-lateness.js';
import { captureMemory } from './capture-memory.js';
import { detection } from './detection.js';
import { fleet } from './fleet.js';
import { flamegraph } from './flamegraph.js';
import { footprint } from './footprint.js';
import { killAll } from './lib/children.js';
import { log, machine, notes, parseOptions, table, type BenchOptions, type BenchResult } from './lib/report.js';
import { polling } from './polling.js';
import { serverCost } from './server-cost.js';
import { storeIndex } from './store-index.js';

export const BENCHMARKS: Record<string, (o: BenchOptions) => Promise<BenchResult>> = {
  polling,
  fleet,
  detection,
  'capture-memory': captureMemory,
  footprint,
  'capture-lateness': captureLateness,
  'store-index': storeIndex,
  'server-cost': serverCost,
  flamegraph,
};

async function main(): Promise<number> {
  const o = parseOptions();
  const names = o.only ?? Object.keys(BENCHMARKS);
  for (const n of names) if (!BENCHMARKS[n]) throw new Error(`unknown benchmark "${n}"; one of ${Object.keys(BENCHMARKS).join(', ')}`);
  const started = new Date();
  const results: BenchResult[] = [];
  const failures: string[] = [];
  for (const name of names) {
    const t = performance.now();
    log(o, `=== ${name}`);
    const load0 = loadavg()[0] ?? 0;
    try {
      const r = await (BENCHMARKS[name] as (o: BenchOptions) => Promise<BenchResult>)(o);
      r.seconds = (performance.now() - t) / 1000;
      // Other work on a shared machine shows here (the benchmark itself adds about one runnable process).
      r.notes.push(`load average (1 min) ${load0.toFixed(2)} at start, ${(loadavg()[0] ?? 0).toFixed(2)} at end`);
      results.push(r);
    } catch (err) {
      failures.push(`${name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      killAll();
    }
  }
  const m = await machine();
  const cmd = `node --import tsx bench/run.ts ${process.argv.slice(2).join(' ')}`.trim();
  process.stdout.write(`\n${m}\n${started.toISOString()}; ${cmd}\n\n${table(results)}\n\n${notes(results)}\n`);
  if (failures.length > 0) process.stderr.write(`\nfailed:\n${failures.join('\n')}\n`);
  if (o.json) writeFileSync(o.json, JSON.stringify({ machine: m, date: started.toISOString(), command: cmd, results, failures }, null, 2));
  return failures.length > 0 ? 1 : 0;
}

main().then(
  (code) => {
    killAll();
    process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    killAll();
    process.exit(2);
  },
);
