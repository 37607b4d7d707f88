/**
 * The top table of a decoded pprof profile (`go tool pprof -top`): per function its flat value (as the
 * leaf frame) and cum value (anywhere on the stack, counted once per sample even under recursion), with
 * shares of the total. Pure over a decoded Profile.
 */
import type { Profile } from 'pprof-format';
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
export function flatAndCum(profile: Profile, index: number, names: Names): { total: number; flat: Map<number, number>; cum: Map<number, number> } {
  const flat = new Map<number, number>();
  const cum = new Map<number, number>();
  // seen[name] === sample number: the function was already counted for this sample (recursion).
  const seen: number[] = [];
  let sampleNo = 0;
  const total = forEachStack(profile, index, names, (frames, value) => {
    sampleNo++;
    const leaf = frames[frames.length - 1];
    if (leaf !== undefined) flat.set(leaf, (flat.get(leaf) ?? 0) + value);
    for (const f of frames) {
      if (seen[f] === sampleNo) continue;
      seen[f] = sampleNo;
      cum.set(f, (cum.get(f) ?? 0) + value);
    }
  });
  return { total, flat, cum };
}

/** Rows sorted by flat descending (then cum, then name); at most `limit`. */
export function buildTop(profile: Profile, o: { sampleType?: string | undefined; limit?: number | undefined } = {}): TopTable {
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
