/**
 * Names of incident directories and files, and the incident id that the HTTP API hands out.
 * Pure: no I/O. Every name produced here is a single safe path segment, and `parseIncidentId`
 * accepts only ids made of such segments, which is what keeps API ids from escaping the store.
 */

/** Prefix of an incident directory that is still being written (or was left by a crash). */
export const TMP_PREFIX = '.tmp-';

/** Name of the manifest file inside an incident directory. */
export const MANIFEST_FILE = 'incident.json';

/** Separator between the server directory and the incident directory in an id; never produced by `sanitize`. */
export const ID_SEPARATOR = '~';

/** Longest server directory name / label that `serverDirName` and `incidentDirName` produce. */
export const MAX_NAME_CHARS = 100;

/** Longest segment `isSafeSegment` accepts (file systems allow 255 bytes; leaves room for suffixes). */
export const MAX_SEGMENT_CHARS = 200;

const SAFE_SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;
const UNSAFE_CHARS = /[^A-Za-z0-9._-]/g;
const DIR_NAME = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z-(.+)$/;
/** 9999-12-31T23:59:59.999Z: beyond it ISO strings grow a sign and six-digit years. */
const MAX_TIMESTAMP_MS = 253402300799999;

/**
 * True for a name that is one harmless path segment: only [A-Za-z0-9._-], not empty, no leading dot
 * (so never `.`, `..` or a hidden/temporary entry), at most MAX_SEGMENT_CHARS. A `..` inside a name
 * (`a..b`) is allowed: without a separator it cannot leave the directory.
 */
export function isSafeSegment(name: string): boolean {
  return name.length <= MAX_SEGMENT_CHARS && SAFE_SEGMENT.test(name);
}

/** Any string -> a safe segment of at most MAX_NAME_CHARS. Idempotent: safe names come back unchanged. */
function sanitize(raw: string): string {
  let s = raw.replace(UNSAFE_CHARS, '_');
  if (s === '' || s.startsWith('.')) s = `_${s}`;
  return s.slice(0, MAX_NAME_CHARS);
}

/** Directory name for a server (its name, id or URL), e.g. `nats-1`, `nats___host_8222`. */
export function serverDirName(server: string): string {
  return sanitize(server);
}

/** `20261126T153000.123Z` (UTC, millisecond precision). Throws RangeError outside years 1970-9999. */
export function formatTimestamp(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0 || ms > MAX_TIMESTAMP_MS) {
    throw new RangeError(`timestamp ${ms} ms is outside 1970-01-01..9999-12-31`);
  }
  return new Date(Math.floor(ms)).toISOString().replace(/[-:]/g, '');
}

/** `<UTC timestamp>-<label>`, e.g. `20261126T153000.123Z-cpu_high`; the label is sanitised. */
export function incidentDirName(startedAtMs: number, label: string): string {
  return `${formatTimestamp(startedAtMs)}-${sanitize(label)}`;
}

/**
 * The start time and label back from an incident directory name (label includes any `-1`
 * collision suffix). Undefined for anything `incidentDirName` cannot have produced.
 */
export function parseIncidentDirName(dirName: string): { startedAtMs: number; label: string } | undefined {
  if (!isSafeSegment(dirName)) return undefined;
  const m = DIR_NAME.exec(dirName);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, ms, label] = m;
  const iso = `${y}-${mo}-${d}T${h}:${mi}:${s}.${ms}Z`;
  const startedAtMs = Date.parse(iso);
  // Date.parse accepts 2026-02-31; a round trip rejects it.
  if (Number.isNaN(startedAtMs) || new Date(startedAtMs).toISOString() !== iso || label === undefined) return undefined;
  return { startedAtMs, label };
}

/** `<serverDir>~<dirName>`: unique across the store, URL-safe, no slashes. */
export function incidentId(serverDir: string, dirName: string): string {
  return `${serverDir}${ID_SEPARATOR}${dirName}`;
}

/**
 * Splits an id into its two directory names, or undefined unless it is exactly two safe segments
 * (see isSafeSegment). This is the guard against path traversal: `..~x`, `a/b~c`, `a~b\c`, `a~.tmp-x`
 * and NUL bytes are rejected. Ids are matched literally: `%2e%2e~x` is rejected because `%` is never
 * produced by our names; the HTTP layer must percent-decode before calling this.
 */
export function parseIncidentId(id: string): { serverDir: string; dirName: string } | undefined {
  const parts = id.split(ID_SEPARATOR);
  if (parts.length !== 2) return undefined;
  const [serverDir, dirName] = parts;
  if (serverDir === undefined || dirName === undefined) return undefined;
  if (!isSafeSegment(serverDir) || !isSafeSegment(dirName)) return undefined;
  return { serverDir, dirName };
}

/** File name of a saved profile: `cpu.pb.gz` (gzip-compressed protobuf, as the server sends it). */
export function profileFileName(profile: string): string {
  return `${profile}.pb.gz`;
}
