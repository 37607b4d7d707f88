/**
 * Incidents shared through an object store (issue 17, guarantee 5): the uploader and the shared reader.
 *
 * Upload: an incident is committed to the local disk as always, then uploaded one object per file,
 * `incident.json` LAST (upload-plan.ts); a reader lists only incidents whose manifest object exists, so it
 * never sees half of one. Once uploaded, a marker `<dir>/.uploaded/<id>` holding the bucket's name records
 * it; a start uploads every local incident without a marker for this bucket. A failed upload is retried with
 * backoff (1 s doubling to 60 s), counted, logged once per incident; local retention never deletes an
 * incident that waits.
 *
 * Read: the API lists the union of the local index and the bucket's complete incidents (their manifests read
 * only when a page gets to them); a file that is not on the local disk is downloaded once into
 * `<dir>/.remote/<id>/<file>` (temp name, then rename) and served from there. `followBucket`, at every
 * retention interval, drops the local copies and downloads of what bucket retention deleted.
 */
import { createReadStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';

import { describeError, UnavailableError } from '../errors.js';
import { matcher, newestFirst, pageStart, summaryOf, type IncidentEntry, type IncidentFilter, type IncidentPage, type IncidentStore } from './incident-store.js';
import type { IncidentManifest } from './manifest.js';
import { parseManifest } from './manifest.js';
import { isSafeSegment, MANIFEST_FILE, parseIncidentId, serverDirName } from './naming.js';
import type { RetentionPolicy } from './retention.js';
import { completeIncidents, objectName, pendingUploads, planBucketRetention, retryDelayMs, uploadOrder, type BucketIncident, type BucketObject } from './upload-plan.js';

/** What the sync needs of the object store (src/coord/incident-bucket.ts implements it over JetStream). */
export interface IncidentBucket {
  /** The bucket's name (written into upload markers). */
  readonly name: string;
  put(name: string, data: Uint8Array): Promise<void>;
  /** undefined when the object does not exist. */
  get(name: string): Promise<Uint8Array | undefined>;
  list(): Promise<BucketObject[]>;
  delete(name: string): Promise<void>;
  /** Runs `fn` while this replica holds the lease `key`; false (fn not run) when another replica holds it. */
  withLease(key: string, fn: () => Promise<void>): Promise<boolean>;
}

export type UploadResult = 'ok' | 'error' | 'gone';

export interface IncidentSyncOptions {
  store: IncidentStore;
  bucket: IncidentBucket;
  log: Logger;
  /** Counts one upload attempt by result. */
  onUpload: (result: UploadResult) => void;
  /** Counts incidents deleted from the bucket by retention. */
  onBucketDeleted?: (n: number) => void;
  /** How long a bucket listing is reused by the API (a listing reads every object's info). */
  listCacheMs?: number;
  /** Most time between two attempts of one upload. */
  maxRetryMs?: number;
}

const UPLOADED_DIR = '.uploaded';
/** Bucket manifests a page reads at once (each is one object get). */
const MANIFEST_PREFETCH = 16;
const REMOTE_DIR = '.remote';

/** A bucket call that failed: the object may well exist, so the answer is "not now" (HTTP 503), not "not found". */
function unavailable(err: unknown): never {
  throw new UnavailableError(`the object store of incidents cannot be reached right now (${describeError(err)}); try again shortly`, {}, { cause: err });
}

export class IncidentSync {
  readonly #o: IncidentSyncOptions;
  /** Waiting incidents by id, with their attempts so far. */
  readonly #pending = new Map<string, number>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  #running: Promise<void> = Promise.resolve();
  #stopped = false;
  #listing: { at: number; incidents: Promise<BucketIncident[]> } | undefined;
  /** Ids uploaded to this bucket (their markers), once read: see #uploadedHere. */
  #uploaded: Set<string> | undefined;
  /** Manifests of bucket incidents (immutable once uploaded). */
  readonly #manifests = new Map<string, IncidentManifest>();

  constructor(o: IncidentSyncOptions) {
    this.#o = o;
  }

  get #dir(): string {
    return this.#o.store.dir;
  }

  /** Ids that wait for an upload: local retention must keep them. */
  pending(): ReadonlySet<string> {
    return new Set(this.#pending.keys());
  }

  /** Queues every local incident without an upload marker (incidents of an earlier run included). */
  async start(): Promise<void> {
    const uploaded = new Set(await this.#uploadedHere());
    const waiting = pendingUploads(await this.#o.store.list(), uploaded);
    if (waiting.length > 0) this.#o.log.info({ count: waiting.length }, `${waiting.length} incident(s) wait for their upload to the object store`);
    for (const id of waiting) this.enqueue(id);
  }

  /** Queues one committed incident for upload. */
  enqueue(id: string): void {
    if (this.#stopped || this.#pending.has(id)) return;
    this.#pending.set(id, 0);
    this.#schedule(id, 0);
  }

  #schedule(id: string, delayMs: number): void {
    const t = setTimeout(() => {
      this.#timers.delete(id);
      // One upload at a time: a burst of incidents does not flood the connection.
      this.#running = this.#running.then(() => this.#attempt(id));
    }, delayMs);
    t.unref();
    this.#timers.set(id, t);
  }

  /** Resolves when no upload is queued or running (tests, shutdown). */
  async idle(): Promise<void> {
    for (;;) {
      const r = this.#running;
      await r;
      if (r === this.#running && this.#timers.size === 0) return;
      if (this.#timers.size > 0) await new Promise((res) => setTimeout(res, 50));
    }
  }

  async #attempt(id: string): Promise<void> {
    if (this.#stopped || !this.#pending.has(id)) return;
    const attempt = (this.#pending.get(id) ?? 0) + 1;
    this.#pending.set(id, attempt);
    try {
      const result = await this.upload(id);
      this.#o.onUpload(result);
      this.#pending.delete(id);
      if (result === 'gone') this.#o.log.warn({ id }, 'an incident waiting for its upload was deleted from the local disk; not uploaded');
      else if (attempt > 1) this.#o.log.info({ id, attempts: attempt }, 'incident uploaded to the object store after retries');
    } catch (err) {
      this.#o.onUpload('error');
      const delayMs = retryDelayMs(attempt, this.#o.maxRetryMs);
      // Once per incident: a long outage does not log every retry.
      if (attempt === 1) this.#o.log.warn({ id, err: describeError(err), retry_in_ms: delayMs }, 'incident upload to the object store failed; the local copy is kept and the upload retried');
      if (!this.#stopped) this.#schedule(id, delayMs);
    }
  }

  /**
   * Uploads one local incident, the manifest last, then writes its marker. 'gone' when the incident is no
   * longer on the local disk. Re-uploading an object replaces it: an interrupted upload is simply done again.
   */
  async upload(id: string): Promise<UploadResult> {
    const parsed = parseIncidentId(id);
    if (!parsed) return 'gone';
    const path = join(this.#dir, parsed.serverDir, parsed.dirName);
    let manifestBytes: Buffer;
    try {
      manifestBytes = await readFile(join(path, MANIFEST_FILE));
    } catch {
      return 'gone';
    }
    const manifest = parseManifest(JSON.parse(manifestBytes.toString('utf8')));
    if (!manifest) return 'gone';
    // The manifest last: a reader lists an incident only once its manifest object exists.
    for (const file of uploadOrder(manifest.files.filter(isSafeSegment))) {
      await this.#o.bucket.put(objectName(id, file), file === MANIFEST_FILE ? manifestBytes : await readFile(join(path, file)));
    }
    // The marker names the bucket: pointed at another bucket, the daemon uploads again rather than trusting it.
    await mkdir(join(this.#dir, UPLOADED_DIR), { recursive: true });
    await writeFile(join(this.#dir, UPLOADED_DIR, id), this.#o.bucket.name);
    this.#uploaded?.add(id);
    this.#listing = undefined;
    return 'ok';
  }

  /**
   * Retention over the bucket, by one replica at a time (the `retention` lease): complete incidents beyond
   * the policy go, each one's manifest first. Returns the number deleted, or undefined when another replica
   * held the lease.
   */
  async pruneBucket(policy: RetentionPolicy, nowMs: number): Promise<number | undefined> {
    let deleted = 0;
    const ran = await this.#o.bucket.withLease('retention', async () => {
      const { plan, deleteObjects } = planBucketRetention(await this.#o.bucket.list(), policy, nowMs);
      for (const name of deleteObjects) await this.#o.bucket.delete(name);
      deleted = plan.delete.length;
      for (const d of plan.delete) {
        this.#manifests.delete(d.id);
      }
      if (deleted > 0) this.#o.log.info({ deleted: plan.delete }, `bucket retention deleted ${deleted} incident(s)`);
    });
    this.#listing = undefined;
    if (ran && deleted > 0) this.#o.onBucketDeleted?.(deleted);
    return ran ? deleted : undefined;
  }

  /**
   * Ids with an upload marker for this bucket (markers of another bucket do not count). The markers are read
   * once; afterwards this process's uploads and deletions keep the set (reading 1,000 markers took ~0.3 s).
   */
  async #uploadedHere(): Promise<string[]> {
    if (this.#uploaded) return [...this.#uploaded];
    const dir = join(this.#dir, UPLOADED_DIR);
    await mkdir(dir, { recursive: true });
    const out = new Set<string>();
    for (const n of await readdir(dir)) {
      if (!parseIncidentId(n)) continue;
      const bucket = await readFile(join(dir, n), 'utf8').catch(() => undefined);
      if (bucket === this.#o.bucket.name) out.add(n);
    }
    this.#uploaded ??= out;
    return [...this.#uploaded];
  }

  /**
   * Follows the bucket's retention (run by whichever replica held the lease): an incident this replica
   * uploaded that is gone from the bucket is deleted here too, and downloaded copies of gone incidents leave
   * the cache. Markers are read BEFORE the listing, so an upload finishing meanwhile is never taken for a
   * deletion. Returns the ids deleted locally.
   */
  async followBucket(): Promise<string[]> {
    const uploaded = await this.#uploadedHere();
    const present = new Set(completeIncidents(await this.#o.bucket.list()).map((i) => i.id));
    this.#listing = undefined;
    const removed: string[] = [];
    for (const id of uploaded) {
      if (present.has(id)) continue;
      if (await this.#o.store.remove(id, 'object_store')) removed.push(id);
      await rm(join(this.#dir, UPLOADED_DIR, id), { force: true });
      this.#uploaded?.delete(id);
    }
    const cached = await readdir(join(this.#dir, REMOTE_DIR)).catch(() => [] as string[]);
    for (const id of cached) {
      if (present.has(id)) continue;
      this.#manifests.delete(id);
      await rm(join(this.#dir, REMOTE_DIR, id), { recursive: true, force: true });
    }
    for (const id of [...this.#manifests.keys()]) if (!present.has(id)) this.#manifests.delete(id);
    if (removed.length > 0) this.#o.log.info({ removed }, `${removed.length} incident(s) deleted from the object store by retention: deleted here too`);
    return removed;
  }

  /** The bucket's complete incidents, from a listing reused for listCacheMs. */
  async #bucketIncidents(): Promise<BucketIncident[]> {
    const now = performance.now();
    if (!this.#listing || now - this.#listing.at > (this.#o.listCacheMs ?? 2_000)) {
      const incidents = this.#o.bucket.list().then(completeIncidents);
      this.#listing = { at: now, incidents };
      // A failed listing is not reused; a newer one (started after an upload cleared this) is left alone.
      incidents.catch(() => {
        if (this.#listing?.incidents === incidents) this.#listing = undefined;
      });
    }
    return this.#listing.incidents;
  }

  async #remoteManifest(id: string): Promise<IncidentManifest | undefined> {
    const cached = this.#manifests.get(id);
    if (cached) return cached;
    const bytes = await this.#o.bucket.get(objectName(id, MANIFEST_FILE));
    if (!bytes) return undefined;
    let m: IncidentManifest | undefined;
    try {
      m = parseManifest(JSON.parse(Buffer.from(bytes).toString('utf8')));
    } catch {
      m = undefined;
    }
    if (m && m.id === id) this.#manifests.set(id, m);
    return m?.id === id ? m : undefined;
  }

  /**
   * Every incident this replica can serve, newest first: the local ones (with their summaries) and the
   * bucket's complete ones not on this disk (`remote`: their summaries are read from their manifests only
   * when a page gets to them, so that a first page does not read every manifest of the bucket).
   */
  async #all(): Promise<{ all: IncidentEntry[]; remote: Set<string>; inBucket: ReadonlyMap<string, IncidentEntry> }> {
    const local = await this.#o.store.list();
    const seen = new Set(local.map((e) => e.id));
    let listed: BucketIncident[] = [];
    try {
      listed = await this.#bucketIncidents();
    } catch (err) {
      // The bucket is unreachable: the local incidents are still listed (guarantee 7: never worse).
      this.#o.log.debug({ err: describeError(err) }, 'object store listing failed; listing the local incidents only');
    }
    const remote = new Set<string>();
    const extra: IncidentEntry[] = [];
    /** Every complete bucket incident as a remote entry, also those this disk has (in case its copy is gone). */
    const inBucket = new Map<string, IncidentEntry>();
    for (const r of listed) {
      const dirName = (parseIncidentId(r.id) as { dirName: string }).dirName;
      const e = { id: r.id, server: r.serverDir, serverDir: r.serverDir, dirName, path: join(this.#dir, REMOTE_DIR, r.id), startedAtMs: r.startedAtMs, bytes: r.bytes, summary: undefined };
      inBucket.set(r.id, e);
      if (seen.has(r.id)) continue;
      remote.add(r.id);
      extra.push(e);
    }
    return { all: [...local, ...extra].sort(newestFirst), remote, inBucket };
  }

  /** A bucket incident's entry with its server name and summary from its manifest; undefined when that cannot be read. */
  async #withSummary(e: IncidentEntry): Promise<IncidentEntry | undefined> {
    const m = await this.#remoteManifest(e.id).catch(() => undefined);
    return m ? { ...e, server: m.server.name, summary: summaryOf(m) } : undefined;
  }

  /** IncidentStore.page over every replica's incidents. */
  async page(opts: IncidentFilter & { before?: string; limit: number }): Promise<IncidentPage | undefined> {
    const { all: every, remote, inBucket } = await this.#all();
    const wanted = opts.server === undefined ? undefined : serverDirName(opts.server);
    const all = wanted === undefined ? every : every.filter((e) => e.serverDir === wanted);
    const filter = matcher(opts);
    /** The entry, summarised when it is a bucket incident, and whether it passes the filter. */
    const look = async (at: number): Promise<IncidentEntry | undefined> => {
      let e = all[at] as IncidentEntry;
      if (!remote.has(e.id) && !(await this.#o.store.present(e))) {
        // Its directory was deleted outside the daemon: the bucket's copy, if there is one.
        const b = inBucket.get(e.id);
        if (!b) return undefined;
        remote.add(b.id);
        e = b;
      }
      if (remote.has(e.id) && !this.#manifests.has(e.id)) {
        // Read the manifests of this and the next few bucket incidents together, not one round trip each.
        const ahead = all.slice(at, at + MANIFEST_PREFETCH).filter((x) => remote.has(x.id) && !this.#manifests.has(x.id));
        await Promise.all(ahead.map((x) => this.#remoteManifest(x.id).catch(() => undefined)));
      }
      const full = remote.has(e.id) ? await this.#withSummary(e) : e;
      return full && (filter === undefined || filter(full)) ? full : undefined;
    };
    let i = pageStart(all, opts.before);
    if (i === undefined) return undefined;
    const incidents: IncidentEntry[] = [];
    for (; i < all.length && incidents.length < opts.limit; i++) {
      const e = await look(i);
      if (e) incidents.push(e);
    }
    // Is there a next page? Only if a later incident passes.
    while (i < all.length && !(await look(i))) i++;
    return { incidents, next: i < all.length ? (incidents[incidents.length - 1]?.id ?? null) : null };
  }

  /** IncidentStore.read, else the bucket's manifest. */
  async read(id: string): Promise<IncidentManifest | undefined> {
    const local = await this.#o.store.read(id);
    if (local) return local;
    if (!parseIncidentId(id)) return undefined;
    return this.#remoteManifest(id).catch(unavailable);
  }

  /** IncidentStore.resolveFile; for an incident of another replica, the file downloaded into the cache. */
  async resolveFile(id: string, file: string): Promise<string | undefined> {
    const local = await this.#o.store.resolveFile(id, file);
    if (local !== undefined) return local;
    return this.#cached(id, file);
  }

  /** IncidentStore.openFile; for an incident of another replica, from the read-through cache. */
  async openFile(id: string, file: string): Promise<{ stream: Readable; size: number } | undefined> {
    const local = await this.#o.store.openFile(id, file);
    if (local) return local;
    const path = await this.#cached(id, file);
    if (!path) return undefined;
    const st = await lstat(path).catch(() => undefined);
    return st?.isFile() ? { stream: createReadStream(path), size: st.size } : undefined;
  }

  /** Downloads a file of a bucket incident once (written to a temp name, then renamed: never half a file). */
  async #cached(id: string, file: string): Promise<string | undefined> {
    if (!parseIncidentId(id) || !isSafeSegment(file)) return undefined;
    const m = await this.#remoteManifest(id).catch(unavailable);
    if (!m || (file !== MANIFEST_FILE && !m.files.includes(file))) return undefined;
    const dir = join(this.#dir, REMOTE_DIR, id);
    const path = join(dir, file);
    if (await lstat(path).then((s) => s.isFile(), () => false)) return path;
    const bytes = await this.#o.bucket.get(objectName(id, file)).catch(unavailable);
    if (!bytes) return undefined;
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `.tmp-${process.pid}-${Math.random().toString(36).slice(2)}-${file}`);
    await writeFile(tmp, bytes);
    await rename(tmp, path);
    return path;
  }

  /** Stops retrying (what waits is uploaded by the next start). Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    await this.#running.catch(() => undefined);
  }
}
