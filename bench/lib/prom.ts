/** Reading the daemon's /metrics: sums of series, and histograms (as deltas between two scrapes). */

export type Series = { labels: Record<string, string>; value: number };
export type Exposition = Map<string, Series[]>;

export function parseExposition(text: string): Exposition {
  const out: Exposition = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.lastIndexOf(' ');
    let name: string;
    const labels: Record<string, string> = {};
    if (brace >= 0 && brace < space) {
      name = line.slice(0, brace);
      const inner = line.slice(brace + 1, line.lastIndexOf('}'));
      for (const m of inner.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[m[1] as string] = m[2] as string;
    } else {
      name = line.slice(0, space);
    }
    let list = out.get(name);
    if (!list) out.set(name, (list = []));
    list.push({ labels, value: Number(line.slice(space + 1)) });
  }
  return out;
}

/** Sum of every series of `name` whose labels include `match`. */
export function sum(e: Exposition, name: string, match: Record<string, string> = {}): number {
  let s = 0;
  for (const x of e.get(name) ?? []) {
    if (Object.entries(match).every(([k, v]) => x.labels[k] === v)) s += x.value;
  }
  return s;
}

export interface Histogram {
  /** Upper bounds (seconds), ascending, +Inf last. */
  le: number[];
  /** Cumulative counts per bound. */
  cumulative: number[];
  count: number;
  sum: number;
}

export function histogram(e: Exposition, name: string): Histogram {
  const rows = (e.get(`${name}_bucket`) ?? []).map((s) => ({ le: s.labels['le'] === '+Inf' ? Infinity : Number(s.labels['le']), v: s.value }));
  rows.sort((a, b) => a.le - b.le);
  return { le: rows.map((r) => r.le), cumulative: rows.map((r) => r.v), count: sum(e, `${name}_count`), sum: sum(e, `${name}_sum`) };
}

/** b - a, bucket by bucket (same bounds). */
export function delta(a: Histogram, b: Histogram): Histogram {
  return { le: b.le, cumulative: b.cumulative.map((v, i) => v - (a.cumulative[i] ?? 0)), count: b.count - a.count, sum: b.sum - a.sum };
}

/** Like PromQL histogram_quantile: linear interpolation inside the bucket; the lowest bucket starts at 0. */
export function quantile(h: Histogram, q: number): number | null {
  const total = h.cumulative[h.cumulative.length - 1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let i = h.cumulative.findIndex((c) => c >= rank);
  if (i < 0) i = h.cumulative.length - 1;
  const upper = h.le[i] as number;
  const lower = i === 0 ? 0 : (h.le[i - 1] as number);
  if (upper === Infinity) return lower;
  const below = i === 0 ? 0 : (h.cumulative[i - 1] as number);
  const inBucket = (h.cumulative[i] as number) - below;
  return inBucket <= 0 ? upper : lower + (upper - lower) * ((rank - below) / inBucket);
}

/** A histogram from the baseline's own counters (per-bucket counts in ms with the same bounds). */
export function fromCounts(boundsMs: number[], counts: number[], count: number, sumMs: number): Histogram {
  const le = [...boundsMs.map((b) => b / 1000), Infinity];
  const cumulative: number[] = [];
  let acc = 0;
  for (const c of counts) cumulative.push((acc += c));
  return { le, cumulative, count, sum: sumMs / 1000 };
}

/** Exact percentile of raw samples (nearest rank). */
export function percentile(values: number[], q: number): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
}
