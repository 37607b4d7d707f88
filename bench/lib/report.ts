/**
 * What every benchmark returns (rows: a figure next to its baseline and goal), the shared command-line
 * flags, the machine description, and the one table `bench/run.ts` prints.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { natsServerBin } from '../../test/helpers/nats-server.js';
import { killAll } from './children.js';
import { useDaemonMain, useDaemonNodeArgs } from './daemon.js';

export interface Row {
  bench: string;
  /** e.g. "N=1000". */
  case: string;
  figure: string;
  value: number | null;
  baseline: number | null;
  unit: string;
  /** value / baseline, when the figure has a baseline. */
  ratio: number | null;
  /** Human-readable goal, e.g. "≤ 1.3× baseline", "< 100 ms"; empty when none. */
  goal: string;
  /** true / false when the goal applies to this row; null when it has no goal or could not be measured. */
  met: boolean | null;
}

export interface BenchResult {
  bench: string;
  title: string;
  rows: Row[];
  /** Extra facts for the record (counts, settings). */
  notes: string[];
  seconds: number;
}

export interface BenchOptions {
  smoke: boolean;
  /** Measurement window per case (s); default per benchmark. */
  duration: number | undefined;
  /** Override the list of N. */
  n: number[] | undefined;
  /** Run the daemon under node --cpu-prof into this directory. */
  cpuProf: string | undefined;
  /** Scrape /metrics this often (ms), as Prometheus would; 0 = only the scrapes the measurement needs. */
  scrapeMs: number;
  /** Trials (detection). */
  trials: number | undefined;
  json: string | undefined;
  quiet: boolean;
  /** Give every server a name in the daemon's config (default: URL only, the name comes from varz). */
  named: boolean;
  /** Benchmarks to run (run.ts). */
  only: string[] | undefined;
  /** polling/footprint: the baseline spreads its first polls over one interval instead of starting all at once. */
  baselineSpread: boolean;
  /**
   * capture-lateness, store-index: a checkout of the code before a change (PATH/dist/main.js built,
   * PATH/src for in-process benchmarks), measured in the same run next to this tree.
   */
  before: string | undefined;
  /** polling: the daemon runs five rules on varz fields (bench/lib/config.ts FIELD_RULES) instead of the two fleet rules. */
  fieldRules?: boolean;
}

export function parseOptions(argv = process.argv.slice(2)): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      smoke: { type: 'boolean', default: false },
      duration: { type: 'string' },
      n: { type: 'string' },
      'cpu-prof': { type: 'string' },
      scrape: { type: 'string' },
      trials: { type: 'string' },
      json: { type: 'string' },
      quiet: { type: 'boolean', default: false },
      only: { type: 'string' },
      named: { type: 'boolean', default: false },
      main: { type: 'string' },
      'node-args': { type: 'string' },
      'baseline-spread': { type: 'boolean', default: false },
      before: { type: 'string' },
      'field-rules': { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.main) useDaemonMain(values.main);
  if (values['node-args']) useDaemonNodeArgs(values['node-args'].split(' ').filter(Boolean));
  return {
    smoke: values.smoke ?? false,
    duration: values.duration !== undefined ? Number(values.duration) : undefined,
    n: values.n !== undefined ? values.n.split(',').map((x) => Number(x.replaceAll('_', ''))) : undefined,
    cpuProf: values['cpu-prof'],
    scrapeMs: values.scrape !== undefined ? Number(values.scrape) * 1000 : 15_000,
    trials: values.trials !== undefined ? Number(values.trials) : undefined,
    json: values.json,
    quiet: values.quiet ?? false,
    named: values.named ?? false,
    only: values.only?.split(','),
    baselineSpread: values['baseline-spread'] ?? false,
    before: values.before,
    fieldRules: values['field-rules'] ?? false,
  };
}

export function log(o: BenchOptions, msg: string): void {
  if (!o.quiet) process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** A row; `ratio` is computed when both numbers are there; `met` from the check when given. */
export function row(
  bench: string,
  c: string,
  figure: string,
  unit: string,
  value: number | null,
  baseline: number | null = null,
  goal = '',
  check?: (value: number, ratio: number | null) => boolean,
): Row {
  const ratio = value !== null && baseline !== null && baseline > 0 ? value / baseline : null;
  const met = goal && check && value !== null ? check(value, ratio) : null;
  return { bench, case: c, figure, value, baseline, unit, ratio, goal, met };
}

export async function machine(): Promise<string> {
  const c = cpus();
  let nats = 'unknown';
  try {
    const bin = await natsServerBin();
    nats = execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    // reported as unknown
  }
  const gb = (totalmem() / 2 ** 30).toFixed(1);
  return `${c.length} × ${c[0]?.model ?? 'cpu'}, ${gb} GiB RAM, Linux ${release()}, Node ${process.version}, ${nats}`;
}

function num(v: number | null, unit: string): string {
  if (v === null || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  const s = a >= 1000 ? v.toFixed(0) : a >= 100 ? v.toFixed(1) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toFixed(3);
  return unit ? `${s} ${unit}` : s;
}

/** One markdown table for all results. */
export function table(results: BenchResult[]): string {
  const lines = ['| benchmark | case | figure | daemon | baseline | ratio | goal | met |', '|---|---|---|---:|---:|---:|---|:-:|'];
  for (const r of results) {
    for (const x of r.rows) {
      const met = x.met === null ? '' : x.met ? 'yes' : '**no**';
      const ratio = x.ratio === null ? '' : `${x.ratio.toFixed(2)}×`;
      lines.push(`| ${x.bench} | ${x.case} | ${x.figure} | ${num(x.value, x.unit)} | ${x.baseline === null ? '' : num(x.baseline, x.unit)} | ${ratio} | ${x.goal} | ${met} |`);
    }
  }
  return lines.join('\n');
}

export function notes(results: BenchResult[]): string {
  return results.flatMap((r) => [`- ${r.bench} (${r.title}, ${r.seconds.toFixed(0)} s): ${r.notes.join('; ')}`]).join('\n');
}

/** Entry point of a benchmark file run alone: prints its table, writes JSON when asked, exits. */
export function runAlone(metaUrl: string, fn: (o: BenchOptions) => Promise<BenchResult>): void {
  if (!process.argv[1] || metaUrl !== pathToFileURL(process.argv[1]).href) return;
  const o = parseOptions();
  void (async () => {
    let code = 0;
    try {
      const started = performance.now();
      const r = await fn(o);
      r.seconds = (performance.now() - started) / 1000;
      const m = await machine();
      process.stdout.write(`\n${m}\n\n${table([r])}\n\n${notes([r])}\n`);
      if (o.json) writeFileSync(o.json, JSON.stringify({ machine: m, date: new Date().toISOString(), results: [r] }, null, 2));
    } catch (err) {
      process.stderr.write(`benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      code = 1;
    } finally {
      killAll();
    }
    process.exit(code);
  })();
}
