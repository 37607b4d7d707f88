/**
 * `allocs_delta` through the system account: PROFILEZ only gives the cumulative `allocs` profile (every
 * allocation since the process started), so two snapshots taken a window apart are subtracted here, the
 * way Go's own `/debug/pprof/allocs?seconds=N` does on the server. Pure; runs in the profile worker thread.
 *
 * Samples are matched by their stack and their labels. A stack is the list of its locations' addresses
 * (program counters: both snapshots come from the same process, so they are stable, while location ids are
 * numbered afresh by each encoding), or, for a location without an address, its functions and lines.
 */
import { gzipSync } from 'node:zlib';
import { Label, Sample, type Profile } from 'pprof-format';
import { decodeProfile, ProfileDecodeError, type Numeric } from './pprof-summary.js';

/** The sample type a delta is ranked by when the profile names none (Go's allocs profile names it itself). */
export const DELTA_DEFAULT_SAMPLE_TYPE = 'alloc_space';

function big(v: Numeric): bigint {
  return typeof v === 'bigint' ? BigInt.asIntN(64, v) : BigInt(v);
}

/** A bigint as pprof-format wants an int64: a plain number while it is exact. */
function numeric(v: bigint): Numeric {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function typesOf(p: Profile): string[] {
  const s = p.stringTable.strings;
  return p.sampleType.map((t) => `${s[Number(t.type)] ?? ''}/${s[Number(t.unit)] ?? ''}`);
}

/** The key of a sample: its stack (addresses, or functions and lines) and its labels, as text. */
function keyer(p: Profile): (sample: Sample) => string {
  const s = p.stringTable.strings;
  const fnName = new Map<string, string>();
  for (const f of p.function) fnName.set(String(f.id), s[Number(f.name)] ?? '');
  const locKey = new Map<string, string>();
  for (const l of p.location) {
    const address = big(l.address);
    locKey.set(
      String(l.id),
      address !== 0n ? address.toString(16) : l.line.map((ln) => `${fnName.get(String(ln.functionId)) ?? '?'}:${String(ln.line)}`).join('|'),
    );
  }
  return (sample) => {
    const stack = sample.locationId.map((id) => {
      const k = locKey.get(String(id));
      if (k === undefined) throw new ProfileDecodeError(`a sample names location ${String(id)}, which the profile does not have`);
      return k;
    });
    const labels = sample.label
      .map((l) => `${s[Number(l.key)] ?? ''}=${l.str ? `s:${s[Number(l.str)] ?? ''}` : `n:${String(l.num)}${l.numUnit ? (s[Number(l.numUnit)] ?? '') : ''}`}`)
      .sort();
    return `${stack.join(' ')}\n${labels.join('\n')}`;
  };
}

/**
 * `after` minus `before`, in place in `after` (returned): each sample of `after` gets its values less those
 * of the samples of `before` with the same stack and labels; samples left all zero are dropped. A stack only
 * in `before` is left out: the runtime's allocation records only ever grow, so it can only be one the
 * runtime had not yet published when `after` was written. Both must have the same sample types.
 * `timeNanos` becomes the start of the window, `durationNanos` its length (the snapshots' own times when
 * both have one, else `windowMs`).
 */
export function subtractProfiles(before: Profile, after: Profile, windowMs: number): Profile {
  const tb = typesOf(before);
  const ta = typesOf(after);
  if (tb.join(',') !== ta.join(',')) {
    throw new ProfileDecodeError(`the two profiles have different sample types (${tb.join(', ')} and ${ta.join(', ')}); they cannot be subtracted`);
  }
  const n = ta.length;
  const base = new Map<string, bigint[]>();
  const keyBefore = keyer(before);
  for (const sample of before.sample) {
    const k = keyBefore(sample);
    const sum = base.get(k) ?? new Array<bigint>(n).fill(0n);
    for (let i = 0; i < n; i++) sum[i] = (sum[i] as bigint) + big(sample.value[i] ?? 0);
    base.set(k, sum);
  }
  const keyAfter = keyer(after);
  const merged = new Map<string, { sample: Sample; values: bigint[] }>();
  for (const sample of after.sample) {
    const k = keyAfter(sample);
    const had = merged.get(k);
    if (had) {
      for (let i = 0; i < n; i++) had.values[i] = (had.values[i] as bigint) + big(sample.value[i] ?? 0);
    } else {
      merged.set(k, { sample, values: Array.from({ length: n }, (_, i) => big(sample.value[i] ?? 0)) });
    }
  }
  const out: Sample[] = [];
  for (const [k, { sample, values }] of merged) {
    const minus = base.get(k);
    const diff = minus ? values.map((v, i) => v - (minus[i] as bigint)) : values;
    if (diff.every((v) => v === 0n)) continue;
    out.push(new Sample({ locationId: sample.locationId, label: sample.label.map((l) => new Label(l)), value: diff.map(numeric) }));
  }
  after.sample = out;
  const start = big(before.timeNanos);
  const end = big(after.timeNanos);
  after.timeNanos = numeric(start > 0n ? start : end > 0n ? end - BigInt(Math.round(windowMs)) * 1_000_000n : 0n);
  after.durationNanos = numeric(start > 0n && end > start ? end - start : BigInt(Math.round(windowMs)) * 1_000_000n);
  return withDefaultSampleType(after, windowMs);
}

/**
 * Go's delta profile (`/debug/pprof/allocs?seconds=N`) names no default sample type, so `go tool pprof` and
 * the top tables would rank it by its last one, inuse_space, which means nothing for a window: alloc_space.
 */
export function withDefaultSampleType(p: Profile, windowMs: number): Profile {
  const strings = p.stringTable.strings;
  const current = strings[Number(p.defaultSampleType)];
  if (Number(p.defaultSampleType) === 0 || current === undefined || current === '') {
    const t = p.sampleType.find((v) => strings[Number(v.type)] === DELTA_DEFAULT_SAMPLE_TYPE);
    if (t) p.defaultSampleType = t.type;
  }
  if (big(p.durationNanos) <= 0n) p.durationNanos = numeric(BigInt(Math.round(windowMs)) * 1_000_000n);
  return p;
}

/**
 * Two gzip (or plain) protobuf `allocs` snapshots taken `windowMs` apart → the gzip protobuf of what was
 * allocated between them (`allocs_delta.pb.gz`). Without `before`, `after` is already a delta (prof_port's)
 * and only gets its default sample type. Throws ProfileDecodeError for bytes that are not profiles.
 */
export function allocsDelta(before: Uint8Array | undefined, after: Uint8Array, windowMs: number): Uint8Array {
  const a = decodeProfile(after);
  const delta = before === undefined ? a : subtractProfiles(decodeProfile(before), a, windowMs);
  return gzipSync(withDefaultSampleType(delta, windowMs).encode());
}
