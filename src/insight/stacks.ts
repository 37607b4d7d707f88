/**
 * The call stacks of a decoded pprof profile for one sample type, as the flame graph, the top table and
 * the diff see them: root-first function names (inlined frames expanded), each with the sample's value.
 * Pure over a decoded Profile; no I/O.
 */
import type { Profile } from 'pprof-format';
import { defaultSampleIndex, num, str, type Numeric } from './pprof-summary.js';

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

export function sampleTypesOf(profile: Profile): SampleTypeInfo[] {
  return profile.sampleType.map((t) => ({ type: str(profile, t.type), unit: str(profile, t.unit) }));
}

/**
 * Index of `wanted` among the profile's sample types; without it, the type `go tool pprof` shows by
 * default (default_sample_type, else the last). Throws SampleTypeError naming the types it has.
 */
export function chooseSampleType(profile: Profile, wanted: string | undefined, which = 'the profile'): { index: number } & SampleTypeInfo {
  const types = sampleTypesOf(profile);
  const index = wanted === undefined ? defaultSampleIndex(profile) : types.findIndex((t) => t.type === wanted);
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
function locationFrames(profile: Profile, names: Names): { get(id: number): number[] | undefined } {
  const functionNames = new Map<number, string>();
  for (const fn of profile.function) {
    functionNames.set(num(fn.id), str(profile, fn.name) || str(profile, fn.systemName));
  }
  const dense = profile.location.every((l) => num(l.id) >= 0 && num(l.id) <= 4 * profile.location.length + 1024);
  const byArray: (number[] | undefined)[] = [];
  const byMap = new Map<number, number[]>();
  for (const loc of profile.location) {
    const ids: number[] = [];
    for (const line of loc.line) {
      const name = functionNames.get(num(line.functionId));
      if (name) ids.push(names.id(name));
    }
    if (ids.length === 0) {
      const address = num(loc.address);
      ids.push(names.id(address ? `0x${address.toString(16)}` : '<unknown>'));
    }
    if (dense) byArray[num(loc.id)] = ids;
    else byMap.set(num(loc.id), ids);
  }
  return dense ? { get: (id) => byArray[id] } : byMap;
}

/**
 * Calls `visit` once per sample with a non-zero value of sample type `index`: its frames root first
 * (indices into `names`; the array is reused between calls, copy it to keep it) and the value. Returns the
 * total over all samples.
 */
export function forEachStack(profile: Profile, index: number, names: Names, visit: (frames: readonly number[], value: number) => void): number {
  const byLocation = locationFrames(profile, names);
  const unknown = names.id('<unknown>');
  const stack: number[] = [];
  let total = 0;
  for (const sample of profile.sample) {
    const raw = sample.value[index];
    if (raw === undefined) continue;
    const value = num(raw);
    if (value === 0) continue;
    total += value;
    stack.length = 0;
    // locationId[0] is the leaf: walk from the last (the root) and each location's lines from the outermost.
    for (let i = sample.locationId.length - 1; i >= 0; i--) {
      const ids = byLocation.get(num(sample.locationId[i] as Numeric)) ?? [unknown];
      for (let j = ids.length - 1; j >= 0; j--) stack.push(ids[j] as number);
    }
    // A sample without locations (Go writes one for goroutines it could not unwind) still counts somewhere.
    if (stack.length === 0) stack.push(unknown);
    visit(stack, value);
  }
  return total;
}
