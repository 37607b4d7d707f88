/**
 * The value types of the configuration, as zod schemas: each parses what YAML gives (after `${VAR}`
 * expansion) into the typed value, reports a problem in the daemon's own words, and carries the JSON Schema
 * of its input (`meta.json`), so that one definition gives both the validation and the published schema.
 * A problem is thrown as `Bad` inside a parser and becomes one zod issue (message, hint) at that value.
 */
import * as path from 'node:path';

import { z } from 'zod';

import { Secret } from '../secret.js';
import { formatDuration, formatSize, parseDuration, parseSize } from './duration.js';

/** A JSON Schema fragment (draft 2020-12). */
export type Json = Record<string, unknown>;

/** File access and positions the schema needs while parsing; `load.ts` gives the real ones. */
export interface SchemaContext {
  /** Directory of the configuration file: relative paths are resolved against it. */
  readonly dir: string;
  /** Contents of a secret file; throws (an fs-style error with `code`) when it cannot be read. */
  readFile(file: string): string;
  /** Why `file` cannot be used as a file (`no such file`, `is a directory`), or undefined when it can. */
  fileProblem(file: string): string | undefined;
  /** Whether the YAML has a value at `path` (`poll.timeout`); tells a written value from a default. */
  has(path: string): boolean;
  /** Line of the value at `path`. */
  line(path: string): number | undefined;
}

/** Issue params the loader reads: a hint, and where the problem points (`key`: at the key, not its value). */
export interface IssueParams {
  hint?: string;
  at?: 'key';
  /** This problem replaces every other one at the same path (`both password and password_file`). */
  only?: boolean;
}

export class Bad {
  constructor(
    readonly message: string,
    readonly hint?: string,
  ) {}
}

export function bad(message: string, hint?: string): never {
  throw new Bad(message, hint);
}

export type Ctx = z.RefinementCtx;

/** Reports a problem from a cross-field rule, at `path` below the value the rule is attached to. */
export function report(ctx: Ctx, path: (string | number)[], message: string, params: IssueParams = {}): void {
  ctx.addIssue({ code: 'custom', path, message, params: params as Record<string, unknown> });
}

/** A value that parsed (not missing, not failed). */
export function ok<T>(v: T): v is Exclude<T, undefined> {
  return v !== undefined && (v as unknown) !== z.NEVER && !(v instanceof Object && 'status' in v && v.status === 'aborted');
}

/** One configuration value: `parse` gives the typed value or throws `Bad`; `json` is its input's JSON Schema. */
export function field<T>(json: Json, parse: (v: unknown) => T) {
  const schema = z
    .unknown()
    .transform((v, ctx): T => {
      try {
        return parse(v);
      } catch (err) {
        if (!(err instanceof Bad)) throw err;
        const params: IssueParams = err.hint === undefined ? {} : { hint: err.hint };
        ctx.addIssue({ code: 'custom', message: err.message, input: v, params: params as Record<string, unknown> });
        return z.NEVER;
      }
    })
    .meta({ json });
  /** The same field, required: missing, it is a problem at the enclosing mapping with the hint `add <add>`. */
  const need = (add: string) => field(json, (v) => (v === undefined ? bad('missing required key', `add ${add}`) : parse(v)));
  return Object.assign(schema, { need });
}

// ---------------------------------------------------------------------------------------------------------
// Words

export function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Userinfo in a URL is a credential: never echo it. */
export function hideUserinfo(s: string): string {
  return s.replace(/\/\/[^/@?#]*@/, '//[redacted]@');
}

/** What a value is, for "expected X, got Y". Secret values are described by type only. */
export function describe(v: unknown, secret = false): string {
  if (Array.isArray(v)) return 'a list';
  if (v === null || v === undefined) return 'nothing';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return secret ? 'a string' : JSON.stringify(clip(hideUserinfo(v)));
  if (typeof v === 'number') return secret ? 'a number' : `the number ${v}`;
  return secret ? `a ${typeof v}` : String(v);
}

/** Optimal string alignment distance (a swap of two letters counts once), for "did you mean". */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 0; j <= b.length; j++) (d[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i++) {
    const row = d[i] as number[];
    const prev = d[i - 1] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        row[j] = Math.min(row[j] ?? 0, ((d[i - 2] as number[])[j - 2] ?? 0) + 1);
      }
    }
  }
  return (d[a.length] as number[])[b.length] ?? 0;
}

/** The allowed word closest to `word` when it is close enough to be a typo (or the same in another case style). */
export function closestMatch(word: string, allowed: readonly string[]): string | undefined {
  const squash = (s: string): string => s.toLowerCase().replace(/[-_]/g, '');
  const same = allowed.find((a) => squash(a) === squash(word));
  if (same !== undefined) return same;
  // "warning" for "warn", "information" for "info".
  const lower = word.toLowerCase();
  const prefix = allowed.find((a) => a.length >= 3 && lower.length >= 3 && (lower.startsWith(a) || a.startsWith(lower)));
  if (prefix !== undefined) return prefix;
  const limit = Math.max(1, Math.min(3, Math.floor(word.length / 3)));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const a of allowed) {
    const d = editDistance(lower, a);
    if (d <= limit && d < bestDistance) {
      best = a;
      bestDistance = d;
    }
  }
  return best;
}

/** A short reason for a failed file access (`no such file`), from the error's `code`. */
export function fsReason(err: unknown): string {
  const code = typeof err === 'object' && err !== null && 'code' in err ? (err as { code: unknown }).code : undefined;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    default:
      return err instanceof Error ? err.message : String(err);
  }
}

export function relativeHint(written: string): string | undefined {
  return path.isAbsolute(written) ? undefined : 'relative paths are resolved against the directory of the configuration file';
}

// ---------------------------------------------------------------------------------------------------------
// Value parsers (plain functions, shared by fields and by rules that depend on another key)

export interface Bounds {
  /** Exclusive lower bound ("must be more than"). */
  gt?: number;
  min?: number;
  max?: number;
}

export function bounded(n: number, b: Bounds, show: (n: number) => string): number {
  if (b.gt !== undefined && n <= b.gt) bad(`must be more than ${show(b.gt)}`);
  if (b.min !== undefined && b.max !== undefined && (n < b.min || n > b.max)) {
    bad(`must be between ${show(b.min)} and ${show(b.max)}, got ${show(n)}`);
  }
  if (b.min !== undefined && n < b.min) bad(b.min === 0 ? 'must be 0 or more' : `must be at least ${show(b.min)}, got ${show(n)}`);
  if (b.max !== undefined && n > b.max) bad(`must be at most ${show(b.max)}, got ${show(n)}`);
  return n;
}

export function wrong(v: unknown, expected: string, hint?: string, secret = false): never {
  return bad(`expected ${expected}, got ${describe(v, secret)}`, hint);
}

export function parseString(v: unknown, what = 'a string', opts: { secret?: boolean; allowEmpty?: boolean } = {}): string {
  if (typeof v !== 'string') {
    const hint = typeof v === 'number' || typeof v === 'boolean' ? 'put it in quotes to make it a string' : undefined;
    return wrong(v, what, hint, opts.secret);
  }
  if (v === '' && opts.allowEmpty !== true) bad('must not be empty');
  return v;
}

export function parseNumber(v: unknown, b: Bounds & { integer?: boolean } = {}): number {
  const what = b.integer === true ? 'an integer' : 'a number';
  let n: number | undefined;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v.trim())) n = Number(v.trim()); // "${VAR:-80}" expands to a string
  if (n === undefined || !Number.isFinite(n) || (b.integer === true && !Number.isInteger(n))) return wrong(v, what);
  return bounded(n, b, String);
}

export function parseSizeValue(v: unknown, b: Bounds = {}): number {
  if (typeof v !== 'string' && typeof v !== 'number') return wrong(v, 'a size like 4MiB');
  return bounded(rethrow(() => parseSize(v)), b, formatSize);
}

function rethrow<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    return bad((err as Error).message);
  }
}

export function parseChoice<T extends string>(v: unknown, what: string, allowed: readonly T[]): T {
  const s = parseString(v, `a ${what}`);
  if ((allowed as readonly string[]).includes(s)) return s as T;
  const close = closestMatch(s, allowed);
  return bad(`unknown ${what} ${JSON.stringify(clip(s))}`, close !== undefined ? `did you mean "${close}"?` : `use one of: ${allowed.join(', ')}`);
}

// ---------------------------------------------------------------------------------------------------------
// Fields

const ENV = { type: 'string', pattern: '\\$\\{' };
/** A value that may also be written as `${VAR}` (expanded before validation). */
const orEnv = (json: Json): Json => ({ anyOf: [json, ENV] });

const DURATION_PATTERN = '^\\s*(0|((\\d+(\\.\\d+)?|\\.\\d+)(ms|s|m|h|d))+)\\s*$|\\$\\{';
const SIZE_PATTERN = '^\\s*(\\d+(\\.\\d+)?|\\.\\d+) ?(B|KiB|MiB|GiB|TiB|KB|kB|MB|GB|TB)?\\s*$|\\$\\{';

export function str(what = 'a string', opts: { secret?: boolean; allowEmpty?: boolean } = {}) {
  return field({ type: 'string', ...(opts.allowEmpty === true ? {} : { minLength: 1 }) }, (v) => parseString(v, what, opts));
}

/** Milliseconds, written `250ms`, `5s`, `1m30s`, `7d` (or 0). */
export function duration(b: Bounds = {}) {
  return field({ anyOf: [{ const: 0 }, { type: 'string', pattern: DURATION_PATTERN }] }, (v): number => {
    let ms: number;
    if (typeof v === 'string') ms = rethrow(() => parseDuration(v));
    else if (v === 0) ms = 0;
    else if (typeof v === 'number') return wrong(v, 'a duration like 5s', `add a unit, e.g. ${v}ms or ${v}s`);
    else return wrong(v, 'a duration like 5s');
    return bounded(ms, b, formatDuration);
  });
}

/** Bytes, written as a number or `512KiB`, `4MiB`, `1MB`. */
export function size(b: Bounds = {}) {
  return field({ anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string', pattern: SIZE_PATTERN }] }, (v) => parseSizeValue(v, b));
}

export function num(b: Bounds & { integer?: boolean } = {}) {
  const json: Json = { type: b.integer === true ? 'integer' : 'number' };
  if (b.min !== undefined) json['minimum'] = b.min;
  if (b.gt !== undefined) json['exclusiveMinimum'] = b.gt;
  if (b.max !== undefined) json['maximum'] = b.max;
  return field(orEnv(json), (v) => parseNumber(v, b));
}

export function bool() {
  return field(orEnv({ type: 'boolean' }), (v): boolean => {
    if (typeof v === 'boolean') return v;
    if (v === 'true' || v === 'false') return v === 'true';
    return wrong(v, 'true or false');
  });
}

export function choice<const T extends string>(what: string, allowed: readonly T[]) {
  return field(orEnv({ enum: [...allowed] }), (v) => parseChoice(v, what, allowed));
}

/** A path as written, resolved against the configuration file's directory; `mustExist` checks it. */
export function filePath(c: SchemaContext, mustExist: boolean) {
  return field({ type: 'string', minLength: 1 }, (v): string => {
    const written = parseString(v, 'a file path');
    const resolved = path.resolve(c.dir, written);
    const problem = mustExist ? c.fileProblem(resolved) : undefined;
    if (problem !== undefined) bad(`cannot use ${resolved}: ${problem}`, relativeHint(written));
    return resolved;
  });
}

/** A secret written inline (often `${VAR}`). */
export function secret() {
  return field({ type: 'string', minLength: 1 }, (v) => new Secret(parseString(v, 'a string', { secret: true })));
}

/** Where each secret read from a `<key>_file` came from, so that `check` can show the file and not the secret. */
export const secretFiles = new WeakMap<Secret, string>();

/** A secret read from a file (trailing whitespace trimmed); `key` is the secret's own key, for the hint. */
export function secretFile(c: SchemaContext, key: string) {
  return field({ type: 'string', minLength: 1 }, (v): Secret => {
    const written = parseString(v, 'a file path');
    const file = path.resolve(c.dir, written);
    let content: string;
    try {
      content = c.readFile(file);
    } catch (err) {
      return bad(`cannot read ${file}: ${fsReason(err)}`, relativeHint(written));
    }
    const text = content.replace(/\s+$/, '');
    if (text === '') bad(`${file} is empty`, `write the ${key.replace(/_/g, ' ')} into it`);
    const s = new Secret(text);
    secretFiles.set(s, file);
    return s;
  });
}

/** A list (`key:` with nothing is an empty list). */
export function list<T extends z.ZodType>(item: T, what: string, hint?: string) {
  return z.array(item, { error: (iss) => (iss.code === 'invalid_type' ? { message: `expected ${what}, got ${describe(iss.input)}`, params: { hint } } : undefined) });
}

/** A mapping with fixed keys; an unknown key is a problem at that key, with a did-you-mean. */
export function section<T extends z.ZodRawShape>(shape: T, what = 'a mapping') {
  return z.strictObject(shape, {
    error: (iss) => (iss.code === 'invalid_type' ? `expected ${what}, got ${describe(iss.input)}` : undefined),
  });
}

/** Stands for a `__proto__` key of a free mapping while zod parses it (zod leaves that key out). */
export const PROTO_KEY = '\u0000__proto__';

/** A mapping's entries, with `PROTO_KEY` back to `__proto__`. */
export function entries<T>(m: Readonly<Record<string, T>>): [string, T][] {
  return Object.entries(m).map(([k, v]) => [k === PROTO_KEY ? '__proto__' : k, v]);
}

/** A mapping with free keys (header names, server names). */
export function mapping<T extends z.ZodType>(value: T, what: string, hint: string) {
  return z.record(z.string(), value, {
    error: (iss) => (iss.code === 'invalid_type' ? { message: `expected ${what}, got ${describe(iss.input)}`, params: { hint } } : undefined),
  });
}

/** `key` and `key_file` both given. */
export function secretRule(ctx: Ctx, v: Record<string, unknown>, key: string): void {
  if (v[key] !== undefined && v[`${key}_file`] !== undefined) {
    report(ctx, [`${key}_file`], `both ${key} and ${key}_file are set`, { hint: 'keep one of them', at: 'key', only: true });
  }
}

/** The secret from `key` or `key_file`, when it parsed. */
export function pickSecret(v: Record<string, unknown>, key: string): Secret | undefined {
  const s = v[key] ?? v[`${key}_file`];
  return s instanceof Secret ? s : undefined;
}
