/**
 * Incidents on disk: `<dir>/<serverDir>/<dirName>/{incident.json, varz.json, cpu.pb.gz, ...}`.
 *
 * An incident is written into `<dir>/<serverDir>/.tmp-<dirName>/` and renamed into place only when
 * complete, so readers never see half an incident and a crash leaves only `.tmp-*` dirs, which
 * `init()` removes on the next start. This is the only module that touches node:fs for incidents.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { lstat, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { systemClock } from '../clock.js';
import { StorageError, describeError } from '../errors.js';
import type { IncidentManifest, IncidentReason } from './manifest.js';
import { parseManifest } from './manifest.js';
import {
  MANIFEST_FILE,
  TMP_PREFIX,
  incidentDirName,
  incidentId,
  isSafeSegment,
  parseIncidentDirName,
  parseIncidentId,
  serverDirName,
} from './naming.js';
import type { RetentionPolicy, RetentionReason } from './retention.js';
import { planRetention } from './retention.js';

export interface IncidentStoreOptions {
  /** Root directory of the store; created by init(). */
  dir: string;
  log: Logger;
  /** Used when prune() is called without `nowMs`. */
  clock?: Clock;
  /** The viewer page of an incident (http.external_url set), written into its manifest as `page_url`; read at each commit. */
  pageUrl?: (id: string) => string | undefined;
  /** Called after each commit with the new incident's id (the object-store upload queue, when configured). */
  onCommit?: (id: string) => void;
  /** Ids that retention must keep (incidents not uploaded to the object store yet). */
  keep?: () => ReadonlySet<string>;
}

/** What listing needs from an incident's manifest, kept in the index so that a page reads no manifest. */
export interface IncidentSummary {
  reason: IncidentReason;
  trigger: string | null;
  /** Every rule that fired into the incident (the first is `trigger`). */
  triggers: string[];
  alert: string | null;
  status: IncidentManifest['status'];
  finishedAt: string;
  /** The manifest's `files` (incident.json not included). */
  files: string[];
  /** Names of the profiles that have a file (a failed profile has none), in the manifest's order. */
  profiles: string[];
}

export interface IncidentEntry {
  id: string;
  /** The server name from the manifest, or the server directory name when the manifest is unreadable. */
  server: string;
  serverDir: string;
  dirName: string;
  /** Absolute path of the incident directory. */
  path: string;
  startedAtMs: number;
  /** Sum of the sizes of the files in the incident directory, incident.json included. */
  bytes: number;
  /** Undefined when incident.json is missing or invalid. */
  summary: IncidentSummary | undefined;
}

/**
 * Which incidents a page lists; every given field must match (AND). Matched against the index's summaries,
 * so no manifest is read; an incident whose manifest is unreadable has no summary and matches no filter.
 */
export interface IncidentFilter {
  /** Server name (or its directory name). */
  server?: string;
  reason?: IncidentReason;
  /** A rule name: matches when it is any of the incident's triggers. */
  trigger?: string;
  status?: IncidentManifest['status'];
  /** Has a file of this profile (cpu, allocs, ...). */
  profile?: string;
}

/** The filter as a predicate; undefined when it filters nothing. */
export function matcher(f: IncidentFilter): ((e: IncidentEntry) => boolean) | undefined {
  const { reason, trigger, status, profile } = f;
  if (reason === undefined && trigger === undefined && status === undefined && profile === undefined) return undefined;
  return (e) => {
    const s = e.summary;
    return (
      s !== undefined &&
      (reason === undefined || s.reason === reason) &&
      (status === undefined || s.status === status) &&
      (trigger === undefined || s.triggers.includes(trigger)) &&
      (profile === undefined || s.profiles.includes(profile))
    );
  };
}

export interface IncidentPage {
  /** Newest first. */
  incidents: IncidentEntry[];
  /** The `before` of the next page, null on the last one. */
  next: string | null;
}

export function summaryOf(m: IncidentManifest): IncidentSummary {
  return {
    reason: m.reason,
    trigger: m.trigger?.name ?? null,
    triggers: m.triggers.map((t) => t.name),
    alert: m.alert?.name ?? null,
    status: m.status,
    finishedAt: m.finished_at,
    files: [...m.files],
    profiles: m.profiles.filter((p) => p.file !== null).map((p) => p.name),
  };
}

/** Where a page that follows `before` starts in `all` (0 without it); undefined when `before` is not listed. */
export function pageStart(all: readonly IncidentEntry[], before: string | undefined): number | undefined {
  if (before === undefined) return 0;
  const at = all.findIndex((e) => e.id === before);
  return at < 0 ? undefined : at + 1;
}

/** Newest first; ties broken by id (descending), so that paging is stable. */
export function newestFirst(a: IncidentEntry, b: IncidentEntry): number {
  return b.startedAtMs - a.startedAtMs || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

export interface PruneResult {
  deleted: { id: string; reason: RetentionReason }[];
  /** Bytes and incidents left after the deletions. */
  totalBytes: number;
  incidents: number;
}

/** A streamed file grew beyond its limit; the partial file has been deleted. */
export class TooLargeError extends Error {
  override readonly name = 'TooLargeError';
  readonly file: string;
  readonly limit: number;
  constructor(file: string, limit: number) {
    super(`${file} is larger than the limit of ${limit} bytes`);
    this.file = file;
    this.limit = limit;
  }
}

export interface IncidentWriter {
  /** The incident id; final once commit() resolves (a name collision appends `-1`, `-2`, ...). */
  readonly id: string;
  readonly server: string;
  readonly serverDir: string;
  readonly dirName: string;
  readonly tmpPath: string;
  /** Writes and fsyncs a whole file in the tmp dir; on failure the partial file is removed (StorageError). */
  writeFile(name: string, data: Uint8Array | string): Promise<{ bytes: number; sha256: string }>;
  /**
   * Streams chunks into a file, hashing as it goes. Throws TooLargeError beyond maxBytes, the source's
   * own error, the signal's reason on abort, or StorageError; the partial file is removed in every case.
   */
  writeStream(
    name: string,
    source: AsyncIterable<Uint8Array>,
    maxBytes: number,
    signal?: AbortSignal,
  ): Promise<{ bytes: number; sha256: string }>;
  /**
   * Writes incident.json (with `id` set to the final id, `files` set to the files written through this
   * writer, sorted, and `page_url` when the store has a page URL for it), fsyncs, and renames the tmp dir
   * into place. On failure the tmp dir stays (call abort()).
   */
  commit(manifest: IncidentManifest): Promise<{ path: string; id: string; pageUrl: string | undefined }>;
  /** Removes the tmp dir. Idempotent; a no-op after commit. */
  abort(): Promise<void>;
}

/** `p`, or the signal's reason if it aborts first; the listener is removed either way. */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/** How many incident directories list() reads at once. */
const LIST_CONCURRENCY = 32;
/** How many `-N` suffixes begin()/commit() try before giving up on a name. */
const MAX_SUFFIX = 1000;

function errCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

function isMissing(err: unknown): boolean {
  const code = errCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function checkFileName(name: string, tmpPath: string): void {
  if (!isSafeSegment(name) || name === MANIFEST_FILE) {
    throw new StorageError(
      `invalid file name ${JSON.stringify(name)} for an incident: use one segment of [A-Za-z0-9._-], not starting with a dot, not ${MANIFEST_FILE}`,
      tmpPath,
    );
  }
}

/** fsync a directory so a rename or a new entry survives a crash. Some platforms refuse; that is not fatal. */
async function syncDir(path: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'r');
    await fh.sync();
  } catch (err) {
    const code = errCode(err);
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'EBADF') throw err;
  } finally {
    await fh?.close();
  }
}

async function writeAll(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.byteLength) {
    const { bytesWritten } = await fh.write(chunk, offset, chunk.byteLength - offset);
    offset += bytesWritten;
  }
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function closeIterator(it: AsyncIterator<Uint8Array>): void {
  // Not awaited: a source stuck in a network read may only settle later.
  try {
    void Promise.resolve(it.return?.()).catch(() => undefined);
  } catch {
    // a throwing return() must not hide the error that stopped the stream
  }
}

type WriterState = 'open' | 'committing' | 'committed' | 'aborted';

class Writer implements IncidentWriter {
  readonly server: string;
  readonly serverDir: string;
  readonly tmpPath: string;
  #dirName: string;
  #state: WriterState = 'open';
  readonly #root: string;
  /** Files written so far and their sizes. */
  readonly #files = new Map<string, number>();
  readonly #done: (w: Writer) => void;
  readonly #committed: (entry: IncidentEntry) => void;
  readonly #pageUrl: (id: string) => string | undefined;

  constructor(
    root: string,
    server: string,
    serverDir: string,
    dirName: string,
    tmpPath: string,
    done: (w: Writer) => void,
    committed: (entry: IncidentEntry) => void,
    pageUrl: (id: string) => string | undefined,
  ) {
    this.#root = root;
    this.server = server;
    this.serverDir = serverDir;
    this.#dirName = dirName;
    this.tmpPath = tmpPath;
    this.#done = done;
    this.#committed = committed;
    this.#pageUrl = pageUrl;
  }

  get dirName(): string {
    return this.#dirName;
  }

  get id(): string {
    return incidentId(this.serverDir, this.#dirName);
  }

  #assertOpen(what: string): void {
    if (this.#state !== 'open') {
      throw new StorageError(`cannot ${what}: incident ${this.id} is ${this.#state}`, this.tmpPath);
    }
  }

  async writeFile(name: string, data: Uint8Array | string): Promise<{ bytes: number; sha256: string }> {
    this.#assertOpen(`write ${name}`);
    checkFileName(name, this.tmpPath);
    const path = join(this.tmpPath, name);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    let fh: FileHandle | undefined;
    try {
      fh = await open(path, 'w');
      await writeAll(fh, bytes);
      await fh.sync();
      const closing = fh;
      fh = undefined;
      await closing.close();
    } catch (err) {
      await fh?.close().catch(() => undefined);
      await rm(path, { force: true }).catch(() => undefined);
      throw new StorageError(`cannot write ${path}: ${describeError(err)}`, path, { cause: err });
    }
    this.#files.set(name, bytes.byteLength);
    return { bytes: bytes.byteLength, sha256 };
  }

  async writeStream(
    name: string,
    source: AsyncIterable<Uint8Array>,
    maxBytes: number,
    signal?: AbortSignal,
  ): Promise<{ bytes: number; sha256: string }> {
    this.#assertOpen(`write ${name}`);
    checkFileName(name, this.tmpPath);
    signal?.throwIfAborted();
    const path = join(this.tmpPath, name);
    const hash = createHash('sha256');
    let bytes = 0;
    let fh: FileHandle | undefined;
    let it: AsyncIterator<Uint8Array> | undefined;
    let finished = false;


    const storage = (err: unknown): StorageError =>
      new StorageError(`cannot write ${path}: ${describeError(err)}`, path, { cause: err });

    try {
      try {
        fh = await open(path, 'w');
      } catch (err) {
        throw storage(err);
      }
      it = source[Symbol.asyncIterator]();
      for (;;) {
        const next = it.next();
        next.catch(() => undefined); // settled later if the abort wins the race
        // An abort interrupts a source that waits for data and ignores the signal itself. One race per
        // chunk, settled and released each time (a single long-lived race promise kept every chunk alive).
        const r = signal ? await raceAbort(next, signal) : await next;
        if (r.done) {
          finished = true;
          break;
        }
        const chunk = r.value;
        bytes += chunk.byteLength;
        if (bytes > maxBytes) throw new TooLargeError(name, maxBytes);
        hash.update(chunk);
        try {
          await writeAll(fh, chunk);
        } catch (err) {
          throw storage(err);
        }
      }
      try {
        await fh.sync();
        const closing = fh;
        fh = undefined;
        await closing.close();
      } catch (err) {
        throw storage(err);
      }
    } catch (err) {
      if (it && !finished) closeIterator(it);
      await fh?.close().catch(() => undefined);
      await rm(path, { force: true }).catch(() => undefined);
      throw err;
    }
    this.#files.set(name, bytes);
    return { bytes, sha256: hash.digest('hex') };
  }

  async commit(manifest: IncidentManifest): Promise<{ path: string; id: string; pageUrl: string | undefined }> {
    this.#assertOpen('commit');
    this.#state = 'committing';
    const parent = join(this.#root, this.serverDir);
    const base = this.#dirName;
    const files = [...this.#files.keys()].sort();
    try {
      for (let n = 0; n < MAX_SUFFIX; n++) {
        const candidate = n === 0 ? base : `${base}-${n}`;
        const finalPath = join(parent, candidate);
        if (await lstat(finalPath).then(() => true, (err: unknown) => (isMissing(err) ? false : Promise.reject(err)))) {
          continue;
        }
        // Set before the rename so that a concurrent prune() protects the final id too.
        this.#dirName = candidate;
        const pageUrl = this.#pageUrl(this.id);
        // page_url only when known: without http.external_url a manifest looks as it always has.
        const final: IncidentManifest & { page_url?: string } = { ...manifest, id: this.id, files, ...(pageUrl !== undefined ? { page_url: pageUrl } : {}) };
        const manifestPath = join(this.tmpPath, MANIFEST_FILE);
        const manifestBytes = Buffer.from(`${JSON.stringify(final, null, 2)}\n`, 'utf8');
        const fh = await open(manifestPath, 'w');
        try {
          await writeAll(fh, manifestBytes);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await syncDir(this.tmpPath);
        try {
          await rename(this.tmpPath, finalPath);
        } catch (err) {
          const code = errCode(err);
          if (code === 'ENOTEMPTY' || code === 'EEXIST') continue; // lost a race for the name
          throw err;
        }
        await syncDir(parent);
        this.#state = 'committed';
        let bytes = manifestBytes.byteLength;
        for (const size of this.#files.values()) bytes += size;
        this.#committed({
          id: this.id,
          server: final.server.name,
          serverDir: this.serverDir,
          dirName: candidate,
          path: finalPath,
          startedAtMs: parseIncidentDirName(candidate)?.startedAtMs ?? Date.parse(final.started_at),
          bytes,
          summary: summaryOf(final),
        });
        this.#done(this);
        return { path: finalPath, id: this.id, pageUrl };
      }
      throw new Error(`${MAX_SUFFIX} incidents named ${base} already exist`);
    } catch (err) {
      this.#state = 'open';
      this.#dirName = base;
      throw new StorageError(`cannot commit incident ${this.id} in ${this.tmpPath}: ${describeError(err)}`, this.tmpPath, {
        cause: err,
      });
    }
  }

  async abort(): Promise<void> {
    if (this.#state === 'committed' || this.#state === 'aborted') return;
    this.#state = 'aborted';
    try {
      await rm(this.tmpPath, { recursive: true, force: true });
    } catch (err) {
      throw new StorageError(`cannot remove ${this.tmpPath}: ${describeError(err)}`, this.tmpPath, { cause: err });
    } finally {
      this.#done(this);
    }
  }
}

export class IncidentStore {
  /** Absolute root directory. */
  readonly dir: string;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #pageUrl: (id: string) => string | undefined;
  readonly #onCommit: ((id: string) => void) | undefined;
  readonly #keep: (() => ReadonlySet<string>) | undefined;
  /** Writers that have begun and neither committed nor aborted. */
  readonly #active = new Set<Writer>();
  /**
   * Every complete incident by id: built by one scan (init(), or the first read), then kept current by
   * this store's own commits and deletions, so that a commit, a retention pass or a listing page never
   * walks the tree again. Directories deleted by someone else are dropped when a page or prune meets them.
   */
  #index: Map<string, IncidentEntry> | undefined;
  #indexing: Promise<Map<string, IncidentEntry>> | undefined;
  /** Commits that landed while the index was being built (the scan may or may not have seen them). */
  #committedWhileIndexing: IncidentEntry[] = [];
  /** The index newest first; rebuilt after a change, on the next read. */
  #sorted: IncidentEntry[] | undefined;

  constructor(opts: IncidentStoreOptions) {
    this.dir = resolve(opts.dir);
    this.#log = opts.log;
    this.#clock = opts.clock ?? systemClock;
    this.#pageUrl = opts.pageUrl ?? (() => undefined);
    this.#onCommit = opts.onCommit;
    this.#keep = opts.keep;
  }

  /**
   * Creates the root (mkdir -p), checks it is writable, and removes `.tmp-*` leftovers of an earlier
   * run under every server dir (one warn log each). Returns the removed paths.
   */
  async init(): Promise<string[]> {
    try {
      await mkdir(this.dir, { recursive: true });
    } catch (err) {
      throw new StorageError(`cannot create the incident directory ${this.dir}: ${describeError(err)}`, this.dir, {
        cause: err,
      });
    }
    const probe = join(this.dir, `.probe-${randomBytes(6).toString('hex')}`);
    try {
      await writeFile(probe, 'probe');
      await rm(probe, { force: true });
    } catch (err) {
      await rm(probe, { force: true }).catch(() => undefined);
      throw new StorageError(`the incident directory ${this.dir} is not writable: ${describeError(err)}`, this.dir, {
        cause: err,
      });
    }

    const inProgress = new Set([...this.#active].map((w) => w.tmpPath));
    const removed: string[] = [];
    let current = this.dir;
    try {
      for (const serverEntry of await readdir(this.dir, { withFileTypes: true })) {
        if (!serverEntry.isDirectory() || serverEntry.name.startsWith('.')) continue;
        const serverPath = join(this.dir, serverEntry.name);
        current = serverPath;
        for (const entry of await readdir(serverPath, { withFileTypes: true })) {
          if (!entry.name.startsWith(TMP_PREFIX)) continue;
          const path = join(serverPath, entry.name);
          if (inProgress.has(path)) continue;
          current = path;
          await rm(path, { recursive: true, force: true });
          this.#log.warn({ path }, 'removed a half-written incident left by an earlier run');
          removed.push(path);
        }
      }
    } catch (err) {
      throw new StorageError(`cannot clean up ${current}: ${describeError(err)}`, current, { cause: err });
    }
    this.#index = undefined;
    this.#sorted = undefined;
    await this.#ensureIndex();
    return removed;
  }

  /** The index, scanning the tree (and parsing every manifest) once when there is none yet. */
  async #ensureIndex(): Promise<Map<string, IncidentEntry>> {
    if (this.#index) return this.#index;
    this.#indexing ??= (async () => {
      try {
        const index = new Map((await this.#scan(undefined, true)).map((e) => [e.id, e]));
        for (const e of this.#committedWhileIndexing) index.set(e.id, e);
        this.#index = index;
        this.#sorted = undefined;
        return index;
      } finally {
        this.#committedWhileIndexing = [];
        this.#indexing = undefined;
      }
    })();
    return this.#indexing;
  }

  #indexAdd(entry: IncidentEntry): void {
    if (this.#index) {
      this.#index.set(entry.id, entry);
      this.#sorted = undefined;
    } else if (this.#indexing) {
      this.#committedWhileIndexing.push(entry);
    }
    // Neither: the first read scans the disk, where this incident now is.
  }

  #indexDrop(id: string): void {
    if (this.#index?.delete(id)) this.#sorted = undefined;
  }

  async #newestFirst(server: string | undefined): Promise<IncidentEntry[]> {
    const index = await this.#ensureIndex();
    this.#sorted ??= [...index.values()].sort(newestFirst);
    if (server === undefined) return this.#sorted;
    const wanted = serverDirName(server);
    return this.#sorted.filter((e) => e.serverDir === wanted);
  }

  /** False when the incident's directory is gone (deleted by someone else). */
  async #exists(e: IncidentEntry): Promise<boolean> {
    try {
      return (await lstat(e.path)).isDirectory();
    } catch (err) {
      if (isMissing(err)) return false;
      throw new StorageError(`cannot read incident ${e.path}: ${describeError(err)}`, e.path, { cause: err });
    }
  }

  /** Starts an incident in `<dir>/<serverDir>/.tmp-<dirName>/`. */
  async begin(server: string, startedAtMs: number, label: string): Promise<IncidentWriter> {
    const serverDir = serverDirName(server);
    const base = incidentDirName(startedAtMs, label);
    const parent = join(this.dir, serverDir);
    let tmpPath = parent;
    try {
      await mkdir(parent, { recursive: true });
      for (let n = 0; n < MAX_SUFFIX; n++) {
        const dirName = n === 0 ? base : `${base}-${n}`;
        tmpPath = join(parent, `${TMP_PREFIX}${dirName}`);
        try {
          await mkdir(tmpPath);
        } catch (err) {
          if (errCode(err) === 'EEXIST') continue; // another capture of the same millisecond and label
          throw err;
        }
        const writer = new Writer(
          this.dir,
          server,
          serverDir,
          dirName,
          tmpPath,
          (w) => this.#active.delete(w),
          (entry) => {
            this.#indexAdd(entry);
            this.#onCommit?.(entry.id);
          },
          this.#pageUrl,
        );
        this.#active.add(writer);
        return writer;
      }
      throw new Error(`${MAX_SUFFIX} incidents named ${base} are in progress`);
    } catch (err) {
      throw new StorageError(`cannot start an incident in ${tmpPath}: ${describeError(err)}`, tmpPath, { cause: err });
    }
  }

  /**
   * Complete incidents (never `.tmp-*`), newest first, optionally of one server (name or dir name), from
   * the index (incidents written into the directory by another process appear after a restart).
   */
  async list(opts: { server?: string } = {}): Promise<IncidentEntry[]> {
    return [...(await this.#newestFirst(opts.server))];
  }

  /**
   * One page of list(): up to `limit` incidents that pass the filter, after the one with id `before` (from
   * the start without it). The filter reads the index only; only the page's directories are checked (one
   * lstat each); one deleted by someone else is dropped from the index and the page fills up from the next.
   * `next` is null when no later incident passes the filter. Undefined when `before` is not listed (of its
   * server, when `server` is given; `before` itself need not pass the other filters).
   */
  async page(opts: IncidentFilter & { before?: string; limit: number }): Promise<IncidentPage | undefined> {
    const all = await this.#newestFirst(opts.server);
    const match = matcher(opts);
    let i = pageStart(all, opts.before);
    if (i === undefined) return undefined;
    const incidents: IncidentEntry[] = [];
    for (; i < all.length && incidents.length < opts.limit; i++) {
      const e = all[i] as IncidentEntry;
      if (match !== undefined && !match(e)) continue;
      if (await this.present(e)) incidents.push(e);
    }
    // Is there a next page? Without a filter any later incident makes one; with one, a later match must.
    while (match !== undefined && i < all.length && !match(all[i] as IncidentEntry)) i++;
    const more = i < all.length;
    return { incidents, next: more ? (incidents[incidents.length - 1]?.id ?? null) : null };
  }

  /**
   * Whether a listed incident's directory is still there (one lstat). One deleted outside the daemon is
   * dropped from the index and logged, so it is not listed again. (Dropping makes a new sorted list; an
   * array the caller iterates is not changed.)
   */
  async present(e: IncidentEntry): Promise<boolean> {
    if (await this.#exists(e)) return true;
    this.#indexDrop(e.id);
    this.#log.info({ id: e.id, path: e.path }, 'an incident directory was deleted outside the daemon; dropped from the list');
    return false;
  }

  async #scan(server: string | undefined, withManifests: boolean): Promise<IncidentEntry[]> {
    const wanted = server === undefined ? undefined : serverDirName(server);
    let serverDirs: string[];
    try {
      serverDirs = (await readdir(this.dir, { withFileTypes: true }))
        .filter((e) => e.isDirectory() && isSafeSegment(e.name) && (wanted === undefined || e.name === wanted))
        .map((e) => e.name);
    } catch (err) {
      if (isMissing(err)) return [];
      throw new StorageError(`cannot list ${this.dir}: ${describeError(err)}`, this.dir, { cause: err });
    }

    const candidates: { serverDir: string; dirName: string; startedAtMs: number }[] = [];
    for (const serverDir of serverDirs) {
      const serverPath = join(this.dir, serverDir);
      let entries;
      try {
        entries = await readdir(serverPath, { withFileTypes: true });
      } catch (err) {
        if (isMissing(err)) continue; // removed meanwhile
        throw new StorageError(`cannot list ${serverPath}: ${describeError(err)}`, serverPath, { cause: err });
      }
      for (const e of entries) {
        if (!e.isDirectory()) continue;
        const parsed = parseIncidentDirName(e.name); // also skips .tmp-* and foreign dirs
        if (parsed) candidates.push({ serverDir, dirName: e.name, startedAtMs: parsed.startedAtMs });
      }
    }

    const read = await mapLimit(candidates, LIST_CONCURRENCY, async (c): Promise<IncidentEntry | undefined> => {
      const path = join(this.dir, c.serverDir, c.dirName);
      try {
        let bytes = 0;
        for (const f of await readdir(path, { withFileTypes: true })) {
          if (f.isFile()) bytes += (await stat(join(path, f.name))).size;
        }
        const manifest = withManifests ? await this.#readManifest(join(path, MANIFEST_FILE)) : undefined;
        const summary = manifest ? summaryOf(manifest) : undefined;
        return {
          id: incidentId(c.serverDir, c.dirName),
          server: manifest?.server.name ?? c.serverDir,
          serverDir: c.serverDir,
          dirName: c.dirName,
          path,
          startedAtMs: c.startedAtMs,
          bytes,
          summary,
        };
      } catch (err) {
        if (isMissing(err)) return undefined; // pruned while we looked
        throw new StorageError(`cannot read incident ${path}: ${describeError(err)}`, path, { cause: err });
      }
    });

    return read
      .filter((e): e is IncidentEntry => e !== undefined)
      .sort(newestFirst);
  }

  /** undefined when missing or invalid (an invalid one is logged at warn); StorageError on other I/O errors. */
  async #readManifest(path: string): Promise<IncidentManifest | undefined> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw new StorageError(`cannot read ${path}: ${describeError(err)}`, path, { cause: err });
    }
    let manifest: IncidentManifest | undefined;
    try {
      manifest = parseManifest(JSON.parse(text));
    } catch {
      manifest = undefined;
    }
    if (!manifest) this.#log.warn({ path }, 'ignoring an invalid incident manifest');
    return manifest;
  }

  /** The manifest of one incident, or undefined for an unknown or invalid id or an unreadable manifest. */
  async read(id: string): Promise<IncidentManifest | undefined> {
    const parsed = parseIncidentId(id);
    if (!parsed) return undefined;
    return this.#readManifest(join(this.dir, parsed.serverDir, parsed.dirName, MANIFEST_FILE));
  }

  /**
   * Absolute path of `file` of incident `id`, only when the id is valid and the file is incident.json
   * or listed in the manifest's `files`. Does not check that the file still exists.
   */
  async resolveFile(id: string, file: string): Promise<string | undefined> {
    const parsed = parseIncidentId(id);
    if (!parsed || !isSafeSegment(file)) return undefined;
    const manifest = await this.read(id);
    if (!manifest) return undefined;
    if (file !== MANIFEST_FILE && !manifest.files.includes(file)) return undefined;
    return join(this.dir, parsed.serverDir, parsed.dirName, file);
  }

  /** A readable stream of one file of an incident (same checks as resolveFile), with its size. */
  async openFile(id: string, file: string): Promise<{ stream: Readable; size: number } | undefined> {
    const path = await this.resolveFile(id, file);
    if (!path) return undefined;
    try {
      const st = await lstat(path);
      if (!st.isFile()) return undefined;
      return { stream: createReadStream(path), size: st.size };
    } catch {
      return undefined;
    }
  }

  /**
   * Deletes what planRetention decides for the current incidents. Each incident is first renamed to a
   * `.tmp-` name (so readers never see half of one, and init() finishes an interrupted delete), then
   * removed. Incidents in progress are protected.
   */
  async prune(policy: RetentionPolicy, nowMs: number = this.#clock.now()): Promise<PruneResult> {
    const byId = new Map(await this.#ensureIndex());
    const entries = [...byId.values()];
    const protect = new Set([...this.#active].map((w) => w.id));
    // Not uploaded yet: the local copy is the only one (they still count toward the limits).
    for (const id of this.#keep?.() ?? []) protect.add(id);
    const plan = planRetention(
      entries.map((e) => ({ id: e.id, server: e.serverDir, startedAtMs: e.startedAtMs, bytes: e.bytes })),
      policy,
      nowMs,
      protect,
    );
    const failures: { path: string; err: unknown }[] = [];
    for (const d of plan.delete) {
      const entry = byId.get(d.id);
      if (entry) await this.#delete(entry, d.reason, failures);
    }
    const first = failures[0];
    if (first) {
      throw new StorageError(
        `retention could not delete ${failures.length} of ${plan.delete.length} incidents; first ${first.path}: ${describeError(first.err)}`,
        first.path,
        { cause: first.err },
      );
    }
    return { deleted: plan.delete, totalBytes: plan.keptBytes, incidents: plan.keptIncidents };
  }

  /**
   * Deletes one incident (retention of the shared object store deleted it there: the local copy goes too).
   * False when there is no such incident or it is being written. Throws StorageError when it cannot.
   */
  async remove(id: string, reason: string): Promise<boolean> {
    const entry = (await this.#ensureIndex()).get(id);
    if (!entry || [...this.#active].some((w) => w.id === id)) return false;
    const failures: { path: string; err: unknown }[] = [];
    await this.#delete(entry, reason, failures);
    const first = failures[0];
    if (first) throw new StorageError(`cannot delete ${first.path}: ${describeError(first.err)}`, first.path, { cause: first.err });
    return true;
  }

  /** Renames the incident to a `.tmp-` name (readers never see half of one; init() finishes an interrupted delete), then removes it. */
  async #delete(entry: IncidentEntry, reason: string, failures: { path: string; err: unknown }[]): Promise<void> {
    const doomed = join(this.dir, entry.serverDir, `${TMP_PREFIX}deleting-${entry.dirName}`);
    try {
      await rename(entry.path, doomed);
    } catch (err) {
      if (isMissing(err)) this.#indexDrop(entry.id); // someone else deleted it
      else failures.push({ path: entry.path, err });
      return;
    }
    // Gone from readers' view with the rename; a failed rm leaves a .tmp- dir that init() removes.
    this.#indexDrop(entry.id);
    try {
      await rm(doomed, { recursive: true, force: true });
      this.#log.info({ id: entry.id, reason, bytes: entry.bytes }, 'deleted an incident (retention)');
    } catch (err) {
      failures.push({ path: entry.path, err });
    }
  }
}
