/**
 * The Prometheus text exposition of a prom-client registry, written in one pass from the metrics' values.
 *
 * Why not `registry.metrics()`: prom-client builds every metric through an async `get()` (a promise per
 * metric), copies each series into a new object (a label object and a value pair per histogram bucket), formats
 * labels through `Object.entries` and arrays, and joins arrays of lines. For a small daemon scraped every second
 * that was the largest fixed cost left after the default metrics were cut (BENCHMARKS.md, issue 19). Here the
 * collect callbacks run first, in registration order (as prom-client runs them), then each series is appended
 * to one string. The output is byte-for-byte prom-client's (test/unit/metrics/exposition.test.ts compares the
 * two on the same registry), so nothing changes for a scraper.
 *
 * It reads prom-client's per-metric `hashMap` (not in its type declarations). What this writer does not know
 * (summaries, default labels, OpenMetrics, an asynchronous collect, a hashMap of another shape after an
 * upgrade) goes to prom-client's own serialisation, metric by metric or for the whole registry.
 */
import { Registry } from 'prom-client';

type LabelValue = string | number;
type Labels = Readonly<Record<string, LabelValue>>;

interface SeriesValue {
  readonly value: number;
  readonly labels: Labels;
}

interface HistogramValue {
  readonly labels: Labels;
  readonly bucketValues: Readonly<Record<string, number>>;
  readonly sum: number;
  readonly count: number;
}

/** What this writer reads of a prom-client metric object. */
interface MetricInternals {
  readonly name: string;
  readonly help: string;
  readonly type: string;
  readonly collect?: () => unknown;
  readonly hashMap?: unknown;
  readonly upperBounds?: readonly number[];
}

/** prom-client's getValueAsString. */
export function valueText(v: number): string {
  if (Number.isNaN(v)) return 'Nan';
  if (!Number.isFinite(v)) return v < 0 ? '-Inf' : '+Inf';
  return `${v}`;
}

/** prom-client's escapeString (HELP text and names): backslash and newline. */
function escapeText(s: string): string {
  return s.includes('\\') || s.includes('\n') ? s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n') : s;
}

/** prom-client's escapeLabelValue: strings escaped (backslash, newline, quote); numbers as they print. */
export function labelValue(v: LabelValue): string {
  if (typeof v !== 'string') return `${v}`;
  return v.includes('\\') || v.includes('\n') || v.includes('"') ? escapeText(v).replace(/"/g, '\\"') : v;
}

/** `a="x",b="y"` in the labels' own key order (as prom-client writes them); '' when there are none. */
function labelPairs(labels: Labels): string {
  let out = '';
  for (const k in labels) {
    if (!Object.hasOwn(labels, k)) continue;
    if (out !== '') out += ',';
    out += `${k}="${labelValue(labels[k] as LabelValue)}"`;
  }
  return out;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null;
}

function isSeries(x: unknown): x is SeriesValue {
  return isRecord(x) && typeof x['value'] === 'number' && isRecord(x['labels']);
}

function isHistogramValue(x: unknown): x is HistogramValue {
  return isRecord(x) && isRecord(x['labels']) && isRecord(x['bucketValues']) && typeof x['sum'] === 'number' && typeof x['count'] === 'number';
}

/** The lines after `# TYPE` of a counter or gauge; undefined when its values are not of the expected shape. */
function simpleLines(name: string, values: readonly unknown[]): string | undefined {
  let out = '';
  for (const v of values) {
    if (!isSeries(v)) return undefined;
    const pairs = labelPairs(v.labels);
    out += pairs === '' ? `\n${name} ${valueText(v.value)}` : `\n${name}{${pairs}} ${valueText(v.value)}`;
  }
  return out;
}

/** The lines after `# TYPE` of a histogram: cumulative buckets (le first), +Inf, sum, count. */
function histogramLines(name: string, bounds: readonly number[], values: readonly unknown[]): string | undefined {
  let out = '';
  for (const v of values) {
    if (!isHistogramValue(v)) return undefined;
    const pairs = labelPairs(v.labels);
    const rest = pairs === '' ? '' : `,${pairs}`;
    let acc = 0;
    for (const bound of bounds) {
      acc += v.bucketValues[bound] ?? Number.NaN;
      out += `\n${name}_bucket{le="${bound}"${rest}} ${valueText(acc)}`;
    }
    const own = pairs === '' ? '' : `{${pairs}}`;
    out += `\n${name}_bucket{le="+Inf"${rest}} ${valueText(v.count)}\n${name}_sum${own} ${valueText(v.sum)}\n${name}_count${own} ${valueText(v.count)}`;
  }
  return out;
}

/** One metric's block (HELP, TYPE, series), or undefined for prom-client to write it. */
function block(m: MetricInternals): string | undefined {
  if (!isRecord(m.hashMap)) return undefined;
  const values = Object.values(m.hashMap);
  const name = escapeText(m.name);
  let lines: string | undefined;
  if (m.type === 'counter' || m.type === 'gauge') lines = simpleLines(name, values);
  else if (m.type === 'histogram' && Array.isArray(m.upperBounds)) lines = histogramLines(name, m.upperBounds, values);
  if (lines === undefined) return undefined;
  return `# HELP ${name} ${escapeText(m.help)}\n# TYPE ${name} ${m.type}${lines}`;
}

/** Default labels set on the registry (prom-client keeps them in `_defaultLabels`). */
function hasDefaultLabels(registry: Registry): boolean {
  const d = (registry as unknown as { _defaultLabels?: unknown })._defaultLabels;
  return isRecord(d) && Object.keys(d).length > 0;
}

/**
 * Writes a metric's series straight from their source, in place of its collect + prom-client series: each line
 * `\n<name>{labels} value`, in chunks (the writer may let the event loop run between two). The lines must be
 * what the collect would have made prom-client write.
 */
export type SeriesWriter = (name: string) => Iterable<string>;

/** Series per chunk of seriesLines: at 5,000 servers a metric's lines are ~10 chunks of ~1 ms each. */
const SERIES_PER_CHUNK = 512;

/**
 * `\n<name>{<pairs>} <value>` for each series (label pairs already escaped, in prom-client's order), in chunks
 * of SERIES_PER_CHUNK lines.
 */
export function* seriesLines(name: string, series: ReadonlyMap<string, number>): Generator<string> {
  let out = '';
  let n = 0;
  for (const [pairs, v] of series) {
    out += `\n${name}{${pairs}} ${valueText(v)}`;
    if (++n === SERIES_PER_CHUNK) {
      yield flat(out);
      out = '';
      n = 0;
    }
  }
  if (out !== '') yield flat(out);
}

/**
 * The string made one flat copy now (V8 flattens a concatenation in place at its first character read), so the
 * thousands of small pieces it was built from die young instead of being copied by every scavenge while the
 * exposition is being written (at 5,000 servers those copies were 10-20 ms pauses each).
 */
function flat(s: string): string {
  s.charCodeAt(0);
  return s;
}

/**
 * After this long writing without a break, the writer lets the event loop run (timers, poll answers) before
 * the next metric: at 5,000 servers an exposition takes tens of ms, which would otherwise make every poll
 * batch due meanwhile late by as much (BENCHMARKS.md, issue 16).
 */
export const EXPOSITION_SLICE_MS = 8;

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * The registry's exposition, equal to `await registry.metrics()`, as a sequence of flat strings (a metric's
 * block, or one chunk of a written metric's series), letting the event loop run between two after
 * EXPOSITION_SLICE_MS. Synchronous collect callbacks are run here; an asynchronous one (or anything else
 * unexpected) hands the whole registry to prom-client (one piece). `writers`: the metrics whose series are
 * written from their source (their collect is not run; see SeriesWriter). A caller that sends each piece on
 * and drops it never holds the whole text: at 5,000 servers ~3 MB, which as one string (plus its copy into a
 * Buffer for gzip) lived until the next full collection, a few MB of dead large objects per scrape.
 */
export async function* expositionChunks(registry: Registry, writers?: ReadonlyMap<unknown, SeriesWriter>): AsyncGenerator<string> {
  if (registry.contentType !== Registry.PROMETHEUS_CONTENT_TYPE || hasDefaultLabels(registry)) {
    yield await registry.metrics();
    return;
  }
  const internals = registry.getMetricsAsArray() as readonly unknown[] as readonly MetricInternals[];
  // All collects first, in order, as prom-client's Promise.all over get() runs them: one collect may set
  // another metric's values (the CPU counters are filled by the first one's collect).
  for (const m of internals) {
    if (writers?.has(m)) continue;
    if (typeof m.collect === 'function' && m.collect() instanceof Promise) {
      yield await registry.metrics();
      return;
    }
  }
  // Small blocks are gathered into pieces of PIECE_CHARS: a small daemon's whole exposition is one piece, so
  // its scrape does not pay an await per metric.
  let piece = '';
  let sliceStart = performance.now();
  for (let i = 0; i < internals.length; i++) {
    const m = internals[i] as MetricInternals;
    const writer = writers?.get(m);
    if (i > 0) piece += '\n\n';
    if (writer) {
      const name = escapeText(m.name);
      piece += `# HELP ${name} ${escapeText(m.help)}\n# TYPE ${name} ${m.type}`;
      for (const chunk of writer(name)) {
        piece += chunk;
        if (piece.length >= PIECE_CHARS) {
          yield flat(piece);
          piece = '';
        }
        if (performance.now() - sliceStart > EXPOSITION_SLICE_MS) {
          await yieldToLoop();
          sliceStart = performance.now();
        }
      }
    } else {
      piece += flat(block(m) ?? (await registry.getSingleMetricAsString(m.name)));
    }
    if (piece.length >= PIECE_CHARS) {
      yield flat(piece);
      piece = '';
    }
    if (performance.now() - sliceStart > EXPOSITION_SLICE_MS) {
      await yieldToLoop();
      sliceStart = performance.now();
    }
  }
  yield `${piece}\n`;
}

/** The size from which expositionChunks hands a piece on (a written metric's chunk is ~20-60 KB by itself). */
const PIECE_CHARS = 16 * 1024;

/** The whole exposition as one string (tests, and callers that want the text). */
export async function writeExposition(registry: Registry, writers?: ReadonlyMap<unknown, SeriesWriter>): Promise<string> {
  let out = '';
  for await (const chunk of expositionChunks(registry, writers)) out += chunk;
  return out;
}
