/**
 * The top table of a decoded pprof profile (`go tool pprof -top`): per function its flat value (as the
 * leaf frame) and cum value (anywhere on the stack, counted once per sample even under recursion), with
 * shares of the total. Pure over a decoded ProfileData.
 */
import type { ProfileData } from './pprof-reader.js';
import { compareNames } from './flamegraph.js';
import { chooseSampleType, forEachStack, Names, sampleTypesOf, type SampleTypeInfo } from './stacks.js';

export const DEFAULT_TOP_LIMIT = 50;

export interface TopRow {
  function: string;
  flat: number;
  flat_share: number;
  cum: number;
  cum_share: number;
}

export interface TopTable {
  sample_type: string;
  unit: string;
  sample_types: SampleTypeInfo[];
  total: number;
  rows: TopRow[];
}

/** Flat and cum values per function name (indices into `names`) for sample type `index`. */
export function flatAndCum(profile: ProfileData, index: number, names: Names): { total: number; flat: Map<number, number>; cum: Map<number, number> } {
  // Per name id in typed arrays, not Maps: a Map update per frame was most of the top table's time on
  // large profiles. Every name is interned before the first sample is visited (the location table), so
  // the arrays are sized then; they grow if not.
  let flatV = new Float64Array(0);
  let cumV = new Float64Array(0);
  // seen[name] === sample number: the function was already counted for this sample (recursion).
  let seen = new Int32Array(0);
  // isLeaf[name] = 1: the function was some sample's leaf (its flat entry exists even when values sum to 0).
  let isLeaf = new Uint8Array(0);
  const fit = (n: number): void => {
    if (n <= flatV.length) return;
    const size = Math.max(n, flatV.length * 2);
    const f = new Float64Array(size);
    f.set(flatV);
    const c = new Float64Array(size);
    c.set(cumV);
    const s = new Int32Array(size);
    s.set(seen);
    const l = new Uint8Array(size);
    l.set(isLeaf);
    isLeaf = l;
    flatV = f;
    cumV = c;
    seen = s;
  };
  let sampleNo = 0;
  const total = forEachStack(profile, index, names, (frames, value) => {
    sampleNo++;
    fit(names.list.length);
    const leaf = frames[frames.length - 1];
    if (leaf !== undefined) {
      flatV[leaf] = (flatV[leaf] as number) + value;
      isLeaf[leaf] = 1;
    }
    for (let i = 0; i < frames.length; i++) {
      const f = frames[i] as number;
      if (seen[f] === sampleNo) continue;
      seen[f] = sampleNo;
      cumV[f] = (cumV[f] as number) + value;
    }
  });
  const flat = new Map<number, number>();
  const cum = new Map<number, number>();
  for (let id = 0; id < seen.length; id++) {
    if ((seen[id] as number) === 0) continue;
    cum.set(id, cumV[id] as number);
    if (isLeaf[id] === 1) flat.set(id, flatV[id] as number);
  }
  return { total, flat, cum };
}

/** Rows sorted by flat descending (then cum, then name); at most `limit`. */
export function buildTop(profile: ProfileData, o: { sampleType?: string | undefined; limit?: number | undefined } = {}): TopTable {
  const chosen = chooseSampleType(profile, o.sampleType);
  const names = new Names();
  const { total, flat, cum } = flatAndCum(profile, chosen.index, names);
  const share = (v: number): number => (total === 0 ? 0 : v / total);
  const rows: TopRow[] = [...cum.entries()]
    .map(([id, c]) => {
      const f = flat.get(id) ?? 0;
      return { function: names.name(id), flat: f, flat_share: share(f), cum: c, cum_share: share(c) };
    })
    .sort((a, b) => b.flat - a.flat || b.cum - a.cum || compareNames(a.function, b.function))
    .slice(0, Math.max(0, o.limit ?? DEFAULT_TOP_LIMIT));
  return { sample_type: chosen.type, unit: chosen.unit, sample_types: sampleTypesOf(profile), total, rows };
}
