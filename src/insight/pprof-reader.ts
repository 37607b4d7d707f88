/**
 * A lean pprof reader for the flame graph, the top table and the diff. pprof-format's decoder builds an
 * object per sample (a 13 MB profile took about 1.2 GB of heap and seconds of garbage collection, see
 * BENCHMARKS.md), which rules out profiles near capture.max_profile_size. This reads the protobuf wire format
 * directly: the small tables (sample types, strings, functions, locations) are decoded, and the samples are
 * walked in place in the (gunzipped) bytes each time they are needed, so memory is the bytes plus the tables.
 */
import { inflateProfile, ProfileDecodeError } from './pprof-summary.js';

export interface ProfileData {
  /** Sample types in file order, as string table indices. */
  readonly sampleTypes: readonly { type: number; unit: number }[];
  /** String table index of default_sample_type (0: not set). */
  readonly defaultSampleType: number;
  readonly strings: readonly string[];
  /** Function id -> string index of its name (system name when the name is empty). */
  readonly functionNames: ReadonlyMap<number, number>;
  /** Location id -> function ids of its lines (innermost first, as pprof lists inlined frames) and its address. */
  readonly locations: ReadonlyMap<number, { functionIds: number[]; address: number }>;
  /** Calls `visit` per sample with its location ids (leaf first) and values; both arrays are reused. */
  forEachSample(visit: (locationIds: readonly number[], values: readonly number[]) => void): void;
  readonly sampleCount: number;
}

class Reader {
  pos: number;
  end: number;
  readonly buf: Uint8Array;

  constructor(buf: Uint8Array, pos: number, end: number) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  /** A varint as a number: int64 semantics (a 10-byte one is negative), exact up to 2^53. */
  varint(): number {
    if (this.pos >= this.end) throw new RangeError('truncated varint');
    const b = this.buf;
    let byte = b[this.pos++] as number;
    if (byte < 0x80) return byte;
    const start = this.pos - 1;
    let v = byte & 0x7f;
    let mul = 0x80;
    // Up to 7 bytes (49 bits) add up exactly in a double; longer ones (negative int64s take 10) go through BigInt.
    for (let i = 1; i < 7; i++) {
      if (this.pos >= this.end) throw new RangeError('truncated varint');
      byte = b[this.pos++] as number;
      v += (byte & 0x7f) * mul;
      if (byte < 0x80) return v;
      mul *= 0x80;
    }
    this.pos = start;
    let big = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new RangeError('truncated varint');
      byte = b[this.pos++] as number;
      big |= BigInt(byte & 0x7f) << BigInt(7 * i);
      if (byte < 0x80) return Number(BigInt.asIntN(64, big));
    }
    throw new RangeError('varint longer than 10 bytes');
  }

  /** Skips a field of `wire` type. */
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) {
      const len = this.varint(); // read before adding: `this.pos += this.varint()` would add to the old position
      this.pos += len;
    }
    else if (wire === 5) this.pos += 4;
    else throw new RangeError(`unsupported wire type ${wire}`);
    if (this.pos > this.end) throw new RangeError('field runs past its message');
  }

  /** A length-delimited field's [start, end); the reader moves past it. */
  sub(): [number, number] {
    const len = this.varint();
    const start = this.pos;
    this.pos += len;
    if (this.pos > this.end) throw new RangeError('field runs past its message');
    return [start, this.pos];
  }

  /** Appends a repeated integer field (packed, or a single unpacked value) to `out`. */
  ints(wire: number, out: number[]): void {
    if (wire === 0) {
      out.push(this.varint());
      return;
    }
    if (wire !== 2) throw new RangeError(`unexpected wire type ${wire} for a repeated integer`);
    const [start, end] = this.sub();
    const outer = this.end;
    this.pos = start;
    this.end = end;
    while (this.pos < end) out.push(this.varint());
    this.end = outer;
  }
}

function message(buf: Uint8Array, [start, end]: [number, number], fields: (field: number, wire: number, r: Reader) => void): void {
  const r = new Reader(buf, start, end);
  while (r.pos < end) {
    const key = r.varint();
    const before = r.pos;
    fields(key >>> 3, key & 7, r);
    // A handler that did not consume its field (an unexpected wire type) must not desynchronise the reader.
    if (r.pos === before) r.skip(key & 7);
  }
}

/** Parses gunzipped pprof bytes. Throws RangeError for malformed protobuf (readProfile turns it into ProfileDecodeError). */
function parse(buf: Uint8Array): ProfileData {
  const sampleTypes: { type: number; unit: number }[] = [];
  const strings: string[] = [];
  const functionNames = new Map<number, number>();
  const locations = new Map<number, { functionIds: number[]; address: number }>();
  const systemNames = new Map<number, number>();
  let defaultSampleType = 0;
  let sampleCount = 0;
  const decoder = new TextDecoder('utf-8');
  const top = new Reader(buf, 0, buf.length);
  while (top.pos < top.end) {
    const key = top.varint();
    const field = key >>> 3;
    const wire = key & 7;
    if (field === 1 && wire === 2) {
      const t = { type: 0, unit: 0 };
      message(buf, top.sub(), (f, w, r) => {
        if (f === 1 && w === 0) t.type = r.varint();
        else if (f === 2 && w === 0) t.unit = r.varint();
        else r.skip(w);
      });
      sampleTypes.push(t);
    } else if (field === 2 && wire === 2) {
      top.sub();
      sampleCount++;
    } else if (field === 4 && wire === 2) {
      const loc = { id: 0, functionIds: [] as number[], address: 0 };
      message(buf, top.sub(), (f, w, r) => {
        if (f === 1 && w === 0) loc.id = r.varint();
        else if (f === 3 && w === 0) loc.address = r.varint();
        else if (f === 4 && w === 2) {
          let fn = 0;
          message(buf, r.sub(), (lf, lw, lr) => {
            if (lf === 1 && lw === 0) fn = lr.varint();
            else lr.skip(lw);
          });
          loc.functionIds.push(fn);
        } else r.skip(w);
      });
      locations.set(loc.id, { functionIds: loc.functionIds, address: loc.address });
    } else if (field === 5 && wire === 2) {
      let id = 0;
      let name = 0;
      let systemName = 0;
      message(buf, top.sub(), (f, w, r) => {
        if (f === 1 && w === 0) id = r.varint();
        else if (f === 2 && w === 0) name = r.varint();
        else if (f === 3 && w === 0) systemName = r.varint();
        else r.skip(w);
      });
      functionNames.set(id, name);
      systemNames.set(id, systemName);
    } else if (field === 6 && wire === 2) {
      const [s, e] = top.sub();
      strings.push(decoder.decode(buf.subarray(s, e)));
    } else if (field === 14 && wire === 0) {
      defaultSampleType = top.varint();
    } else {
      top.skip(wire);
    }
  }
  for (const [id, name] of functionNames) if (!strings[name]) functionNames.set(id, systemNames.get(id) ?? 0);

  const locationIds: number[] = [];
  const values: number[] = [];
  const forEachSample = (visit: (locationIds: readonly number[], values: readonly number[]) => void): void => {
    const r = new Reader(buf, 0, buf.length);
    const sample = new Reader(buf, 0, 0);
    while (r.pos < r.end) {
      const key = r.varint();
      if (key !== ((2 << 3) | 2)) {
        r.skip(key & 7);
        continue;
      }
      [sample.pos, sample.end] = r.sub();
      locationIds.length = 0;
      values.length = 0;
      while (sample.pos < sample.end) {
        const k = sample.varint();
        const f = k >>> 3;
        if (f === 1) sample.ints(k & 7, locationIds);
        else if (f === 2) sample.ints(k & 7, values);
        else sample.skip(k & 7);
      }
      visit(locationIds, values);
    }
  };
  return { sampleTypes, defaultSampleType, strings, functionNames, locations, forEachSample, sampleCount };
}

/**
 * Gunzips when needed (bounded like decodeProfile) and reads the profile. Throws ProfileDecodeError for
 * anything that is not a profile, with the same messages as decodeProfile where they apply.
 */
export function readProfile(data: Uint8Array): ProfileData {
  const raw = inflateProfile(data);
  let p: ProfileData;
  try {
    p = parse(raw);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new ProfileDecodeError(`profile is not a pprof protobuf${raw === data ? ' (and not gzip)' : ''}: ${why}`, { cause: err });
  }
  const valid = p.sampleTypes.length > 0 && p.sampleTypes.every((t) => t.type > 0 && p.strings[t.type] !== undefined && p.strings[t.type] !== '' && p.strings[t.unit] !== undefined);
  if (!valid) {
    throw new ProfileDecodeError(
      p.sampleTypes.length === 0
        ? `profile has no sample types${raw === data ? ' (input is not gzip; is it a profile at all?)' : ''}`
        : 'profile has sample types that are not in its string table',
    );
  }
  return p;
}
