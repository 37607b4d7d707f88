/**
 * What every benchmark returns (rows: a figure next to its baseline and goal), the shared command-line
 * flags, the machine description, and the one table `bench/run.ts` prints.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { basename } from 'node:path';
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
  /** polling: the daemon's `poll.max_in_flight` (default: the daemon's own). */
  maxInFlight?: number | undefined;
}

/** The shared flags of every benchmark (and bench/run.ts): parseArgs spec, default and one line of help. */
const OPTIONS: { name: string; type: 'string' | 'boolean'; short?: string; arg?: string; default: string; help: string }[] = [
  { name: 'help', type: 'boolean', short: 'h', default: '', help: 'print this help and exit' },
  { name: 'smoke', type: 'boolean', default: 'off', help: 'tiny N and windows of a few seconds (what CI runs)' },
  { name: 'duration', type: 'string', arg: 'S', default: 'per benchmark (smoke: 1-3)', help: 'measurement window per case, seconds' },
  { name: 'n', type: 'string', arg: 'N[,N...]', default: 'per benchmark', help: 'the sizes to measure (servers, requests), e.g. 100,1000 (1_000 allowed)' },
  { name: 'trials', type: 'string', arg: 'K', default: 'per benchmark', help: 'trials or repetitions (detection, scrape)' },
  { name: 'scrape', type: 'string', arg: 'S', default: '15', help: 'scrape the daemon\'s /metrics every S seconds like Prometheus; 0: only the scrapes the measurement needs' },
  { name: 'named', type: 'boolean', default: 'off', help: 'give every server a name in the daemon\'s config (off: URL only, the name comes from /varz)' },
  { name: 'baseline-spread', type: 'boolean', default: 'off', help: 'the polling baseline spreads its first polls over one interval (off: all at once)' },
  { name: 'cpu-prof', type: 'string', arg: 'DIR', default: 'none', help: 'write a CPU profile of each measured window into DIR' },
  { name: 'main', type: 'string', arg: 'PATH', default: 'dist/main.js', help: 'another build of the daemon (before/after runs)' },
  { name: 'node-args', type: 'string', arg: '"..."', default: 'none', help: 'extra node flags for the daemon' },
  { name: 'before', type: 'string', arg: 'PATH', default: 'none', help: 'capture-lateness, store-index: a built checkout of the earlier code, measured in the same run' },
  { name: 'field-rules', type: 'boolean', default: 'off', help: 'polling: five rules on varz fields per server (two rates, one escalating) instead of the two fleet rules' },
  { name: 'max-in-flight', type: 'string', arg: 'K', default: "the daemon's (128)", help: 'polling: the daemon\'s poll.max_in_flight' },
  { name: 'only', type: 'string', arg: 'A,B', default: 'all', help: 'run.ts: the benchmarks to run' },
  { name: 'json', type: 'string', arg: 'FILE', default: 'none', help: 'also write the results as JSON' },
  { name: 'quiet', type: 'boolean', default: 'off', help: 'no progress lines on stderr' },
];

/** The help text: the running file's leading doc comment (what it measures, its own defaults), then every flag. */
export function helpText(file = process.argv[1] ?? 'bench'): string {
  let about = '';
  try {
    const m = /^\/\*\*\n([\s\S]*?)\*\//.exec(readFileSync(file, 'utf8'));
    if (m) about = `${(m[1] as string).split('\n').map((l) => l.replace(/^ \* ?/, '').replace(/^ *$/, '')).join('\n').trimEnd()}\n\n`;
  } catch {
    // no description
  }
  const flags = OPTIONS.map((o) => {
    const left = `  ${o.short ? `-${o.short}, ` : ''}--${o.name}${o.arg ? ` ${o.arg}` : ''}`;
    return `${left.padEnd(30)} ${o.help}${o.default ? ` (default: ${o.default})` : ''}`;
  });
  return `${about}Usage: node --import tsx bench/${basename(file)} [options]\n\nOptions:\n${flags.join('\n')}\n`;
}

/**
 * Parses the shared flags. `--help` prints helpText() and exits 0; an unknown or malformed flag prints the
 * error and a pointer to --help, and exits 2.
 */
export function parseOptions(argv = process.argv.slice(2)): BenchOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      options: Object.fromEntries(OPTIONS.map((o) => [o.name, { type: o.type, ...(o.short ? { short: o.short } : {}) }])),
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n--help lists the options\n`);
    process.exit(2);
  }
  if (values.help === true) {
    process.stdout.write(helpText());
    process.exit(0);
  }
  const str = (k: string): string | undefined => (typeof values[k] === 'string' ? values[k] : undefined);
  const main = str('main');
  const nodeArgs = str('node-args');
  if (main) useDaemonMain(main);
  if (nodeArgs) useDaemonNodeArgs(nodeArgs.split(' ').filter(Boolean));
  const duration = str('duration');
  const n = str('n');
  const scrape = str('scrape');
  const trials = str('trials');
  return {
    smoke: values.smoke === true,
    duration: duration !== undefined ? Number(duration) : undefined,
    n: n !== undefined ? n.split(',').map((x) => Number(x.replaceAll('_', ''))) : undefined,
    cpuProf: str('cpu-prof'),
    scrapeMs: scrape !== undefined ? Number(scrape) * 1000 : 15_000,
    trials: trials !== undefined ? Number(trials) : undefined,
    json: str('json'),
    quiet: values.quiet === true,
    named: values.named === true,
    only: str('only')?.split(','),
    baselineSpread: values['baseline-spread'] === true,
    before: str('before'),
    fieldRules: values['field-rules'] === true,
    maxInFlight: str('max-in-flight') !== undefined ? Number(str('max-in-flight')) : undefined,
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
