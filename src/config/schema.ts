/**
 * The configuration schema: defaults (the one place they live), the keys each section allows, and the
 * validation that turns a parsed YAML tree into a typed `Config` while collecting every problem with its
 * YAML path and position. It works on `ConfigNode`, a small tree that `load.ts` builds from the YAML
 * document, so this module needs neither `yaml` nor the file system (file access comes in as `SchemaIo`).
 */
import * as path from 'node:path';

import type { ConfigProblem } from '../errors.js';
import { Secret } from '../secret.js';
import { formatDuration, formatSize, parseDuration, parseSize } from './duration.js';
import { CAPTURE_VIAS, LOG_LEVELS, PROFILE_NAMES, TRIGGER_METRICS } from './types.js';
import type {
  AlertsConfig,
  CaptureConfig,
  CaptureVia,
  Config,
  HttpAuthConfig,
  HttpTlsConfig,
  LogLevel,
  ProfileName,
  Selector,
  ServerConfig,
  StorageConfig,
  SystemAccountConfig,
  TlsConfig,
  TriggerConfig,
  TriggerMetric,
} from './types.js';

// ---------------------------------------------------------------------------------------------------------
// Defaults and limits

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Every default, in the units `Config` uses. `config/example.yaml` documents the same values. */
export const DEFAULTS = {
  log: { level: 'info' as LogLevel },
  http: { listen: '0.0.0.0:9745', auth: { metrics: false } },
  poll: { intervalMs: 5 * SECOND, timeoutMs: 2 * SECOND, maxBodyBytes: 4 * MiB },
  shutdownTimeoutMs: 20 * SECOND,
  systemAccount: { timeoutMs: 5 * SECOND, discover: false, stallMs: 250, forgetAfterMs: 5 * MINUTE },
  trigger: { forMs: 0, cooldownMs: 10 * MINUTE, profiles: ['cpu', 'allocs'] as readonly ProfileName[] },
  capture: {
    via: 'auto' as CaptureVia,
    cpuDurationMs: 5 * SECOND,
    timeoutMs: 10 * SECOND,
    maxConcurrent: 4,
    limit: { count: 12, windowMs: HOUR },
    maxProfileBytes: 64 * MiB,
  },
  storage: {
    dir: './profiles',
    retention: { maxIncidentsPerServer: 50, maxTotalSizeBytes: 2 * GiB, maxAgeMs: 14 * DAY, intervalMs: 10 * MINUTE },
  },
  alerts: {
    labels: ['server_name', 'server', 'instance'] as readonly string[],
    profiles: ['cpu', 'allocs'] as readonly ProfileName[],
    cooldownMs: 10 * MINUTE,
  },
} as const;

/** The server answers PROFILEZ CPU requests only for `0 < duration <= 15s`. */
export const PROFILEZ_MAX_CPU_MS = 15 * SECOND;
/** Durations used as timers stay below Node's setTimeout limit (2^31-1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 24 * DAY;
/** A secret file larger than this is certainly the wrong file. */
export const MAX_SECRET_FILE_BYTES = 64 * KiB;

/** The keys each YAML mapping allows, by its schema location (`servers[]` is any item of `servers`). */
export const KEYS = {
  '': ['log', 'http', 'poll', 'shutdown_timeout', 'servers', 'system_account', 'triggers', 'alerts', 'capture', 'storage'],
  log: ['level'],
  http: ['listen', 'auth', 'tls'],
  'http.auth': ['bearer_token', 'bearer_token_file', 'metrics'],
  'http.tls': ['cert', 'key'],
  poll: ['interval', 'timeout', 'max_body_size'],
  'servers[]': ['url', 'name', 'prof_url', 'headers', 'basic_auth', 'bearer_token', 'bearer_token_file', 'tls'],
  'servers[].basic_auth': ['username', 'password', 'password_file'],
  tls: ['ca', 'cert', 'key', 'insecure'],
  system_account: [
    'url',
    'user',
    'password',
    'password_file',
    'token',
    'token_file',
    'creds',
    'nkey_seed',
    'nkey_seed_file',
    'tls',
    'timeout',
    'discover',
    'select',
    'stall',
    'forget_after',
    'prof_urls',
  ],
  'system_account.select': ['names', 'clusters', 'tags'],
  'triggers[]': ['name', 'metric', 'above', 'for', 'rearm_below', 'cooldown', 'profiles', 'servers'],
  alerts: ['labels', 'profiles', 'cooldown'],
  capture: ['via', 'cpu_duration', 'timeout', 'max_concurrent', 'limit', 'max_profile_size'],
  'capture.limit': ['count', 'window'],
  storage: ['dir', 'retention'],
  'storage.retention': ['max_incidents_per_server', 'max_total_size', 'max_age', 'interval'],
} as const satisfies Record<string, readonly string[]>;

// ---------------------------------------------------------------------------------------------------------
// The tree validated here

/** 1-based line and column in the configuration file. */
export interface Position {
  readonly line: number;
  readonly column: number;
}

interface NodeBase {
  /** YAML path such as `servers[1].url`; empty for the document root. */
  readonly path: string;
  readonly pos: Position | undefined;
}
export interface MapNode extends NodeBase {
  readonly kind: 'map';
  readonly entries: readonly MapEntry[];
}
export interface MapEntry {
  readonly key: string;
  readonly keyPos: Position | undefined;
  readonly value: ConfigNode;
}
export interface SeqNode extends NodeBase {
  readonly kind: 'seq';
  readonly items: readonly ConfigNode[];
}
export interface ScalarNode extends NodeBase {
  readonly kind: 'scalar';
  readonly value: string | number | boolean | null;
  /** A problem was already reported for this value (an unset environment variable): say nothing more. */
  readonly broken: boolean;
}
/** A YAML value after alias resolution and environment expansion, with where it came from. */
export type ConfigNode = MapNode | SeqNode | ScalarNode;

/** File access the schema needs; `load.ts` gives the real one, tests may give a fake `readFile`. */
export interface SchemaIo {
  /** Contents of a secret file; throws (an fs-style error with `code`) when it cannot be read. */
  readFile(file: string): string;
  /** Why `file` cannot be used as a file (`no such file`, `is a directory`), or undefined when it can. */
  fileProblem(file: string): string | undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Small helpers

export function joinPath(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`;
}

/** Levenshtein distance, for "did you mean". */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
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
    const d = editDistance(word.toLowerCase(), a);
    if (d <= limit && d < bestDistance) {
      best = a;
      bestDistance = d;
    }
  }
  return best;
}

function choiceHint(value: string, allowed: readonly string[]): string {
  const close = closestMatch(value, allowed);
  return close !== undefined ? `did you mean "${close}"?` : `use one of: ${allowed.join(', ')}`;
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Userinfo in a URL is a credential: never echo it. */
function hideUserinfo(s: string): string {
  return s.replace(/\/\/[^/@?#]*@/, '//[redacted]@');
}

/** What a node is, for "expected X, got Y". Secret values are described by type only. */
function describe(node: ConfigNode, secret = false): string {
  if (node.kind === 'map') return 'a mapping';
  if (node.kind === 'seq') return 'a list';
  const v = node.value;
  if (v === null) return 'nothing';
  if (typeof v === 'string') return secret ? 'a string' : JSON.stringify(clip(hideUserinfo(v)));
  if (typeof v === 'number') return secret ? 'a number' : `the number ${v}`;
  return secret ? 'a boolean' : String(v);
}

function isNull(node: ConfigNode | undefined): boolean {
  return node !== undefined && node.kind === 'scalar' && node.value === null;
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

// ---------------------------------------------------------------------------------------------------------
// Problem collection and typed readers

class Problems {
  readonly list: ConfigProblem[] = [];

  add(where: string, pos: Position | undefined, message: string, hint?: string): void {
    const problem: ConfigProblem = { path: where, message };
    if (pos !== undefined) {
      problem.line = pos.line;
      problem.column = pos.column;
    }
    if (hint !== undefined) problem.hint = hint;
    this.list.push(problem);
  }

  at(node: { path: string; pos: Position | undefined }, message: string, hint?: string): void {
    this.add(node.path, node.pos, message, hint);
  }
}

/** A mapping's entries by key, after unknown keys were reported. `state` says whether it was there at all. */
class Fields {
  constructor(
    readonly state: 'present' | 'absent' | 'invalid',
    readonly path: string,
    readonly pos: Position | undefined,
    private readonly entries: ReadonlyMap<string, MapEntry> = new Map(),
  ) {}
  get present(): boolean {
    return this.state === 'present';
  }
  get(key: string): ConfigNode | undefined {
    return this.entries.get(key)?.value;
  }
  has(key: string): boolean {
    return this.entries.has(key);
  }
  keyPos(key: string): Position | undefined {
    return this.entries.get(key)?.keyPos ?? this.pos;
  }
  child(key: string): string {
    return joinPath(this.path, key);
  }
}

interface Bounds {
  /** Exclusive lower bound ("must be more than"). */
  gt?: number;
  min?: number;
  max?: number;
}

class Reader {
  readonly problems = new Problems();
  constructor(
    readonly io: SchemaIo,
    /** Directory of the configuration file: relative paths are resolved against it. */
    readonly dir: string,
  ) {}

  /**
   * A mapping with the allowed `keys`. A missing or empty (`key:` with nothing) mapping is `absent`; a value
   * of another type is reported and `invalid`. Unknown keys are reported at the key.
   */
  section(node: ConfigNode | undefined, where: string, keys: readonly string[], what = 'a mapping'): Fields {
    if (node === undefined || isNull(node)) return new Fields('absent', where, node?.pos);
    if (node.kind !== 'map') {
      if (node.kind !== 'scalar' || !node.broken) this.problems.at(node, `expected ${what}, got ${describe(node)}`);
      return new Fields('invalid', where, node.pos);
    }
    const entries = new Map<string, MapEntry>();
    for (const entry of node.entries) {
      if (!keys.includes(entry.key)) {
        const close = closestMatch(entry.key, keys);
        this.problems.add(
          joinPath(where, entry.key),
          entry.keyPos,
          'unknown key',
          close !== undefined ? `did you mean "${close}"?` : `allowed keys here: ${keys.join(', ')}`,
        );
        continue;
      }
      entries.set(entry.key, entry);
    }
    return new Fields('present', where, node.pos, entries);
  }

  /** A list; a missing or empty value is `[]`. Undefined when it is something else (reported). */
  list(node: ConfigNode | undefined, what: string, hint?: string): readonly ConfigNode[] | undefined {
    if (node === undefined || isNull(node)) return [];
    if (node.kind !== 'seq') {
      if (node.kind !== 'scalar' || !node.broken) this.problems.at(node, `expected ${what}, got ${describe(node)}`, hint);
      return undefined;
    }
    return node.items;
  }

  /** Reports a value of the wrong type unless it is already reported (broken). */
  wrong(node: ConfigNode, expected: string, hint?: string, secret = false): undefined {
    if (node.kind === 'scalar' && node.broken) return undefined;
    this.problems.at(node, `expected ${expected}, got ${describe(node, secret)}`, hint);
    return undefined;
  }

  string(node: ConfigNode, what = 'a string', opts: { secret?: boolean; allowEmpty?: boolean } = {}): string | undefined {
    if (node.kind !== 'scalar' || typeof node.value !== 'string') {
      const hint =
        node.kind === 'scalar' && (typeof node.value === 'number' || typeof node.value === 'boolean')
          ? 'put it in quotes to make it a string'
          : undefined;
      return this.wrong(node, what, hint, opts.secret);
    }
    if (node.broken) return undefined;
    if (node.value === '' && opts.allowEmpty !== true) {
      this.problems.at(node, 'must not be empty');
      return undefined;
    }
    return node.value;
  }

  duration(node: ConfigNode, bounds: Bounds = {}): number | undefined {
    let ms: number;
    if (node.kind === 'scalar' && typeof node.value === 'string' && !node.broken) {
      try {
        ms = parseDuration(node.value);
      } catch (err) {
        this.problems.at(node, (err as Error).message);
        return undefined;
      }
    } else if (node.kind === 'scalar' && node.value === 0) {
      ms = 0;
    } else if (node.kind === 'scalar' && typeof node.value === 'number') {
      return this.wrong(node, 'a duration like 5s', `add a unit, e.g. ${node.value}ms or ${node.value}s`);
    } else {
      return this.wrong(node, 'a duration like 5s');
    }
    return this.bounded(node, ms, bounds, formatDuration) ? ms : undefined;
  }

  size(node: ConfigNode, bounds: Bounds = {}): number | undefined {
    let bytes: number;
    if (node.kind === 'scalar' && (typeof node.value === 'string' || typeof node.value === 'number') && !node.broken) {
      try {
        bytes = parseSize(node.value);
      } catch (err) {
        this.problems.at(node, (err as Error).message);
        return undefined;
      }
    } else {
      return this.wrong(node, 'a size like 4MiB');
    }
    return this.bounded(node, bytes, bounds, formatSize) ? bytes : undefined;
  }

  number(node: ConfigNode, bounds: Bounds & { integer?: boolean } = {}): number | undefined {
    const what = bounds.integer === true ? 'an integer' : 'a number';
    let n: number | undefined;
    if (node.kind === 'scalar' && typeof node.value === 'number') n = node.value;
    else if (node.kind === 'scalar' && typeof node.value === 'string' && /^-?\d+(\.\d+)?$/.test(node.value.trim())) {
      n = Number(node.value.trim()); // "${VAR:-80}" expands to a string
    }
    if (n === undefined || !Number.isFinite(n)) return this.wrong(node, what);
    if (bounds.integer === true && !Number.isInteger(n)) return this.wrong(node, what);
    return this.bounded(node, n, bounds, String) ? n : undefined;
  }

  boolean(node: ConfigNode): boolean | undefined {
    if (node.kind === 'scalar' && typeof node.value === 'boolean') return node.value;
    if (node.kind === 'scalar' && (node.value === 'true' || node.value === 'false')) return node.value === 'true';
    return this.wrong(node, 'true or false');
  }

  choice<T extends string>(node: ConfigNode, what: string, allowed: readonly T[]): T | undefined {
    const s = this.string(node, `a ${what}`);
    if (s === undefined) return undefined;
    if ((allowed as readonly string[]).includes(s)) return s as T;
    this.problems.at(node, `unknown ${what} ${JSON.stringify(clip(s))}`, choiceHint(s, allowed));
    return undefined;
  }

  private bounded(node: ConfigNode, n: number, b: Bounds, show: (n: number) => string): boolean {
    if (b.gt !== undefined && n <= b.gt) {
      this.problems.at(node, `must be more than ${show(b.gt)}`);
      return false;
    }
    if (b.min !== undefined && b.max !== undefined && (n < b.min || n > b.max)) {
      this.problems.at(node, `must be between ${show(b.min)} and ${show(b.max)}, got ${show(n)}`);
      return false;
    }
    if (b.min !== undefined && n < b.min) {
      this.problems.at(node, b.min === 0 ? 'must be 0 or more' : `must be at least ${show(b.min)}, got ${show(n)}`);
      return false;
    }
    if (b.max !== undefined && n > b.max) {
      this.problems.at(node, `must be at most ${show(b.max)}, got ${show(n)}`);
      return false;
    }
    return true;
  }

  /** `fields[key]` read with `parse`, or `fallback` when absent. Undefined only when it was invalid. */
  opt<T>(fields: Fields, key: string, parse: (node: ConfigNode) => T | undefined, fallback: T): T | undefined {
    const node = fields.get(key);
    return node === undefined ? fallback : parse(node);
  }

  /** A key that must be there: reported at the enclosing mapping when it is not. */
  required(fields: Fields, key: string, what: string): ConfigNode | undefined {
    const node = fields.get(key);
    if (node === undefined && fields.present) {
      this.problems.add(fields.child(key), fields.pos, `missing required key`, `add ${key}: ${what}`);
    }
    return node;
  }

  /** A path as written, resolved against the configuration file's directory. */
  filePath(node: ConfigNode, mustExist: boolean): string | undefined {
    const written = this.string(node, 'a file path');
    if (written === undefined) return undefined;
    const resolved = path.resolve(this.dir, written);
    if (mustExist) {
      const problem = this.io.fileProblem(resolved);
      if (problem !== undefined) {
        this.problems.at(node, `cannot use ${resolved}: ${problem}`, relativeHint(written));
        return undefined;
      }
    }
    return resolved;
  }

  /**
   * A secret given as `key: value` or `key_file: path` (whose content, trailing whitespace trimmed, is the
   * secret). `given` is true when either form is there, even if it was invalid.
   */
  secret(fields: Fields, key: string): { value: Secret | undefined; given: boolean } {
    const inline = fields.get(key);
    const fileKey = `${key}_file`;
    const fileNode = fields.get(fileKey);
    if (inline !== undefined && fileNode !== undefined) {
      this.problems.add(fields.child(fileKey), fields.keyPos(fileKey), `both ${key} and ${fileKey} are set`, 'keep one of them');
      return { value: undefined, given: true };
    }
    if (inline !== undefined) {
      const text = this.string(inline, 'a string', { secret: true });
      return { value: text === undefined ? undefined : new Secret(text), given: true };
    }
    if (fileNode === undefined) return { value: undefined, given: false };
    const file = this.filePath(fileNode, false);
    if (file === undefined) return { value: undefined, given: true };
    let content: string;
    try {
      content = this.io.readFile(file);
    } catch (err) {
      const written = fileNode.kind === 'scalar' ? String(fileNode.value) : '';
      this.problems.at(fileNode, `cannot read ${file}: ${fsReason(err)}`, relativeHint(written));
      return { value: undefined, given: true };
    }
    const secret = content.replace(/\s+$/, '');
    if (secret === '') {
      this.problems.at(fileNode, `${file} is empty`, `write the ${key.replace(/_/g, ' ')} into it`);
      return { value: undefined, given: true };
    }
    return { value: new Secret(secret), given: true };
  }
}

function relativeHint(written: string): string | undefined {
  return path.isAbsolute(written) ? undefined : 'relative paths are resolved against the directory of the configuration file';
}

// ---------------------------------------------------------------------------------------------------------
// Sections

/** A server name: configured under servers[].name, or a discovered server's server_name. */
const SERVER_NAME = /^[A-Za-z0-9._-]+$/;
const SERVER_NAME_HINT = 'use letters, digits, ".", "_" and "-" only';

function readListen(r: Reader, node: ConfigNode): { listen: string; host: string; port: number } | undefined {
  const usage = 'write host:port, [ipv6]:port or :port, e.g. 0.0.0.0:9745';
  if (node.kind === 'scalar' && typeof node.value === 'number') {
    r.problems.at(node, `expected host:port, got the number ${node.value}`, `write ":${node.value}" to listen on every address`);
    return undefined;
  }
  const text = r.string(node, 'host:port');
  if (text === undefined) return undefined;
  const m = /^(?:\[([0-9A-Fa-f:.]+(?:%[\w.-]+)?)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(text);
  if (m === null) {
    const hint = (text.match(/:/g)?.length ?? 0) > 1 && !text.startsWith('[') ? 'put an IPv6 address in brackets: [::1]:9745' : usage;
    r.problems.at(node, `${JSON.stringify(clip(text))} is not a listen address`, hint);
    return undefined;
  }
  const port = Number(m[3]);
  if (port > 65535) {
    r.problems.at(node, `port ${port} is out of range`, 'use a port from 0 to 65535');
    return undefined;
  }
  const v6 = m[1];
  const host = v6 ?? (m[2] === '' || m[2] === undefined ? '0.0.0.0' : m[2]);
  return { listen: v6 !== undefined ? `[${v6}]:${port}` : `${host}:${port}`, host, port };
}

function readHttpAuth(r: Reader, node: ConfigNode | undefined): HttpAuthConfig {
  const f = r.section(node, 'http.auth', KEYS['http.auth'], 'a mapping like { bearer_token_file: /run/secrets/token }');
  const bearer = r.secret(f, 'bearer_token');
  const metrics = r.opt(f, 'metrics', (n) => r.boolean(n), DEFAULTS.http.auth.metrics);
  const metricsNode = f.get('metrics');
  if (metrics === true && !bearer.given && metricsNode !== undefined) {
    r.problems.at(metricsNode, 'true needs a bearer token, and none is set', 'set bearer_token or bearer_token_file');
  }
  return { bearerToken: bearer.value, metrics: metrics ?? DEFAULTS.http.auth.metrics };
}

/** The listener's own certificate: both files are needed, and they must exist. */
function readHttpTls(r: Reader, node: ConfigNode | undefined): HttpTlsConfig | undefined {
  const f = r.section(node, 'http.tls', KEYS['http.tls'], 'a mapping like { cert: server.pem, key: server-key.pem }');
  if (!f.present) return undefined;
  const certNode = r.required(f, 'cert', 'server.pem');
  const keyNode = r.required(f, 'key', 'server-key.pem');
  const cert = certNode === undefined ? undefined : r.filePath(certNode, true);
  const key = keyNode === undefined ? undefined : r.filePath(keyNode, true);
  return cert === undefined || key === undefined ? undefined : { cert, key };
}

/** An http(s) URL without query, fragment or credentials, normalised without a trailing slash. */
function readHttpUrl(r: Reader, node: ConfigNode, example: string): string | undefined {
  const text = r.string(node, `a URL like ${example}`);
  if (text === undefined) return undefined;
  const shown = JSON.stringify(clip(hideUserinfo(text)));
  let url: URL;
  try {
    if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text)) throw new Error('no scheme');
    url = new URL(text);
  } catch {
    r.problems.at(node, `${shown} is not a URL`, `write it like ${example}`);
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    const scheme = url.protocol.slice(0, -1);
    const hint = ['nats', 'tls', 'ws', 'wss'].includes(scheme)
      ? `this endpoint speaks HTTP, e.g. ${example}; ${scheme}:// URLs belong in system_account.url`
      : `write it like ${example}`;
    r.problems.at(node, `scheme "${scheme}" is not supported here; use http or https`, hint);
    return undefined;
  }
  if (url.username !== '' || url.password !== '') {
    r.problems.at(node, 'must not contain a user name or password', 'use basic_auth (with password_file) instead');
    return undefined;
  }
  if (text.includes('?') || text.includes('#')) {
    r.problems.at(node, `${shown} must not have a query or fragment`, 'remove the part from ? or #');
    return undefined;
  }
  return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
}

function readTls(r: Reader, node: ConfigNode | undefined, where: string): TlsConfig | undefined {
  const f = r.section(node, where, KEYS.tls, 'a mapping like { ca: ca.pem, insecure: false }');
  if (!f.present) return undefined;
  const file = (key: string): string | undefined => {
    const n = f.get(key);
    return n === undefined ? undefined : r.filePath(n, true);
  };
  const ca = file('ca');
  const cert = file('cert');
  const key = file('key');
  const insecure = r.opt(f, 'insecure', (n) => r.boolean(n), false) ?? false;
  if (f.has('cert') !== f.has('key')) {
    const [have, lack] = f.has('cert') ? ['cert', 'key'] : ['key', 'cert'];
    r.problems.add(f.child(lack), f.pos, `${have} is set but ${lack} is not`, 'give both cert and key (a client certificate), or neither');
  }
  return { ca, cert, key, insecure };
}

interface ServerDraft {
  /** Undefined when the server has a problem; its name still counts for uniqueness and trigger references. */
  readonly config: ServerConfig | undefined;
  readonly name: string | undefined;
  readonly url: string | undefined;
  readonly profUrl: string | undefined;
  readonly node: ConfigNode;
  readonly nameNode: ConfigNode | undefined;
  readonly urlNode: ConfigNode | undefined;
}

function readServer(r: Reader, node: ConfigNode): ServerDraft | undefined {
  const f = r.section(node, node.path, KEYS['servers[]'], 'a server mapping like { url: http://127.0.0.1:8222 }');
  if (!f.present) {
    if (f.state === 'absent') r.problems.at(node, 'expected a server mapping like { url: http://127.0.0.1:8222 }, got nothing');
    return undefined;
  }
  const urlNode = r.required(f, 'url', 'http://127.0.0.1:8222');
  const url = urlNode === undefined ? undefined : readHttpUrl(r, urlNode, 'http://127.0.0.1:8222');
  const nameNode = f.get('name');
  let name: string | undefined;
  if (nameNode !== undefined) {
    name = r.string(nameNode, 'a name');
    if (name !== undefined && !SERVER_NAME.test(name)) {
      r.problems.at(nameNode, `${JSON.stringify(clip(name))} is not a valid server name`, SERVER_NAME_HINT);
      name = undefined;
    }
  }
  const profNode = f.get('prof_url');
  const profUrl = profNode === undefined ? undefined : readHttpUrl(r, profNode, 'http://127.0.0.1:65432');

  // Every header name is allowed, so this is not a `section` with known keys.
  const headers: [string, Secret][] = [];
  const headersNode = f.get('headers');
  if (headersNode !== undefined && !isNull(headersNode) && headersNode.kind !== 'map') {
    r.wrong(headersNode, 'a mapping of header names to values', 'write headers: { X-Scope: abc }');
  }
  if (headersNode?.kind === 'map') {
    for (const entry of headersNode.entries) {
      const where = joinPath(f.child('headers'), entry.key);
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(entry.key)) {
        r.problems.add(where, entry.keyPos, `${JSON.stringify(clip(entry.key))} is not a valid HTTP header name`);
        continue;
      }
      const value = r.string(entry.value, 'a string', { secret: true, allowEmpty: true });
      if (value === undefined) continue;
      if (/[\r\n\0]/.test(value)) {
        r.problems.at(entry.value, 'a header value must not contain line breaks');
        continue;
      }
      headers.push([entry.key, new Secret(value)]);
    }
  }

  let basicAuth: ServerConfig['basicAuth'];
  const bf = r.section(f.get('basic_auth'), f.child('basic_auth'), KEYS['servers[].basic_auth']);
  if (bf.present) {
    const userNode = r.required(bf, 'username', 'the user name');
    const username = userNode === undefined ? undefined : r.string(userNode, 'a user name');
    const password = r.secret(bf, 'password');
    if (!password.given) {
      r.problems.add(bf.child('password'), bf.pos, 'missing required key', 'add password: or password_file:');
    }
    if (username !== undefined && password.value !== undefined) basicAuth = { username, password: password.value };
  }
  const bearer = r.secret(f, 'bearer_token');
  if (bearer.given && bf.state !== 'absent') {
    const key = f.has('bearer_token') ? 'bearer_token' : 'bearer_token_file';
    r.problems.add(
      f.child(key),
      f.keyPos(key),
      'bearer_token and basic_auth are both set',
      'a request carries one Authorization header: keep one of them',
    );
  }
  const tls = readTls(r, f.get('tls'), f.child('tls'));
  return {
    config:
      url === undefined
        ? undefined
        : { url, name, profUrl, headers: Object.fromEntries(headers), basicAuth, bearerToken: bearer.value, tls },
    name,
    url,
    profUrl,
    node,
    nameNode: name === undefined ? undefined : nameNode,
    urlNode,
  };
}

function readServers(r: Reader, node: ConfigNode | undefined): ServerDraft[] {
  const items = r.list(node, 'a list of servers', 'start each server with "- url: http://host:8222"');
  const drafts: ServerDraft[] = [];
  const byName = new Map<string, ServerDraft>();
  const byUrl = new Map<string, ServerDraft>();
  for (const item of items ?? []) {
    const draft = readServer(r, item);
    if (draft === undefined) continue;
    drafts.push(draft);
    const { name, url } = draft;
    if (name !== undefined && draft.nameNode !== undefined) {
      const first = byName.get(name);
      if (first !== undefined) {
        const line = first.nameNode?.pos?.line ?? '?';
        r.problems.at(draft.nameNode, `duplicate server name "${name}"`, `${first.node.path} on line ${line} has it already; names must be unique`);
      } else {
        byName.set(name, draft);
      }
    }
    if (url !== undefined && draft.urlNode !== undefined) {
      const first = byUrl.get(url);
      if (first !== undefined) {
        const line = first.urlNode?.pos?.line ?? '?';
        r.problems.at(draft.urlNode, `duplicate server url ${url}`, `${first.node.path} on line ${line} watches it already`);
      } else {
        byUrl.set(url, draft);
      }
    }
  }
  return drafts;
}

function readNatsUrl(r: Reader, node: ConfigNode): string | undefined {
  const example = 'nats://127.0.0.1:4222';
  const text = r.string(node, `a URL like ${example}`);
  if (text === undefined) return undefined;
  if (text.includes(',')) {
    r.problems.at(node, 'one URL per entry', `write a list: url: [${example}, nats://127.0.0.2:4222]`);
    return undefined;
  }
  let url: URL;
  try {
    if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]/.test(text)) throw new Error('no scheme');
    url = new URL(text);
  } catch {
    r.problems.at(node, `${JSON.stringify(clip(hideUserinfo(text)))} is not a URL`, `write it like ${example}`);
    return undefined;
  }
  const scheme = url.protocol.slice(0, -1);
  if (!['nats', 'tls', 'ws', 'wss'].includes(scheme)) {
    r.problems.at(node, `scheme "${scheme}" is not supported here; use nats, tls, ws or wss`, `write it like ${example}`);
    return undefined;
  }
  if (url.username !== '' || url.password !== '') {
    r.problems.at(node, 'must not contain a user name or password', 'use user with password_file, token_file, creds or nkey_seed_file');
    return undefined;
  }
  return text;
}

/** A list of non-empty strings; invalid items (`valid` may report more) are reported and left out. */
function readStrings(
  r: Reader,
  node: ConfigNode | undefined,
  what: string,
  hint: string,
  valid: (item: ConfigNode, s: string) => boolean = () => true,
): string[] {
  const out: string[] = [];
  for (const item of r.list(node, `a list of ${what}s`, hint) ?? []) {
    const s = r.string(item, `a ${what}`);
    if (s !== undefined && valid(item, s)) out.push(s);
  }
  return out;
}

function readSelector(r: Reader, node: ConfigNode | undefined): Selector {
  const f = r.section(node, 'system_account.select', KEYS['system_account.select'], 'a mapping like { names: [nats-*], clusters: [east] }');
  const names = readStrings(r, f.get('names'), 'server name', 'write names: [nats-a, nats-east-*]', (item, name) => {
    if (/^[A-Za-z0-9._*?-]+$/.test(name)) return true;
    r.problems.at(
      item,
      `${JSON.stringify(clip(name))} is not a valid server name or pattern`,
      'use letters, digits, ".", "_", "-" and the wildcards * and ?',
    );
    return false;
  });
  const clusters = readStrings(r, f.get('clusters'), 'cluster name', 'write clusters: [east]');
  // Tags compare case-insensitively (types.ts: Selector.tags); store them in one case.
  const tags = readStrings(r, f.get('tags'), 'tag', 'write tags: ["az:eu-1"]').map((t) => t.toLowerCase());
  return { names, clusters, tags };
}

/** prof_port base URLs of discovered servers, keyed by server name. */
function readProfUrls(r: Reader, node: ConfigNode | undefined): Record<string, string> {
  if (node === undefined || isNull(node)) return {};
  if (node.kind !== 'map') {
    r.wrong(node, 'a mapping of server names to prof_port URLs', 'write prof_urls: { nats-a: "http://127.0.0.1:65432" }');
    return {};
  }
  const urls: [string, string][] = [];
  for (const entry of node.entries) {
    if (!SERVER_NAME.test(entry.key)) {
      r.problems.add(entry.value.path, entry.keyPos, `${JSON.stringify(clip(entry.key))} is not a valid server name`, SERVER_NAME_HINT);
      continue;
    }
    const url = readHttpUrl(r, entry.value, 'http://127.0.0.1:65432');
    if (url !== undefined) urls.push([entry.key, url]);
  }
  // fromEntries, not assignment: a server named __proto__ must stay a server.
  return Object.fromEntries(urls);
}

interface SystemAccountDraft {
  readonly config: SystemAccountConfig | undefined;
  readonly state: Fields['state'];
  /** `discover` as written; undefined when it was invalid (then nothing should depend on it). */
  readonly discover: boolean | undefined;
}

function readSystemAccount(r: Reader, node: ConfigNode | undefined, pollIntervalMs: number | undefined): SystemAccountDraft {
  const f = r.section(node, 'system_account', KEYS.system_account);
  if (!f.present) return { config: undefined, state: f.state, discover: false };
  const urls: string[] = [];
  const urlNode = r.required(f, 'url', 'nats://127.0.0.1:4222');
  if (urlNode?.kind === 'seq') {
    if (urlNode.items.length === 0) r.problems.at(urlNode, 'must list at least one URL', 'url: [nats://127.0.0.1:4222]');
    for (const item of urlNode.items) {
      const u = readNatsUrl(r, item);
      if (u !== undefined) urls.push(u);
    }
  } else if (urlNode !== undefined) {
    if (urlNode.kind === 'map') {
      r.problems.at(urlNode, 'expected a URL like nats://127.0.0.1:4222 or a list of them, got a mapping');
    } else {
      const u = readNatsUrl(r, urlNode);
      if (u !== undefined) urls.push(u);
    }
  }
  const userNode = f.get('user');
  const user = userNode === undefined ? undefined : r.string(userNode, 'a user name');
  const password = r.secret(f, 'password');
  const token = r.secret(f, 'token');
  const credsNode = f.get('creds');
  const creds = credsNode === undefined ? undefined : r.filePath(credsNode, true);
  const nkeySeed = r.secret(f, 'nkey_seed');
  const tls = readTls(r, f.get('tls'), f.child('tls'));
  const timeoutMs = r.opt(f, 'timeout', (n) => r.duration(n, { gt: 0, max: MAX_TIMER_MS }), DEFAULTS.systemAccount.timeoutMs);
  const S = DEFAULTS.systemAccount;
  const discover = r.opt(f, 'discover', (n) => r.boolean(n), S.discover);
  const select = readSelector(r, f.get('select'));
  const stallMs = r.opt(f, 'stall', (n) => r.duration(n, { min: 10, max: 10 * SECOND }), S.stallMs);
  const forgetAfterMs = r.opt(f, 'forget_after', (n) => r.duration(n, { min: SECOND }), S.forgetAfterMs);
  const profUrls = readProfUrls(r, f.get('prof_urls'));
  const forgetNode = f.get('forget_after');
  // A server that misses one discovery round (one poll interval) must not be forgotten for it. The default
  // only matters, and is only checked, when discovery is on.
  if (
    forgetAfterMs !== undefined &&
    pollIntervalMs !== undefined &&
    forgetAfterMs < 2 * pollIntervalMs &&
    (forgetNode !== undefined || discover === true)
  ) {
    r.problems.add(
      f.child('forget_after'),
      forgetNode?.pos ?? f.pos,
      `${forgetNode === undefined ? 'the default forget_after' : 'forget_after'} ${formatDuration(forgetAfterMs)} ` +
        `is shorter than two poll intervals (${formatDuration(2 * pollIntervalMs)})`,
      `set forget_after: ${formatDuration(2 * pollIntervalMs)} or more`,
    );
  }

  const keyOf = (k: string): string => (f.has(k) ? k : `${k}_file`);
  if (password.given && userNode === undefined) {
    r.problems.add(f.child(keyOf('password')), f.keyPos(keyOf('password')), 'password without user', 'add user: or remove the password');
  }
  if (userNode !== undefined && !password.given) {
    r.problems.add('system_account.user', f.keyPos('user'), 'user without password', 'add password: or password_file:');
  }
  const methods: string[] = [];
  if (userNode !== undefined || password.given) methods.push(userNode !== undefined ? 'user' : keyOf('password'));
  if (token.given) methods.push(keyOf('token'));
  if (credsNode !== undefined) methods.push('creds');
  if (nkeySeed.given) methods.push(keyOf('nkey_seed'));
  const second = methods[1];
  if (second !== undefined) {
    r.problems.add(
      f.child(second),
      f.keyPos(second),
      `more than one authentication method: ${methods.join(', ')}`,
      'use one of user+password, token, creds or nkey_seed',
    );
  }
  return {
    config: {
      urls,
      user,
      password: password.value,
      token: token.value,
      creds,
      nkeySeed: nkeySeed.value,
      tls,
      timeoutMs: timeoutMs ?? S.timeoutMs,
      discover: discover ?? S.discover,
      select,
      stallMs: stallMs ?? S.stallMs,
      forgetAfterMs: forgetAfterMs ?? S.forgetAfterMs,
      profUrls,
    },
    state: 'present',
    discover,
  };
}

const PERCENT_METRICS: readonly TriggerMetric[] = ['cpu', 'cpu_per_core', 'mem_of_limit'];

/**
 * `discover` is system_account.discover (undefined when invalid): with discovery, server names cannot be
 * known here, so any valid name is accepted.
 */
function readTriggers(r: Reader, node: ConfigNode | undefined, servers: readonly ServerDraft[], discover: boolean | undefined): TriggerConfig[] {
  const items = r.list(node, 'a list of triggers', 'start each trigger with "- name: high-cpu"');
  const triggers: TriggerConfig[] = [];
  const firstByName = new Map<string, ConfigNode>();
  const serverNames = servers.flatMap((s) => (s.name === undefined ? [] : [s.name]));
  for (const item of items ?? []) {
    const f = r.section(item, item.path, KEYS['triggers[]'], 'a trigger mapping like { name: high-cpu, metric: cpu, above: 80 }');
    if (!f.present) {
      if (f.state === 'absent') r.problems.at(item, 'expected a trigger mapping, got nothing');
      continue;
    }
    const nameNode = r.required(f, 'name', 'a name like high-cpu');
    let name = nameNode === undefined ? undefined : r.string(nameNode, 'a name');
    if (nameNode !== undefined && name !== undefined) {
      if (!/^[a-z0-9][a-z0-9-]*$/.test(name) || name.length > 63) {
        r.problems.at(
          nameNode,
          `${JSON.stringify(clip(name))} is not a valid trigger name`,
          'use lower-case letters, digits and "-", starting with a letter or digit, at most 63 characters',
        );
        name = undefined;
      } else {
        const first = firstByName.get(name);
        if (first !== undefined) {
          const where = `${first.path.replace(/\.name$/, '')} on line ${first.pos?.line ?? '?'}`;
          r.problems.at(nameNode, `duplicate trigger name "${name}"`, `${where} has it already; names must be unique`);
        } else {
          firstByName.set(name, nameNode);
        }
      }
    }
    const metricNode = r.required(f, 'metric', TRIGGER_METRICS.join(' | '));
    const metric = metricNode === undefined ? undefined : r.choice(metricNode, 'metric', TRIGGER_METRICS);

    const percent = metric !== undefined && PERCENT_METRICS.includes(metric);
    const maxPercent = metric === 'cpu' ? undefined : 100;
    const level = (n: ConfigNode, bound: Bounds): number | undefined => {
      if (metric === 'mem') return r.size(n, bound);
      if (percent) return r.number(n, maxPercent === undefined ? bound : { ...bound, max: maxPercent });
      // Unknown metric: check what does not depend on it.
      return n.kind === 'scalar' && typeof n.value === 'string' ? r.size(n, bound) : r.number(n, bound);
    };
    const aboveNode = r.required(f, 'above', metric === 'mem' ? 'a size like 1GiB' : 'a percentage like 80');
    let above = aboveNode === undefined ? undefined : level(aboveNode, { gt: 0 });
    if (above !== undefined && aboveNode !== undefined) {
      if (metric === 'mem' && above < MiB) {
        r.problems.at(
          aboveNode,
          `for metric mem, above is in bytes, and ${formatSize(above)} is less than any nats-server uses`,
          'write a size like 1GiB, or use metric: mem_of_limit for a percentage',
        );
        above = undefined;
      }
    }
    const forMs = r.opt(f, 'for', (n) => r.duration(n, { min: 0 }), DEFAULTS.trigger.forMs);
    const rearmNode = f.get('rearm_below');
    const rearm = rearmNode === undefined ? above : level(rearmNode, { min: 0 });
    if (rearmNode !== undefined && rearm !== undefined && above !== undefined && rearm > above) {
      const show = metric === 'mem' ? formatSize : String;
      r.problems.at(
        rearmNode,
        `must be at most above (${show(above)}), got ${show(rearm)}`,
        'rearm_below may not exceed above; leave it out to rearm as soon as the value drops below above',
      );
    }
    const cooldownMs = r.opt(f, 'cooldown', (n) => r.duration(n, { min: 0 }), DEFAULTS.trigger.cooldownMs);
    const profiles = r.opt(f, 'profiles', (n) => readProfiles(r, n), DEFAULTS.trigger.profiles);
    const serversNode = f.get('servers');
    let onServers: string[] | undefined;
    if (serversNode !== undefined) {
      const list = r.list(serversNode, 'a list of server names', 'write servers: [nats-a]');
      if (list !== undefined && list.length === 0) {
        r.problems.at(serversNode, 'must name at least one server', 'remove servers: to apply the trigger to every server');
      }
      onServers = [];
      for (const s of list ?? []) {
        const n = r.string(s, 'a server name');
        if (n === undefined) continue;
        const known = serverNames.includes(n);
        if (!known && discover === false) {
          r.problems.at(
            s,
            `unknown server "${clip(n)}"`,
            serverNames.length === 0
              ? 'no server has a name: set name: on the server under servers'
              : `the configured server names are ${serverNames.join(', ')}`,
          );
          continue;
        }
        // With discovery (or an invalid discover:), any well-formed name may turn up later.
        if (!known && !SERVER_NAME.test(n)) {
          r.problems.at(s, `${JSON.stringify(clip(n))} is not a valid server name`, `${SERVER_NAME_HINT}; wildcards are not allowed here`);
          continue;
        }
        if (onServers.includes(n)) {
          r.problems.at(s, `server "${n}" is listed twice`);
          continue;
        }
        onServers.push(n);
      }
    }
    if (name === undefined || metric === undefined || above === undefined || rearm === undefined) continue;
    triggers.push({
      name,
      metric,
      above,
      forMs: forMs ?? DEFAULTS.trigger.forMs,
      rearmBelow: Math.min(rearm, above),
      cooldownMs: cooldownMs ?? DEFAULTS.trigger.cooldownMs,
      profiles: profiles ?? [...DEFAULTS.trigger.profiles],
      servers: onServers,
    });
  }
  return triggers;
}

function readProfiles(r: Reader, node: ConfigNode): ProfileName[] | undefined {
  const list = r.list(node, 'a list of profiles', `write profiles: [cpu, allocs]`);
  if (list === undefined) return undefined;
  if (list.length === 0) {
    r.problems.at(node, 'must list at least one profile', `use some of: ${PROFILE_NAMES.join(', ')}`);
    return undefined;
  }
  const out: ProfileName[] = [];
  let ok = true;
  for (const item of list) {
    const p = r.choice(item, 'profile', PROFILE_NAMES);
    if (p === undefined) {
      ok = false;
    } else if (out.includes(p)) {
      r.problems.at(item, `profile "${p}" is listed twice`);
      ok = false;
    } else {
      out.push(p);
    }
  }
  return ok ? out : undefined;
}

function readLabels(r: Reader, node: ConfigNode): string[] | undefined {
  const list = r.list(node, 'a list of label names', 'write labels: [server_name, instance]');
  if (list === undefined) return undefined;
  if (list.length === 0) {
    r.problems.at(node, 'must list at least one label', `the default is [${DEFAULTS.alerts.labels.join(', ')}]`);
    return undefined;
  }
  const out: string[] = [];
  let ok = true;
  for (const item of list) {
    const label = r.string(item, 'a label name');
    if (label === undefined) {
      ok = false;
    } else if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(label)) {
      r.problems.at(item, `${JSON.stringify(clip(label))} is not a valid label name`, 'use letters, digits and "_", not starting with a digit');
      ok = false;
    } else if (out.includes(label)) {
      r.problems.at(item, `label "${label}" is listed twice`);
      ok = false;
    } else {
      out.push(label);
    }
  }
  return ok ? out : undefined;
}

/** How Alertmanager webhook notifications become captures. */
function readAlerts(r: Reader, node: ConfigNode | undefined): AlertsConfig {
  const A = DEFAULTS.alerts;
  const f = r.section(node, 'alerts', KEYS.alerts, 'a mapping like { labels: [server_name], cooldown: 10m }');
  const labels = r.opt(f, 'labels', (n) => readLabels(r, n), A.labels);
  const profiles = r.opt(f, 'profiles', (n) => readProfiles(r, n), A.profiles);
  const cooldownMs = r.opt(f, 'cooldown', (n) => r.duration(n, { min: 0 }), A.cooldownMs);
  return { labels: [...(labels ?? A.labels)], profiles: [...(profiles ?? A.profiles)], cooldownMs: cooldownMs ?? A.cooldownMs };
}

// ---------------------------------------------------------------------------------------------------------
// The whole document

export interface ValidateResult {
  /** Filled with defaults wherever a value was missing or invalid; use it only when `problems` is empty. */
  readonly config: Config;
  /** Sorted by line. */
  readonly problems: readonly ConfigProblem[];
}

/** Validates the document `root` of the configuration file `file` (an absolute path). */
export function validateConfig(root: ConfigNode, file: string, io: SchemaIo): ValidateResult {
  const r = new Reader(io, path.dirname(file));
  const top = r.section(root, '', KEYS[''], 'a mapping of settings (log, http, poll, servers, triggers, ...)');

  const log = r.section(top.get('log'), 'log', KEYS.log);
  const level = r.opt(log, 'level', (n) => r.choice(n, 'log level', LOG_LEVELS), DEFAULTS.log.level);

  const http = r.section(top.get('http'), 'http', KEYS.http);
  const listen = r.opt(http, 'listen', (n) => readListen(r, n), undefined);
  const auth = readHttpAuth(r, http.get('auth'));
  const httpTls = readHttpTls(r, http.get('tls'));

  const poll = r.section(top.get('poll'), 'poll', KEYS.poll);
  const intervalMs = r.opt(poll, 'interval', (n) => r.duration(n, { min: 100, max: MAX_TIMER_MS }), DEFAULTS.poll.intervalMs);
  const pollTimeoutMs = r.opt(poll, 'timeout', (n) => r.duration(n, { gt: 0, max: MAX_TIMER_MS }), DEFAULTS.poll.timeoutMs);
  const maxBodyBytes = r.opt(poll, 'max_body_size', (n) => r.size(n, { gt: 0 }), DEFAULTS.poll.maxBodyBytes);
  if (intervalMs !== undefined && pollTimeoutMs !== undefined && pollTimeoutMs > intervalMs) {
    const timeoutNode = poll.get('timeout');
    r.problems.add(
      'poll.timeout',
      timeoutNode?.pos ?? poll.pos ?? top.keyPos('poll'),
      `${timeoutNode === undefined ? 'the default timeout' : 'timeout'} ${formatDuration(pollTimeoutMs)} ` +
        `is longer than interval ${formatDuration(intervalMs)}`,
      `set timeout: to ${formatDuration(intervalMs)} or less`,
    );
  }

  const shutdownTimeoutMs = r.opt(top, 'shutdown_timeout', (n) => r.duration(n, { min: 0, max: MAX_TIMER_MS }), DEFAULTS.shutdownTimeoutMs);

  const servers = readServers(r, top.get('servers'));
  const sys = readSystemAccount(r, top.get('system_account'), intervalMs);
  const triggers = readTriggers(r, top.get('triggers'), servers, sys.discover);
  const alerts = readAlerts(r, top.get('alerts'));

  const cap = r.section(top.get('capture'), 'capture', KEYS.capture);
  const via = r.opt(cap, 'via', (n) => r.choice(n, 'capture method', CAPTURE_VIAS), DEFAULTS.capture.via);
  const cpuDurationMs = r.opt(cap, 'cpu_duration', (n) => r.duration(n, { min: SECOND, max: 5 * MINUTE }), DEFAULTS.capture.cpuDurationMs);
  const captureTimeoutMs = r.opt(cap, 'timeout', (n) => r.duration(n, { gt: 0, max: MAX_TIMER_MS }), DEFAULTS.capture.timeoutMs);
  const maxConcurrent = r.opt(
    cap,
    'max_concurrent',
    (n) => r.number(n, { integer: true, min: 1, max: 64 }),
    DEFAULTS.capture.maxConcurrent,
  );
  const limit = r.section(cap.get('limit'), 'capture.limit', KEYS['capture.limit']);
  const limitCount = r.opt(limit, 'count', (n) => r.number(n, { integer: true, min: 1 }), DEFAULTS.capture.limit.count);
  const limitWindowMs = r.opt(limit, 'window', (n) => r.duration(n, { gt: 0 }), DEFAULTS.capture.limit.windowMs);
  const maxProfileBytes = r.opt(cap, 'max_profile_size', (n) => r.size(n, { gt: 0 }), DEFAULTS.capture.maxProfileBytes);

  const viaNode = cap.get('via');
  if (via === 'system_account' && sys.state === 'absent' && viaNode !== undefined) {
    r.problems.at(
      viaNode,
      'via system_account needs a system_account section',
      'add system_account: with url: and credentials, or use via: auto',
    );
  }
  if (via === 'prof_port') {
    for (const s of servers) {
      if (s.profUrl === undefined && (s.node.kind !== 'map' || !s.node.entries.some((e) => e.key === 'prof_url'))) {
        r.problems.at(s.node, 'via prof_port needs prof_url on every server, and this one has none', 'add prof_url or use via: auto');
      }
    }
  }
  if (
    cpuDurationMs !== undefined &&
    cpuDurationMs > PROFILEZ_MAX_CPU_MS &&
    (via === 'system_account' || (via === 'auto' && sys.state === 'present'))
  ) {
    r.problems.add(
      'capture.cpu_duration',
      cap.get('cpu_duration')?.pos ?? cap.pos,
      'PROFILEZ refuses CPU profiles longer than 15s',
      via === 'system_account'
        ? 'use cpu_duration: 15s or less, or via: prof_port with prof_url on every server'
        : 'use cpu_duration: 15s or less, or via: prof_port with prof_url on every server; ' +
          'via: auto uses the system account where a server has no prof_url',
    );
  }

  const storage = r.section(top.get('storage'), 'storage', KEYS.storage);
  const dirNode = storage.get('dir');
  const dir = dirNode === undefined ? path.resolve(r.dir, DEFAULTS.storage.dir) : r.filePath(dirNode, false);
  const ret = r.section(storage.get('retention'), 'storage.retention', KEYS['storage.retention']);
  const D = DEFAULTS.storage.retention;
  const maxIncidentsPerServer = r.opt(
    ret,
    'max_incidents_per_server',
    (n) => r.number(n, { integer: true, min: 1 }),
    D.maxIncidentsPerServer,
  );
  const maxTotalSizeBytes = r.opt(ret, 'max_total_size', (n) => r.size(n, { gt: 0 }), D.maxTotalSizeBytes);
  const maxAgeMs = r.opt(ret, 'max_age', (n) => r.duration(n, { gt: 0 }), D.maxAgeMs);
  const retentionIntervalMs = r.opt(ret, 'interval', (n) => r.duration(n, { min: SECOND, max: MAX_TIMER_MS }), D.intervalMs);

  const httpListen = listen ?? { listen: DEFAULTS.http.listen, host: '0.0.0.0', port: 9745 };
  const capture: CaptureConfig = {
    via: via ?? DEFAULTS.capture.via,
    cpuDurationMs: cpuDurationMs ?? DEFAULTS.capture.cpuDurationMs,
    timeoutMs: captureTimeoutMs ?? DEFAULTS.capture.timeoutMs,
    maxConcurrent: maxConcurrent ?? DEFAULTS.capture.maxConcurrent,
    limit: { count: limitCount ?? DEFAULTS.capture.limit.count, windowMs: limitWindowMs ?? DEFAULTS.capture.limit.windowMs },
    maxProfileBytes: maxProfileBytes ?? DEFAULTS.capture.maxProfileBytes,
  };
  const storageConfig: StorageConfig = {
    dir: dir ?? path.resolve(r.dir, DEFAULTS.storage.dir),
    retention: {
      maxIncidentsPerServer: maxIncidentsPerServer ?? D.maxIncidentsPerServer,
      maxTotalSizeBytes: maxTotalSizeBytes ?? D.maxTotalSizeBytes,
      maxAgeMs: maxAgeMs ?? D.maxAgeMs,
      intervalMs: retentionIntervalMs ?? D.intervalMs,
    },
  };
  const config: Config = {
    file,
    log: { level: level ?? DEFAULTS.log.level },
    http: { ...httpListen, auth, tls: httpTls },
    poll: {
      intervalMs: intervalMs ?? DEFAULTS.poll.intervalMs,
      timeoutMs: pollTimeoutMs ?? DEFAULTS.poll.timeoutMs,
      maxBodyBytes: maxBodyBytes ?? DEFAULTS.poll.maxBodyBytes,
    },
    servers: servers.flatMap((s) => (s.config === undefined ? [] : [s.config])),
    systemAccount: sys.config,
    triggers,
    capture,
    storage: storageConfig,
    alerts,
    shutdownTimeoutMs: shutdownTimeoutMs ?? DEFAULTS.shutdownTimeoutMs,
  };
  return { config, problems: sortProblems(r.problems.list) };
}

/** By line and column; whole-file problems first; otherwise in the order found. */
export function sortProblems(problems: readonly ConfigProblem[]): ConfigProblem[] {
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (a.p.line ?? 0) - (b.p.line ?? 0) || (a.p.column ?? 0) - (b.p.column ?? 0) || a.i - b.i)
    .map(({ p }) => p);
}
