/**
 * Durations (`250ms`, `1m30s`, `7d`) and sizes (`512KiB`, `2GiB`, `1MB`) as users write them in the
 * configuration, and back. Pure: no I/O. Errors are plain `Error`s whose message the config loader
 * shows next to the YAML path and line.
 */

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const DURATION_USAGE = 'use a number with a unit: 250ms, 5s, 10m, 1h, 7d';
const DURATION_PART = /(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h|d)/y;

/** Milliseconds in `text` (`250ms`, `5s`, `10m`, `1h`, `7d`, `1m30s`, `1.5s`; `0` and `0s` are 0). */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === '0') return 0;
  if (s.startsWith('-')) throw new Error(`"${text}" is negative; a duration must be 0 or more`);
  if (s === '') throw new Error(`"${text}" is not a duration; ${DURATION_USAGE}`);
  if (/^\d+(\.\d+)?$/.test(s)) throw new Error(`"${text}" has no unit; ${DURATION_USAGE}`);
  let total = 0;
  let at = 0;
  while (at < s.length) {
    DURATION_PART.lastIndex = at;
    const m = DURATION_PART.exec(s);
    const unit = m?.[2] === undefined ? undefined : DURATION_UNITS[m[2]];
    if (m === null || unit === undefined) throw new Error(`"${text}" is not a duration; ${DURATION_USAGE}`);
    total += Number(m[1]) * unit;
    at = DURATION_PART.lastIndex;
  }
  const ms = Math.round(total);
  // 1.1s is 1100.0000000000002 in floating point: accept that, but not a fraction of a millisecond.
  if (Math.abs(total - ms) > 1e-6 * Math.max(1, total)) {
    throw new Error(`"${text}" is not a whole number of milliseconds`);
  }
  if (!Number.isSafeInteger(ms)) throw new Error(`"${text}" is too long a duration`);
  return ms;
}

/** Shortest exact form: `5s`, `1m30s`, `1500ms`, `0s`, `14d`. Whole seconds use d/h/m/s, otherwise ms. */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new Error(`${ms} is not a duration in milliseconds`);
  if (ms === 0) return '0s';
  if (ms % 1000 !== 0) return `${ms}ms`;
  let rest = ms;
  let out = '';
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = DURATION_UNITS[unit] ?? 1;
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out;
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
  KB: 1000,
  kB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
  TB: 1000 ** 4,
};

/** Tried largest first, binary before decimal at the same size, by `formatSize`. */
const FORMAT_SIZE_UNITS = ['TiB', 'TB', 'GiB', 'GB', 'MiB', 'MB', 'KiB', 'KB'] as const;

const SIZE_USAGE = 'use a number of bytes or a number with a unit: 512KiB, 4MiB, 2GiB, 1MB';

/** Bytes in `text`: a plain integer, or a number with B, KiB/MiB/GiB/TiB (1024-based) or KB/MB/GB/TB (1000-based). */
export function parseSize(text: string | number): number {
  if (typeof text === 'number') {
    if (!Number.isFinite(text)) throw new Error(`${text} is not a size; ${SIZE_USAGE}`);
    if (text < 0) throw new Error(`${text} is negative; a size must be 0 or more`);
    return wholeBytes(text, String(text));
  }
  const s = text.trim();
  if (s.startsWith('-')) throw new Error(`"${text}" is negative; a size must be 0 or more`);
  const m = /^(\d+(?:\.\d+)?|\.\d+) ?([A-Za-z]*)$/.exec(s);
  if (m === null || m[1] === undefined) throw new Error(`"${text}" is not a size; ${SIZE_USAGE}`);
  const unit = m[2] ?? '';
  const factor = unit === '' ? 1 : SIZE_UNITS[unit];
  if (factor === undefined) {
    throw new Error(`"${text}" has an unknown unit "${unit}"; use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB`);
  }
  return wholeBytes(Number(m[1]) * factor, `"${text}"`);
}

function wholeBytes(value: number, shown: string): number {
  const bytes = Math.round(value);
  if (Math.abs(value - bytes) > 1e-6 * Math.max(1, value)) throw new Error(`${shown} is not a whole number of bytes`);
  if (!Number.isSafeInteger(bytes)) throw new Error(`${shown} is too large a size`);
  return bytes;
}

/** Shortest exact form: `2GiB`, `1MB`, `4MiB`; a plain integer when no unit divides it (or is shorter). */
export function formatSize(bytes: number): string {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw new Error(`${bytes} is not a size in bytes`);
  let best = String(bytes);
  if (bytes === 0) return best;
  for (const unit of FORMAT_SIZE_UNITS) {
    const factor = SIZE_UNITS[unit] ?? 1;
    if (bytes % factor !== 0) continue;
    const candidate = `${bytes / factor}${unit}`;
    // Shorter wins; on a tie a unit beats the plain number (1KiB over 1024), a larger unit beats a smaller.
    if (candidate.length < best.length || (candidate.length === best.length && best === String(bytes))) {
      best = candidate;
    }
  }
  return best;
}
