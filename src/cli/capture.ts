/**
 * `nats-autoprof capture`: profiles taken now, by hand, from the servers a person names. It mirrors
 * `nats server request profile` (same profiles, `--timeout` is the CPU profile's length, `--level` is the
 * pprof debug level) but selects servers exactly (client-side, `n1` never matches `n10`) and saves each
 * server's profiles as one incident in the daemon's layout, written atomically through IncidentStore.
 *
 * Steps: connect once (fails fast), ask `$SYS.REQ.SERVER.PING.STATSZ` who is there, select, then ask each
 * selected server for its profiles with `$SYS.REQ.SERVER.<server_id>.PROFILEZ`. Every wait is bounded.
 */
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { snapshotDelta } from '../capture/allocs-delta.js';
import { buildManifest, captureProfile, isGzip } from '../capture/incident-capture.js';
import { closeBounded, connectOnce, requestAllOn, requestOn } from '../capture/nats-connection.js';
import { systemClock } from '../clock.js';
import { parseVersion, profilezSupports } from '../capture/paths.js';
import { parseProfilezReply, profilezRequest, profilezSubject } from '../capture/profilez.js';
import { formatDuration, parseDuration } from '../config/duration.js';
import { loadConfig } from '../config/load.js';
import { PROFILE_NAMES, type ProfileName, type Selector, type SystemAccountConfig } from '../config/types.js';
import { AutoprofError, UsageError, describeError } from '../errors.js';
import { ProfileWorker } from '../insight/profile-worker.js';
import { createLogger } from '../log.js';
import { Secret } from '../secret.js';
import { IncidentStore, type IncidentWriter } from '../store/incident-store.js';
import type { IncidentManifest, ProfileResult } from '../store/manifest.js';
import { profileFileName } from '../store/naming.js';
import {
  STATSZ_PING_SUBJECT,
  activeServersOf,
  describeSelector,
  parseStatsz,
  selects,
  type StatszReading,
} from '../watch/fleet.js';
import { parse } from './args.js';
import { CAPTURE_HELP } from './help.js';

/** Discovery: stop once this many ms passed without a new reply (after the first one)... */
export const DISCOVERY_STALL_MS = 300;
/** ...or after this long in all. */
export const DISCOVERY_TIMEOUT_MS = 3_000;
/** `nats server request profile` waits this much longer than a CPU profile lasts. */
export const CPU_MARGIN_MS = 2_000;
export const DEFAULT_TIMEOUT = '5s';
export const DEFAULT_DIR = './profiles';
/** Connect timeout with --server (with --config, system_account.timeout). */
export const CONNECT_TIMEOUT_MS = 5_000;
/** PROFILEZ takes CPU profiles of 1s..15s. */
export const MIN_CPU_MS = 1_000;
export const MAX_CPU_MS = 15_000;
/** Upper bound of --timeout for the other profiles; they take milliseconds. */
export const MAX_TIMEOUT_MS = 5 * 60_000;
export const MAX_LEVEL = 2;
/** Closing the connection must not keep a finished command waiting. */

/** What the command needs from the process; main passes `process` itself. */
export interface OutStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface CaptureIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: OutStream;
  readonly stderr: OutStream;
  cwd(): string;
  once(event: 'SIGINT', listener: () => void): unknown;
  removeListener(event: 'SIGINT', listener: () => void): unknown;
}

export type Connection =
  | { readonly kind: 'config'; readonly file: string }
  | { readonly kind: 'server'; readonly account: SystemAccountConfig };

export interface CaptureOptions {
  /** In the order given, without repeats. */
  readonly profiles: readonly ProfileName[];
  readonly selector: Selector;
  /** As given (relative to the working directory). */
  readonly dir: string;
  /** The CPU profile's length when cpu is asked for, and the wait for every other profile. */
  readonly timeoutMs: number;
  /** pprof debug level: 0 gzip protobuf, 1-2 text. */
  readonly level: number;
  readonly connection: Connection;
}

export type ParsedCaptureArgs =
  | { readonly kind: 'help' }
  | { readonly kind: 'version' }
  | { readonly kind: 'capture'; readonly options: CaptureOptions };

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  server: { type: 'string', short: 's', multiple: true },
  user: { type: 'string' },
  password: { type: 'string' },
  creds: { type: 'string' },
  dir: { type: 'string', short: 'd' },
  name: { type: 'string', multiple: true },
  cluster: { type: 'string', multiple: true },
  tags: { type: 'string', multiple: true },
  timeout: { type: 'string', short: 't' },
  level: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

/** `a,b` and repeated flags alike; blanks dropped. */
function list(values: readonly string[] | undefined): string[] {
  return (values ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
}

const VALID_PROFILES = PROFILE_NAMES.join(' ');

function isProfileName(s: string): s is ProfileName {
  return (PROFILE_NAMES as readonly string[]).includes(s);
}

/** Checks the command line; throws UsageError with what to do instead. Pure: `env` only for $NATS_PASSWORD. */
export function parseCaptureArgs(args: string[], env: Readonly<Record<string, string | undefined>>): ParsedCaptureArgs {
  const { values, positionals } = parse(args, OPTIONS, true);
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };

  const profiles: ProfileName[] = [];
  for (const p of list(positionals)) {
    if (!isProfileName(p)) throw new UsageError(`unknown profile "${p}"; valid profiles: ${VALID_PROFILES}`);
    if (!profiles.includes(p)) profiles.push(p);
  }
  if (profiles.length === 0) {
    throw new UsageError(`name at least one profile: nats-autoprof capture <profile>... (valid profiles: ${VALID_PROFILES})`);
  }

  const timeoutText = values.timeout ?? DEFAULT_TIMEOUT;
  let timeoutMs: number;
  try {
    timeoutMs = parseDuration(timeoutText);
  } catch (err) {
    throw new UsageError(`--timeout: ${describeError(err)}`);
  }
  if (profiles.includes('cpu')) {
    if (timeoutMs < MIN_CPU_MS || timeoutMs > MAX_CPU_MS) {
      throw new UsageError(
        `--timeout ${timeoutText}: for cpu, --timeout is the profile's length and must be between 1s and 15s (PROFILEZ refuses other lengths)`,
      );
    }
  } else if (timeoutMs <= 0 || timeoutMs > MAX_TIMEOUT_MS) {
    throw new UsageError(`--timeout ${timeoutText}: must be more than 0 and at most 5m`);
  }

  const levelText = values.level ?? '0';
  if (!/^\d+$/.test(levelText) || Number(levelText) > MAX_LEVEL) {
    throw new UsageError(`--level ${levelText}: use 0 (gzip protobuf for go tool pprof, the default), 1 or 2 (text)`);
  }
  const level = Number(levelText);
  // allocs_delta: two allocs snapshots --timeout apart, subtracted; only protobuf can be subtracted.
  if (profiles.includes('allocs_delta')) {
    if (level !== 0) throw new UsageError(`--level ${levelText}: allocs_delta is computed from protobuf profiles; use --level 0`);
    if (timeoutMs < MIN_CPU_MS) throw new UsageError(`--timeout ${timeoutText}: for allocs_delta, --timeout is the window and must be at least 1s`);
  }

  const dir = values.dir ?? DEFAULT_DIR;
  if (dir.trim() === '') throw new UsageError('--dir must not be empty');

  const selector: Selector = { names: list(values.name), clusters: list(values.cluster), tags: list(values.tags) };
  return { kind: 'capture', options: { profiles, selector, dir, timeoutMs, level, connection: connectionOf(values, env) } };
}

function connectionOf(
  v: { config?: string; server?: string[]; user?: string; password?: string; creds?: string },
  env: Readonly<Record<string, string | undefined>>,
): Connection {
  const urls = list(v.server);
  if (v.config !== undefined && v.server !== undefined) throw new UsageError('use either --config or --server, not both');
  if (v.config !== undefined) {
    if (v.config.trim() === '') throw new UsageError('--config needs a file name');
    if (v.user !== undefined || v.password !== undefined || v.creds !== undefined) {
      throw new UsageError('--user, --password and --creds go with --server; with --config the credentials come from its system_account section');
    }
    return { kind: 'config', file: v.config };
  }
  if (v.server === undefined) {
    throw new UsageError(
      'say where to connect: --server URL with --user/--password or --creds (a system-account user), or --config FILE with a system_account section',
    );
  }
  if (urls.length === 0) throw new UsageError('--server needs a URL, e.g. --server nats://127.0.0.1:4222');
  if (v.creds !== undefined && (v.user !== undefined || v.password !== undefined)) {
    throw new UsageError('use either --creds or --user/--password, not both');
  }
  if (v.creds !== undefined && v.creds.trim() === '') throw new UsageError('--creds needs a file name');
  if (v.password !== undefined && v.user === undefined) throw new UsageError('--password needs --user');
  const password = v.password ?? (v.user !== undefined ? env['NATS_PASSWORD'] : undefined);
  if (v.user !== undefined && password === undefined) throw new UsageError('--user needs --password or $NATS_PASSWORD');
  return {
    kind: 'server',
    account: {
      urls,
      user: v.user,
      password: password === undefined ? undefined : new Secret(password),
      token: undefined,
      creds: v.creds,
      nkeySeed: undefined,
      tls: undefined,
      timeoutMs: CONNECT_TIMEOUT_MS,
      discover: false,
      select: { names: [], clusters: [], tags: [] },
      stallMs: DISCOVERY_STALL_MS,
      forgetAfterMs: 0,
      profUrls: {},
    },
  };
}

/** How long to wait for one profile: a CPU profile lasts `timeoutMs`, and gets CPU_MARGIN_MS more. */
export function waitMs(profile: ProfileName, timeoutMs: number): number {
  return profile === 'cpu' ? timeoutMs + CPU_MARGIN_MS : timeoutMs;
}

export { isGzip };

/**
 * File name for what a server sent: gzip protobuf is `<profile>.pb.gz` whatever the level (Go writes CPU
 * profiles as protobuf even when text was asked for), anything else is text, `<profile>.txt`.
 */
export function fileNameFor(profile: ProfileName, data: Uint8Array): string {
  return isGzip(data) ? profileFileName(profile) : `${profile}.txt`;
}

export function formatMs(ms: number): string {
  return ms < 1_000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
}

/** Where a profile landed, or why not. */
export interface ProfileOutcome {
  readonly result: ProfileResult;
  /** Absolute path of the saved file, when the incident was committed and the profile captured. */
  readonly path: string | undefined;
}

export interface ServerOutcome {
  readonly name: string;
  readonly status: IncidentManifest['status'];
  /** Absolute path of the incident directory, when committed. */
  readonly incidentPath: string | undefined;
  readonly profiles: readonly ProfileOutcome[];
}

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A path as the person at the keyboard would type it: relative to the working directory when below it. */
export function displayPath(path: string, cwd: string): string {
  const rel = relative(cwd, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

function describeTop(r: ProfileResult): string {
  if (r.sample_type === null) return '';
  const t = r.top[0];
  if (!t) return '  top: (no samples)';
  return `  top: ${t.function} (${(t.share * 100).toFixed(1)}%)`;
}

/**
 * The report on stdout: one line per server and profile, e.g.
 * `n1 cpu     profiles/n1/20261126T153000.123Z-manual/cpu.pb.gz  top: runtime.futex (42.1%)` or
 * `n2 allocs  FAILED: no reply to ... within 5000 ms`, then how to open a profile.
 */
export function formatReport(outcomes: readonly ServerOutcome[], cwd: string): string {
  const sorted = [...outcomes].sort((a, b) => byName(a.name, b.name));
  const nameWidth = Math.max(0, ...sorted.map((o) => o.name.length));
  const profileWidth = Math.max(0, ...sorted.flatMap((o) => o.profiles.map((p) => p.result.name.length)));
  const lines: string[] = [];
  let open: string | undefined;
  for (const o of sorted) {
    for (const p of o.profiles) {
      const head = `${o.name.padEnd(nameWidth)} ${p.result.name.padEnd(profileWidth)}  `;
      if (p.result.error !== null || p.path === undefined) {
        lines.push(`${head}FAILED: ${p.result.error ?? 'not saved'}`);
        continue;
      }
      const shown = displayPath(p.path, cwd);
      if (open === undefined && p.path.endsWith('.pb.gz')) open = shown;
      lines.push(`${head}${shown}${describeTop(p.result)}`);
    }
  }
  if (open !== undefined) lines.push('', `Open a profile with: go tool pprof -http=: ${open}   (or -top for a text summary)`);
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

/** One line per server that answered discovery, for "nothing matched". */
export function describeServers(servers: readonly StatszReading[]): string {
  const sorted = [...servers].sort((a, b) => byName(a.varz.serverName, b.varz.serverName));
  const width = Math.max(0, ...sorted.map((s) => s.varz.serverName.length));
  return sorted
    .map((s) => {
      const v = s.varz;
      const tags = v.tags.length > 0 ? v.tags.join(',') : '-';
      return `  ${v.serverName.padEnd(width)}  cluster ${v.cluster ?? '-'}  tags ${tags}  version ${v.version || '?'}`;
    })
    .join('\n');
}

/** Progress on a terminal (stderr): permanent lines plus one status line rewritten in place. Silent otherwise. */
export class Progress {
  readonly #out: OutStream;
  readonly enabled: boolean;
  #status = '';

  constructor(out: OutStream, enabled: boolean) {
    this.#out = out;
    this.enabled = enabled;
  }

  /** A permanent line; the status line is removed until the next status(). */
  line(text: string): void {
    if (!this.enabled) return;
    this.#clear();
    this.#out.write(`${text}\n`);
  }

  /** Replaces the status line (cut to the terminal's width). */
  status(text: string): void {
    if (!this.enabled) return;
    const columns = this.#out.columns !== undefined && this.#out.columns > 0 ? this.#out.columns : 100;
    const width = Math.max(20, columns - 1);
    const shown = text.length > width ? `${text.slice(0, width - 1)}…` : text;
    this.#out.write(`\r\x1b[K${shown}`);
    this.#status = shown;
  }

  #clear(): void {
    if (this.#status) this.#out.write('\r\x1b[K');
    this.#status = '';
  }

  /** Removes the status line. Idempotent. */
  done(): void {
    if (this.enabled) this.#clear();
  }
}

/** Who is being waited for, for the status line: `n1 (cpu 3s), n2 (allocs 0s)`. */
export function describeWaiting(waiting: ReadonlyMap<string, { profile: string; sinceMs: number }>, nowMs: number, max = 6): string {
  const items = [...waiting].sort(([a], [b]) => byName(a, b));
  const shown = items.slice(0, max).map(([name, w]) => `${name} (${w.profile} ${Math.floor((nowMs - w.sinceMs) / 1000)}s)`);
  const more = items.length > max ? `, +${items.length - max} more` : '';
  return `waiting for ${shown.join(', ')}${more}`;
}

/** The system account to use: built from the flags, or the config file's `system_account` (its `select` is not applied). */
async function accountOf(c: Connection, env: CaptureIo['env']): Promise<{ account: SystemAccountConfig; check: string }> {
  if (c.kind === 'server') {
    const check = c.account.creds !== undefined ? `--creds ${c.account.creds}` : c.account.user !== undefined ? '--user and --password' : 'the credentials (none were given: use --user/--password or --creds)';
    return { account: c.account, check };
  }
  const config = await loadConfig(c.file, env);
  if (config.systemAccount === undefined) {
    throw new UsageError(`${c.file} has no system_account section; capture needs one (or use --server with --user/--password or --creds)`);
  }
  return { account: config.systemAccount, check: `the system_account credentials in ${c.file}` };
}

function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** A clear sentence for a failed connect; branches on the client's error class names and fs error codes. */
function connectFailure(err: unknown, account: SystemAccountConfig, check: string): AutoprofError {
  const where = account.urls.join(', ');
  const name = err instanceof Error ? err.name : '';
  const code = errorCode(err);
  if (code !== undefined && ['ENOENT', 'EACCES', 'EISDIR', 'EPERM'].includes(code) && account.creds !== undefined) {
    return new UsageError(`cannot read the credentials file ${account.creds}: ${describeError(err)}`, {}, { cause: err });
  }
  if (name === 'AuthorizationError') {
    return new AutoprofError(`cannot connect to ${where}: authorization violation: the server refused the credentials; check ${check}`, {}, { cause: err });
  }
  if (name === 'UserAuthenticationExpiredError') {
    return new AutoprofError(`cannot connect to ${where}: the user's credentials have expired; check ${check}`, {}, { cause: err });
  }
  if (name === 'TimeoutError') {
    return new AutoprofError(`cannot connect to ${where}: no answer within ${formatMs(account.timeoutMs)}`, {}, { cause: err });
  }
  const cause = err instanceof Error && err.cause instanceof Error ? ` (${err.cause.message})` : '';
  return new AutoprofError(`cannot connect to ${where}: ${describeError(err)}${cause}`, {}, { cause: err });
}


interface Discovered {
  servers: StatszReading[];
  expected: number | undefined;
  durationMs: number;
}

async function discover(nc: NatsConnection, who: string, signal: AbortSignal): Promise<Discovered> {
  const r = await requestAllOn(nc, STATSZ_PING_SUBJECT, '', {
    timeoutMs: DISCOVERY_TIMEOUT_MS,
    stallMs: DISCOVERY_STALL_MS,
    expected: activeServersOf,
    signal,
  });
  if (r.ended === 'aborted') throw new AutoprofError('interrupted');
  if (r.ended === 'no_responders') {
    throw new AutoprofError(
      `no responders for ${STATSZ_PING_SUBJECT}: not connected as a system-account user (${who} is in an account ` +
        'that cannot see $SYS.REQ.* subjects); connect as a user of the account named by system_account in the ' +
        'nats-server configuration',
    );
  }
  const byId = new Map<string, StatszReading>();
  let invalid = 0;
  for (const data of r.replies) {
    try {
      const s = parseStatsz(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
      byId.set(s.varz.serverId, s);
    } catch {
      invalid++;
    }
  }
  if (byId.size === 0) {
    const extra = invalid > 0 ? ` (${invalid} repl${invalid === 1 ? 'y was' : 'ies were'} not STATSZ)` : '';
    throw new AutoprofError(`no server answered ${STATSZ_PING_SUBJECT} within ${formatMs(DISCOVERY_TIMEOUT_MS)}${extra}`);
  }
  const servers = [...byId.values()].sort((a, b) => byName(a.varz.serverName, b.varz.serverName));
  return { servers, expected: r.expected, durationMs: r.durationMs };
}

interface Hooks {
  started(server: string, profile: ProfileName): void;
  finished(server: string, profile: ProfileName, r: ProfileResult): void;
  serverDone(server: string): void;
}

function failedResult(profile: ProfileName, error: string, ms: number): ProfileResult {
  return { name: profile, file: null, bytes: 0, sha256: null, duration_ms: Math.round(ms), via: 'system_account', error, top: [], sample_type: null };
}

/** One profile from one server into the writer, through the shared capture path. Only StorageError escapes. */
async function captureOne(
  nc: NatsConnection,
  writer: IncidentWriter,
  s: StatszReading,
  profile: ProfileName,
  o: CaptureOptions,
  signal: AbortSignal,
  profiles: ProfileWorker,
): Promise<ProfileResult> {
  const v = s.varz;
  if (parseVersion(v.version) !== undefined && !profilezSupports(profile, v.version)) {
    return failedResult(
      profile,
      `nats-server ${v.version} cannot give "${profile}" through PROFILEZ (needs ${profile === 'cpu' ? '2.10.19' : '2.10.0'} or newer)`,
      0,
    );
  }
  return captureProfile({
    writer,
    server: v.serverName,
    profile,
    via: 'system_account',
    fetch: async (sig) => {
      if (profile === 'allocs_delta') {
        const snapshot = async (ss: AbortSignal): Promise<Uint8Array> => {
          const m = await requestOn(nc, profilezSubject(v.serverId), profilezRequest(profile, 0), { timeoutMs: o.timeoutMs, signal: ss });
          return parseProfilezReply(m.data, { server: v.serverName, profile });
        };
        const subtract = (b: Uint8Array | undefined, a: Uint8Array, w: number): Promise<Uint8Array> => profiles.allocsDelta(b, a, w);
        return { bytes: await snapshotDelta({ snapshot, windowMs: o.timeoutMs, clock: systemClock, signal: sig, subtract }) };
      }
      const msg = await requestOn(nc, profilezSubject(v.serverId), profilezRequest(profile, o.timeoutMs, o.level), { timeoutMs: waitMs(profile, o.timeoutMs), signal: sig });
      return { bytes: parseProfilezReply(msg.data, { server: v.serverName, profile }, o.level) };
    },
    fileName: (data) => (data === undefined ? profileFileName(profile) : fileNameFor(profile, data)),
    maxBytes: undefined,
    // Like `nats server request profile`: one attempt; the person at the keyboard can run it again.
    retryBusyUntil: 0,
    abortedMessage: 'interrupted',
    signal,
    clock: systemClock,
    summarize: (input) => profiles.summarize(input, 10),
    log: undefined,
  });
}

/** Every profile of one server, one after another, into one incident. Never throws. */
async function captureServer(
  nc: NatsConnection,
  store: IncidentStore,
  s: StatszReading,
  o: CaptureOptions,
  hooks: Hooks,
  signal: AbortSignal,
  profiles: ProfileWorker,
): Promise<ServerOutcome> {
  const v = s.varz;
  const name = v.serverName;
  const startedAt = Date.now();
  let writer: IncidentWriter | undefined;
  const results: ProfileResult[] = [];
  let notSaved: string | undefined;
  try {
    writer = await store.begin(name, startedAt, 'manual');
    await writer.writeFile('statsz.json', s.body);
    for (const profile of o.profiles) {
      if (signal.aborted) {
        results.push(failedResult(profile, 'interrupted', 0));
        continue;
      }
      hooks.started(name, profile);
      const r = await captureOne(nc, writer, s, profile, o, signal, profiles);
      hooks.finished(name, profile, r);
      results.push(r);
    }
    if (signal.aborted) notSaved = 'interrupted; nothing saved';
  } catch (err) {
    notSaved = `not saved: ${describeError(err)}`;
  }
  hooks.serverDone(name);

  const fail = (why: string): ServerOutcome => ({
    name,
    status: 'failed',
    incidentPath: undefined,
    profiles: o.profiles.map((p) => {
      const r = results.find((x) => x.name === p);
      return { result: r?.error ? r : failedResult(p, why, r?.duration_ms ?? 0), path: undefined };
    }),
  });
  if (writer === undefined || notSaved !== undefined) {
    await writer?.abort().catch(() => undefined);
    return fail(notSaved ?? 'not saved');
  }

  const manifest = buildManifest({
    id: writer.id,
    req: {
      target: { key: v.serverId, label: name, serverId: v.serverId, version: v.version || undefined, cluster: v.cluster, tags: v.tags, url: undefined, profUrl: undefined, snapshot: undefined },
      reason: 'manual',
      note: 'nats-autoprof capture',
    },
    startedAt,
    finishedAt: Date.now(),
    results,
    files: [], // set by commit() to the files written
  });
  try {
    const c = await writer.commit(manifest);
    return {
      name,
      status: manifest.status,
      incidentPath: c.path,
      profiles: results.map((r) => ({ result: r, path: r.file === null ? undefined : join(c.path, r.file) })),
    };
  } catch (err) {
    await writer.abort().catch(() => undefined);
    return fail(`not saved: ${describeError(err)}`);
  }
}

/**
 * The `capture` command. Returns the exit code: 0 every selected server gave every profile, 1 anything
 * failed or nothing matched. Usage and configuration problems are thrown (UsageError, ConfigError: exit 2);
 * runtime failures before any capture (cannot connect, not a system-account user) are thrown as
 * AutoprofError (exit 1), so main reports them like every other command.
 */
export async function capture(args: string[], io: CaptureIo, version: () => string): Promise<number> {
  const parsed = parseCaptureArgs(args, io.env);
  if (parsed.kind === 'help') {
    io.stdout.write(CAPTURE_HELP);
    return 0;
  }
  if (parsed.kind === 'version') {
    io.stdout.write(`${version()}\n`);
    return 0;
  }
  const o = parsed.options;
  const { account, check } = await accountOf(o.connection, io.env);
  const progress = new Progress(io.stderr, io.stderr.isTTY === true);
  const abort = new AbortController();
  const onInterrupt = (): void => {
    progress.line('interrupted: stopping');
    abort.abort();
  };
  io.once('SIGINT', onInterrupt);
  let nc: NatsConnection | undefined;
  let ticker: NodeJS.Timeout | undefined;
  // Every selected server's profiles may wait at once; the queue holds only their paths.
  const profiles = new ProfileWorker({ maxQueue: Number.MAX_SAFE_INTEGER });
  try {
    const where = account.urls.join(', ');
    progress.status(`connecting to ${where}`);
    try {
      nc = await connectOnce(account);
    } catch (err) {
      throw connectFailure(err, account, check);
    }
    const who = account.user !== undefined ? `user "${account.user}"` : 'this user';
    progress.line(`connected to ${nc.getServer()}`);
    progress.status(`asking who is there (${STATSZ_PING_SUBJECT})`);
    const found = await discover(nc, who, abort.signal);
    const names = found.servers.map((s) => s.varz.serverName);
    const expected = found.expected !== undefined && found.expected > found.servers.length ? ` (of ${found.expected} expected)` : '';
    progress.line(`${found.servers.length} server${found.servers.length === 1 ? '' : 's'} answered${expected} in ${formatMs(found.durationMs)}: ${names.join(', ')}`);

    const selected = found.servers.filter((s) => selects(o.selector, { name: s.varz.serverName, cluster: s.varz.cluster, tags: s.varz.tags }));
    if (selected.length === 0) {
      progress.done();
      io.stderr.write(
        `nats-autoprof: no server matched ${describeSelector(o.selector)}; ${found.servers.length} server${found.servers.length === 1 ? '' : 's'} answered${expected}:\n` +
          `${describeServers(found.servers)}\n`,
      );
      return 1;
    }
    const store = new IncidentStore({ dir: resolve(io.cwd(), o.dir), log: createLogger('error', { write: (s: string) => io.stderr.write(s) }) });
    const what = o.profiles.map((p) => (p === 'cpu' || p === 'allocs_delta' ? `${p} (${formatDuration(o.timeoutMs)})` : p)).join(', ');
    progress.line(`capturing ${what} from ${selected.map((s) => s.varz.serverName).join(', ')}`);

    const waiting = new Map<string, { profile: string; sinceMs: number }>();
    const redraw = (): void => {
      if (waiting.size > 0) progress.status(describeWaiting(waiting, Date.now()));
      else progress.done();
    };
    if (progress.enabled) ticker = setInterval(redraw, 500);
    const hooks: Hooks = {
      started: (server, profile) => {
        waiting.set(server, { profile, sinceMs: Date.now() });
        redraw();
      },
      finished: (server, profile, r) => {
        progress.line(r.error === null ? `  ${server} ${profile}: ok (${formatMs(r.duration_ms)}, ${r.bytes} bytes)` : `  ${server} ${profile}: FAILED: ${r.error}`);
      },
      serverDone: (server) => {
        waiting.delete(server);
        redraw();
      },
    };
    const signal = abort.signal;
    const conn = nc;
    const outcomes = await Promise.all(selected.map((s) => captureServer(conn, store, s, o, hooks, signal, profiles)));
    clearInterval(ticker);
    progress.done();
    io.stdout.write(formatReport(outcomes, io.cwd()));
    if (signal.aborted) {
      io.stderr.write('nats-autoprof: interrupted\n');
      return 1;
    }
    const failed = outcomes.flatMap((x) => x.profiles).filter((p) => p.path === undefined).length;
    return failed === 0 ? 0 : 1;
  } finally {
    clearInterval(ticker);
    progress.done();
    io.removeListener('SIGINT', onInterrupt);
    if (nc) await closeBounded(nc);
    await profiles.close();
  }
}
