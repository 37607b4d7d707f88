/**
 * Small pprof profiles encoded with pprof-format for exact-tree tests. A stack lists locations root first;
 * a location is a function name, or a list of names for inlined frames (outermost first, as read in code),
 * which is written into pprof's `line` innermost first, the way Go does.
 */
import { gzipSync } from 'node:zlib';
import { Function as PFunction, Line, Location, Profile, Sample, StringTable, ValueType } from 'pprof-format';

export interface ProfileSpec {
  types: [type: string, unit: string][];
  defaultType?: string;
  samples: { stack: (string | string[])[]; values: number[] }[];
}

export function makeProfile(spec: ProfileSpec): Profile {
  const strings = new StringTable();
  const functions = new Map<string, PFunction>();
  const locations = new Map<string, Location>();
  const fn = (name: string): PFunction => {
    let f = functions.get(name);
    if (!f) {
      f = new PFunction({ id: functions.size + 1, name: strings.dedup(name), systemName: strings.dedup(name) });
      functions.set(name, f);
    }
    return f;
  };
  const loc = (frames: string[]): Location => {
    const key = frames.join('\u0000');
    let l = locations.get(key);
    if (!l) {
      const lines = [...frames].reverse().map((n) => new Line({ functionId: fn(n).id, line: 1 }));
      l = new Location({ id: locations.size + 1, address: 0x1000 + locations.size, line: lines });
      locations.set(key, l);
    }
    return l;
  };
  const sampleType = spec.types.map(([t, u]) => new ValueType({ type: strings.dedup(t), unit: strings.dedup(u) }));
  const sample = spec.samples.map(
    (s) =>
      new Sample({
        locationId: [...s.stack].reverse().map((f) => loc(typeof f === 'string' ? [f] : f).id),
        value: s.values,
      }),
  );
  return new Profile({
    sampleType,
    sample,
    location: [...locations.values()],
    function: [...functions.values()],
    stringTable: strings,
    ...(spec.defaultType !== undefined ? { defaultSampleType: strings.dedup(spec.defaultType) } : {}),
  });
}

/** The profile as Go serves it (gzip-compressed protobuf). */
export function encodeProfile(spec: ProfileSpec): Buffer {
  return gzipSync(makeProfile(spec).encode());
}
