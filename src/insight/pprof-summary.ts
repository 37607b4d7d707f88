/**
 * Top functions of a Go pprof profile, for manifests, logs and the API. Works on the bytes exactly as
 * the server sent them (gzip-compressed protobuf), or on uncompressed protobuf.
 */
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import type { ProfileSummary, TopFunction } from '../store/manifest.js';

/** The bytes are not a pprof profile we can read. */
export class ProfileDecodeError extends Error {
  override readonly name = 'ProfileDecodeError';
}

/** A gzip bomb guard: real profiles are KB to a few MB uncompressed. */
export const MAX_UNCOMPRESSED_BYTES = 256 * 1024 * 1024;

/** Name used for samples whose leaf location has no symbol information. */
const UNKNOWN = '<unknown>';

export type Numeric = number | bigint;

/** pprof int64/uint64 fields arrive as number (small) or bigint (large or negative). */
export function num(v: Numeric): number {
  return typeof v === 'bigint' ? Number(BigInt.asIntN(64, v)) : v;
}

function isGzip(data: Uint8Array): boolean {
  return data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b;
}

/** Gunzips when needed and decodes. Throws ProfileDecodeError for anything that is not a profile. */
export function decodeProfile(data: Uint8Array): Profile {
  if (data.byteLength === 0) throw new ProfileDecodeError('profile is empty (0 bytes)');
  let raw: Uint8Array = data;
  if (isGzip(data)) {
    try {
      raw = gunzipSync(data, { maxOutputLength: MAX_UNCOMPRESSED_BYTES });
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      throw new ProfileDecodeError(`profile is not valid gzip: ${why}`, { cause: err });
    }
  }
  let profile: Profile;
  try {
    profile = Profile.decode(raw);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new ProfileDecodeError(
      `profile is not a pprof protobuf${isGzip(data) ? '' : ' (and not gzip)'}: ${why}`,
      { cause: err },
    );
  }
  const strings = profile.stringTable.strings;
  // Garbage often "decodes" into nonsense; a real profile has sample types named in its string table.
  const valid =
    profile.sampleType.length > 0 &&
    profile.sampleType.every((t) => {
      const type = strings[num(t.type)];
      return type !== undefined && type !== '' && strings[num(t.unit)] !== undefined;
    });
  if (!valid) {
    throw new ProfileDecodeError(
      profile.sampleType.length === 0
        ? `profile has no sample types${isGzip(data) ? '' : ' (input is not gzip; is it a profile at all?)'}`
        : 'profile has sample types that are not in its string table',
    );
  }
  return profile;
}

export function str(profile: Profile, index: Numeric): string {
  return profile.stringTable.strings[num(index)] ?? '';
}

/** Sample types in file order, e.g. [{type: 'samples', unit: 'count'}, {type: 'cpu', unit: 'nanoseconds'}]. */
export function sampleTypes(data: Uint8Array): { type: string; unit: string }[] {
  const profile = decodeProfile(data);
  return profile.sampleType.map((t) => ({ type: str(profile, t.type), unit: str(profile, t.unit) }));
}

/** The profile's duration in nanoseconds (CPU and delta profiles), undefined when not set. */
export function profileDurationNs(data: Uint8Array): number | undefined {
  const ns = num(decodeProfile(data).durationNanos);
  return ns > 0 ? ns : undefined;
}

/** Index of the sample type `go tool pprof` shows by default: `default_sample_type` if set, else the last. */
export function defaultSampleIndex(profile: Profile): number {
  const wanted = str(profile, profile.defaultSampleType);
  if (wanted !== '') {
    const i = profile.sampleType.findIndex((t) => str(profile, t.type) === wanted);
    if (i >= 0) return i;
  }
  return profile.sampleType.length - 1;
}

/** Top functions of an already decoded profile; see summarizeProfile. */
export function summarizeDecoded(profile: Profile, n = 10): ProfileSummary {
  const index = defaultSampleIndex(profile);
  const valueType = profile.sampleType[index];
  if (valueType === undefined) throw new ProfileDecodeError('profile has no sample types');

  const functionNames = new Map<number, string>();
  for (const fn of profile.function) functionNames.set(num(fn.id), str(profile, fn.name));

  // A location's line[] lists its inlined frames innermost first, so line[0] is the function that
  // actually ran; a sample's locationId[0] is its leaf location. Together: the "flat" function.
  const leafNames = new Map<number, string>();
  for (const loc of profile.location) {
    const first = loc.line[0];
    const name = first ? functionNames.get(num(first.functionId)) : undefined;
    const address = num(loc.address);
    leafNames.set(num(loc.id), name || (address ? `0x${address.toString(16)}` : UNKNOWN));
  }

  let total = 0;
  const flat = new Map<string, number>();
  for (const sample of profile.sample) {
    const raw = sample.value[index];
    if (raw === undefined) continue;
    const value = num(raw);
    if (value === 0) continue;
    total += value;
    const leaf = sample.locationId[0];
    const name = (leaf === undefined ? undefined : leafNames.get(num(leaf))) ?? UNKNOWN;
    flat.set(name, (flat.get(name) ?? 0) + value);
  }

  const top: TopFunction[] = [...flat]
    .filter(([, value]) => value !== 0)
    .sort(([an, av], [bn, bv]) => bv - av || (an < bn ? -1 : an > bn ? 1 : 0))
    .slice(0, Math.max(0, n))
    .map(([name, value]) => ({ function: name, flat: value, share: total > 0 ? value / total : 0 }));

  return { sampleType: str(profile, valueType.type), unit: str(profile, valueType.unit), total, top };
}

/**
 * The n functions with the most flat value for the default sample type (as `go tool pprof -top`),
 * with share = flat / total over all samples. Throws ProfileDecodeError for bytes that are not a profile.
 */
export function summarizeProfile(data: Uint8Array, n = 10): ProfileSummary {
  return summarizeDecoded(decodeProfile(data), n);
}
