/**
 * The call stacks of a decoded pprof profile for one sample type, as the flame graph, the top table and
 * the diff see them: root-first function names (inlined frames expanded), each with the sample's value.
 * Pure over a decoded Profile; no I/O.
 */
import type { ProfileData } from './pprof-reader.js';

export interface SampleTypeInfo {
  type: string;
  unit: string;
}

/** The asked sample type is not in the profile (the message names it and what the profile has). */
export class SampleTypeError extends Error {
  override readonly name = 'SampleTypeError';
}

/** Names interned once: the same function name has the same index (shared by the two sides of a diff). */
export class Names {
  readonly list: string[] = [];
  readonly #ids = new Map<string, number>();

  id(name: string): number {
    let i = this.#ids.get(name);
    if (i === undefined) {
      i = this.list.length;
      this.list.push(name);
      this.#ids.set(name, i);
    }
    return i;
  }

  name(id: number): string {
    return this.list[id] ?? '';
  }
}

export function sampleTypesOf(profile: ProfileData): SampleTypeInfo[] {
  return profile.sampleTypes.map((t) => ({ type: profile.strings[t.type] ?? '', unit: profile.strings[t.unit] ?? '' }));
}

/**
 * Index of `wanted` among the profile's sample types; without it, the type `go tool pprof` shows by
 * default (default_sample_type, else the last). Throws SampleTypeError naming the types it has.
 */
export function chooseSampleType(profile: ProfileData, wanted: string | undefined, which = 'the profile'): { index: number } & SampleTypeInfo {
  const types = sampleTypesOf(profile);
  let index: number;
  if (wanted !== undefined) index = types.findIndex((t) => t.type === wanted);
  else {
    const byDefault = profile.strings[profile.defaultSampleType] ?? '';
    const at = byDefault === '' ? -1 : types.findIndex((t) => t.type === byDefault);
    index = at >= 0 ? at : types.length - 1;
  }
  const t = types[index];
  if (t === undefined) {
    throw new SampleTypeError(`sample type ${JSON.stringify(wanted)} is not in ${which}; it has: ${types.map((x) => x.type).join(', ')}`);
  }
  return { index, ...t };
}

/**
 * Each location's frame names, leaf first (pprof lists inlined functions innermost first in `line`), by
 * location id: an array when ids are small (Go numbers them 1..n), a Map otherwise.
 */
function locationFrames(profile: ProfileData, names: Names): { get(id: number): number[] | undefined } {
  const fnName = new Map<number, number>();
  for (const [id, s] of profile.functionNames) {
    const name = profile.strings[s];
    if (name) fnName.set(id, names.id(name));
  }
  const dense = [...profile.locations.keys()].every((id) => id >= 0 && id <= 4 * profile.locations.size + 1024);
  const byArray: (number[] | undefined)[] = [];
  const byMap = new Map<number, number[]>();
  for (const [id, loc] of profile.locations) {
    const ids: number[] = [];
    for (const f of loc.functionIds) {
      const n = fnName.get(f);
      if (n !== undefined) ids.push(n);
    }
    // Addresses are uint64; the reader gives int64 semantics, so high (kernel) addresses come back negative.
    const address = loc.address < 0 ? loc.address + 2 ** 64 : loc.address;
    if (ids.length === 0) ids.push(names.id(address ? `0x${address.toString(16)}` : '<unknown>'));
    if (dense) byArray[id] = ids;
    else byMap.set(id, ids);
  }
  return dense ? { get: (id) => byArray[id] } : byMap;
}

/**
 * Calls `visit` once per sample with a non-zero value of sample type `index`: its frames root first
 * (indices into `names`; the array is reused between calls, copy it to keep it) and the value. Returns the
 * total over all samples.
 */
export function forEachStack(profile: ProfileData, index: number, names: Names, visit: (frames: readonly number[], value: number) => void): number {
  const byLocation = locationFrames(profile, names);
  const unknown = names.id('<unknown>');
  const stack: number[] = [];
  let total = 0;
  profile.forEachSample((locationIds, values) => {
    const value = values[index];
    if (value === undefined || value === 0) return;
    total += value;
    stack.length = 0;
    // locationIds[0] is the leaf: walk from the last (the root) and each location's lines from the outermost.
    for (let i = locationIds.length - 1; i >= 0; i--) {
      const ids = byLocation.get(locationIds[i] as number) ?? [unknown];
      for (let j = ids.length - 1; j >= 0; j--) stack.push(ids[j] as number);
    }
    // A sample without locations (Go writes one for goroutines it could not unwind) still counts somewhere.
    if (stack.length === 0) stack.push(unknown);
    visit(stack, value);
  });
  return total;
}
