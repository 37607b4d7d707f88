/**
 * Turns a CaptureRequest into an incident on disk: admission (one incident per server at a time, the
 * global rate limit), profiles taken through the chosen path with at most `max_concurrent` in flight,
 * then the manifest, the atomic commit, and retention. Each profile (fetch, busy-CPU retry, write, summary)
 * and the manifest go through incident-capture.ts, the path the one-shot CLI uses too.
 */
import type { Clock } from '../clock.js';
import type { CaptureConfig, ProfileName } from '../config/types.js';
import { CaptureError, describeError, StorageError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics, SkipReason } from '../metrics/registry.js';
import type { IncidentStore, IncidentWriter } from '../store/incident-store.js';
import type { IncidentManifest, ProfileResult } from '../store/manifest.js';
import { incidentDirName, incidentId, serverDirName } from '../store/naming.js';
import type { RetentionPolicy } from '../store/retention.js';
import type { PprofClient } from './http-pprof.js';
import type { FindChanges } from '../insight/changes.js';
import { buildManifest, captureProfile, describeChanges, failedProfile, type Summarize } from './incident-capture.js';
import { choosePath, type Path } from './paths.js';
import { parseProfilezReply, profilezRequest, profilezSubject } from './profilez.js';
import type { CaptureRequest } from './request.js';
import { readWhole, snapshotDelta, type AllocsDelta } from './allocs-delta.js';
import { allocsDelta as allocsDeltaInProcess } from '../insight/delta.js';

/** What the capturer needs from the system-account connection. */
export interface ProfilezRequester {
  readonly connected: boolean;
  request(subject: string, body: string, opts: { timeoutMs: number; signal?: AbortSignal }): Promise<{ data: Uint8Array }>;
}

export interface CapturerOptions {
  config: CaptureConfig;
  retention: RetentionPolicy;
  store: IncidentStore;
  /** Undefined when no system_account is configured. */
  systemAccount: ProfilezRequester | undefined;
  pprof: Pick<PprofClient, 'open'>;
  metrics: Metrics;
  log: Logger;
  clock: Clock;
  /** Summarises a captured profile off the event loop (App passes its ProfileWorker). */
  summarize: Summarize;
  /** What grew since the previous incident of the server (manifest `profiles[].changes`). */
  changes?: FindChanges;
  /** allocs_delta's subtraction off the event loop (App passes its ProfileWorker's allocsDelta); default: in-process. */
  allocsDelta?: AllocsDelta;
  /**
   * Asked before an admitted incident writes anything (replicas: the fleet-wide lease and limit, src/coord/).
   * A refusal drops the incident: nothing is written, the skip is counted with the gate's reason.
   */
  gate?: CaptureGate;
  /** Told of each incident once it is written (App: the viewer prepares its page's answers). */
  onWritten?: (manifest: IncidentManifest) => void;
}

/** The answer of a CaptureGate: go ahead (`release` when the incident is over), or skip for `reason`. */
export type GateAnswer =
  | { readonly ok: true; readonly release: () => void }
  | { readonly ok: false; readonly reason: SkipReason; readonly message: string };

export interface CaptureGate {
  acquire(req: CaptureRequest): Promise<GateAnswer>;
}

export interface IncidentResult {
  id: string;
  path: string | undefined;
  manifest: IncidentManifest;
  /** Set when the gate refused the incident after admission: nothing was written. */
  skipped?: { reason: SkipReason; message: string };
}

/** The last incident admitted for a server (to answer an alert about a server a rule just captured). */
export interface RecentIncident {
  readonly id: string;
  /** When it was admitted (ms). */
  readonly at: number;
  readonly reason: CaptureRequest['reason'];
  readonly profiles: readonly ProfileName[];
  /** The rules that fired, for a trigger incident. */
  readonly triggers: readonly string[];
}

export type SubmitResult =
  | { readonly accepted: true; readonly id: string; readonly done: Promise<IncidentResult> }
  | { readonly accepted: false; readonly reason: SkipReason; readonly message: string };


export class Capturer {
  readonly #o: CapturerOptions;
  /** Incidents in progress by token (shutdown waits for them). */
  readonly #active = new Map<number, Promise<IncidentResult>>();
  /**
   * Servers whose profiles are being taken (by key, with the capture's token): "busy" means this, not "its
   * incident is not written yet", so that whoever sees an incident listed can capture its server again.
   */
  readonly #profiling = new Map<string, number>();
  #token = 0;
  /** Start times of incidents inside the limit window. */
  #starts: number[] = [];
  #slotsFree: number;
  readonly #waiting: (() => void)[] = [];
  readonly #abort = new AbortController();
  readonly #warnedUnsupported = new Set<string>();
  readonly #recent = new Map<string, RecentIncident>();
  #stopping = false;
  #pruning: Promise<void> = Promise.resolve();

  readonly #summarize: Summarize;

  constructor(o: CapturerOptions) {
    this.#o = o;
    this.#summarize = o.summarize;
    this.#slotsFree = o.config.maxConcurrent;
  }

  /** Replaces limits after a reload; in-flight captures keep the settings they started with. */
  updateConfig(config: CaptureConfig, retention: RetentionPolicy): void {
    this.#slotsFree += config.maxConcurrent - this.#o.config.maxConcurrent;
    this.#o.config = config;
    this.#o.retention = retention;
    this.#drainWaiting();
  }

  /** A server is no longer watched: forget what was remembered about it (the once-only warnings). */
  forget(key: string): void {
    this.#recent.delete(key);
    for (const k of this.#warnedUnsupported) if (k.startsWith(`${key}|`)) this.#warnedUnsupported.delete(k);
  }

  /** The last incident admitted for a server (by inventory key), if any. */
  recentIncident(key: string): RecentIncident | undefined {
    return this.#recent.get(key);
  }

  /** Keys of servers whose profiles are being taken. */
  get activeServers(): string[] {
    return [...this.#profiling.keys()];
  }

  /** Incidents left in the limit window right now. */
  remaining(now = this.#o.clock.now()): number {
    this.#trim(now);
    return Math.max(0, this.#o.config.limit.count - this.#starts.length);
  }

  #trim(now: number): void {
    const from = now - this.#o.config.limit.windowMs;
    if (this.#starts.length > 0 && (this.#starts[0] as number) <= from) this.#starts = this.#starts.filter((t) => t > from);
  }

  #skip(label: string, reason: SkipReason, message: string, count: boolean): SubmitResult {
    if (count) this.#o.metrics.capturesSkipped.inc({ server: label, reason });
    return { accepted: false, reason, message };
  }

  /**
   * Admits or refuses a request at once; an admitted one runs in the background (`done`). A refusal is
   * counted in `captures_skipped_total` unless `countSkip` is false (the rule flow counts one per episode).
   */
  submit(req: CaptureRequest, opts: { countSkip?: boolean } = {}): SubmitResult {
    const { log, clock } = this.#o;
    const label = req.target.label;
    const count = opts.countSkip ?? true;
    if (this.#stopping) return { accepted: false, reason: 'busy', message: 'the daemon is shutting down' };
    if (this.#profiling.has(req.target.key)) {
      return this.#skip(label, 'busy', `server ${label} is already being captured`, count);
    }
    const sys = this.#o.systemAccount;
    const sysState = sys === undefined ? 'none' : sys.connected ? 'up' : 'down';
    const plans = req.profiles.map((p) => ({ profile: p, choice: choosePath(p, req.target, this.#o.config.via, sysState) }));
    if (plans.every((p) => !p.choice.ok)) {
      const why = plans.map((p) => `${p.profile}: ${p.choice.ok ? '' : p.choice.why}`).join('; ');
      const key = `${req.target.key}|${req.profiles.join(',')}`;
      if (!this.#warnedUnsupported.has(key)) {
        this.#warnedUnsupported.add(key);
        log.warn({ server: label, profiles: req.profiles }, `cannot capture from this server: ${why}`);
      }
      return this.#skip(label, 'unsupported', `no way to capture from ${label}: ${why}`, count);
    }
    const now = clock.now();
    this.#trim(now);
    if (this.#starts.length >= this.#o.config.limit.count) {
      return this.#skip(
        label,
        'limit',
        `capture.limit reached: ${this.#o.config.limit.count} incidents in ${Math.round(this.#o.config.limit.windowMs / 1000)}s`,
        count,
      );
    }
    this.#starts.push(now);
    const label2 = req.reason === 'trigger' ? (req.trigger?.name ?? 'trigger') : req.reason;
    const id = incidentId(serverDirName(label), incidentDirName(now, label2));
    const key = req.target.key;
    const token = ++this.#token;
    const freeServer = (): void => {
      if (this.#profiling.get(key) === token) this.#profiling.delete(key);
    };
    this.#profiling.set(key, token);
    const done = this.#gated(req, now, label2, plans, freeServer).finally(() => {
      freeServer();
      this.#active.delete(token);
    });
    this.#active.set(token, done);
    this.#recent.set(req.target.key, {
      id,
      at: now,
      reason: req.reason,
      profiles: req.profiles,
      triggers: req.triggers?.map((t) => t.name) ?? (req.trigger ? [req.trigger.name] : []),
    });
    return { accepted: true, id, done };
  }

  async #slot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#slotsFree <= 0) await new Promise<void>((r) => this.#waiting.push(r));
    else this.#slotsFree--;
    try {
      return await fn();
    } finally {
      this.#slotsFree++;
      this.#drainWaiting();
    }
  }

  #drainWaiting(): void {
    while (this.#slotsFree > 0 && this.#waiting.length > 0) {
      this.#slotsFree--;
      (this.#waiting.shift() as () => void)();
    }
  }

  /** The gate (when there is one) first; a refused incident writes nothing and gives back its limit slot. */
  async #gated(
    req: CaptureRequest,
    startedAt: number,
    dirLabel: string,
    plans: { profile: ProfileName; choice: ReturnType<typeof choosePath> }[],
    freeServer: () => void,
  ): Promise<IncidentResult> {
    const gate = this.#o.gate;
    if (!gate) return this.#run(req, startedAt, dirLabel, plans, freeServer);
    const g: GateAnswer = await gate.acquire(req).catch((err: unknown) => ({ ok: false, reason: 'held_elsewhere', message: `the capture gate failed: ${describeError(err)}` }));
    if (g.ok) {
      try {
        return await this.#run(req, startedAt, dirLabel, plans, freeServer);
      } finally {
        g.release();
      }
    }
    const label = req.target.label;
    this.#o.metrics.capturesSkipped.inc({ server: label, reason: g.reason });
    this.#o.log.info({ server: label, reason: g.reason, trigger: req.trigger?.name }, `capture skipped: ${g.message}`);
    const i = this.#starts.indexOf(startedAt);
    if (i >= 0) this.#starts.splice(i, 1);
    if (this.#recent.get(req.target.key)?.at === startedAt) this.#recent.delete(req.target.key);
    const id = incidentId(serverDirName(label), incidentDirName(startedAt, dirLabel));
    const results = plans.map((p) => failedProfile(p.profile, null, `not captured: ${g.message}`, 0));
    const manifest = buildManifest({ id, req, startedAt, finishedAt: this.#o.clock.now(), results, files: [], storageFailed: false });
    return { id, path: undefined, manifest, skipped: { reason: g.reason, message: g.message } };
  }

  async #run(
    req: CaptureRequest,
    startedAt: number,
    dirLabel: string,
    plans: { profile: ProfileName; choice: ReturnType<typeof choosePath> }[],
    /** Called when the server is no longer asked for anything (before the incident is written). */
    freeServer: () => void,
  ): Promise<IncidentResult> {
    const { store, log, metrics, clock } = this.#o;
    const label = req.target.label;
    const signal = this.#abort.signal;
    let writer: IncidentWriter | undefined;
    const files: string[] = [];
    let results: ProfileResult[];
    let storageFailure: string | undefined;
    try {
      writer = await store.begin(label, startedAt, dirLabel);
      files.push(...(await this.#writeSnapshot(writer, req)));
      const w = writer;
      results = await Promise.all(
        plans.map((p) =>
          p.choice.ok
            ? this.#slot(() => this.#captureProfile(w, req, p.profile, p.choice.ok ? p.choice.via : 'prof_port', signal))
            : Promise.resolve(failedProfile(p.profile, null, p.choice.why, 0)),
        ),
      );
    } catch (err) {
      storageFailure = describeError(err);
      results = plans.map((p) => failedProfile(p.profile, null, `not captured: ${storageFailure}`, 0));
    }
    freeServer();
    const manifest = buildManifest({
      id: writer?.id ?? incidentId(serverDirName(label), incidentDirName(startedAt, dirLabel)),
      req,
      startedAt,
      finishedAt: clock.now(),
      results,
      files,
      storageFailed: storageFailure !== undefined,
    });
    let path: string | undefined;
    let pageUrl: string | undefined;
    if (writer && storageFailure === undefined) {
      try {
        const c = await writer.commit(manifest);
        manifest.id = c.id;
        path = c.path;
        pageUrl = c.pageUrl;
      } catch (err) {
        storageFailure = describeError(err);
        manifest.status = 'failed';
        await writer.abort().catch(() => undefined);
      }
    } else if (writer) {
      await writer.abort().catch(() => undefined);
    }
    metrics.incidents.inc({ status: manifest.status });
    if (storageFailure !== undefined) {
      metrics.storageErrors.inc();
      log.error({ server: label, incident: manifest.id, err: storageFailure }, 'incident could not be written');
    } else {
      const grew = describeChanges(results);
      log.info(
        {
          server: label,
          incident: manifest.id,
          reason: req.reason,
          trigger: req.trigger?.name,
          value: req.trigger?.value,
          path,
          ...(pageUrl !== undefined ? { page_url: pageUrl } : {}),
          status: manifest.status,
          profiles: results.map((r) => ({ name: r.name, file: r.file, top: r.top[0]?.function ?? null, error: r.error })),
          ...(grew ? { grew } : {}),
        },
        `incident written: ${path}${grew ? `; grew since the previous incident: ${grew}` : ''}`,
      );
      this.#o.onWritten?.(manifest);
      this.#schedulePrune();
    }
    // A name collision gives the incident a suffixed id at commit: keep the answer to alerts exact.
    const recent = this.#recent.get(req.target.key);
    if (recent && recent.at === startedAt && recent.id !== manifest.id) this.#recent.set(req.target.key, { ...recent, id: manifest.id });
    return { id: manifest.id, path, manifest };
  }

  /**
   * varz.json for the incident: the polled document, or for a discovered server the STATSZ reply that
   * crossed the line (statsz.json) plus a fresh varz asked over the system account.
   */
  async #writeSnapshot(writer: IncidentWriter, req: CaptureRequest): Promise<string[]> {
    const snap = req.target.snapshot;
    if (!snap) return [];
    if (snap.kind === 'varz') {
      await writer.writeFile('varz.json', snap.body);
      return ['varz.json'];
    }
    await writer.writeFile('statsz.json', snap.body);
    const sys = this.#o.systemAccount;
    if (!sys?.connected || !req.target.serverId) return ['statsz.json'];
    try {
      const msg = await sys.request(`$SYS.REQ.SERVER.${req.target.serverId}.VARZ`, '', { timeoutMs: this.#o.config.timeoutMs });
      const doc = JSON.parse(Buffer.from(msg.data).toString('utf8')) as { data?: unknown };
      if (typeof doc.data !== 'object' || doc.data === null) return ['statsz.json'];
      await writer.writeFile('varz.json', JSON.stringify(doc.data, null, 2));
      return ['statsz.json', 'varz.json'];
    } catch (err) {
      if (err instanceof StorageError) throw err;
      this.#o.log.debug({ server: req.target.label, err: describeError(err) }, 'varz over the system account failed; statsz.json only');
      return ['statsz.json'];
    }
  }

  async #captureProfile(writer: IncidentWriter, req: CaptureRequest, profile: ProfileName, via: Path, signal: AbortSignal): Promise<ProfileResult> {
    const { metrics, log, clock, config } = this.#o;
    const label = req.target.label;
    const started = performance.now();
    const cpuMs = req.cpuDurationMs;
    const timeoutMs = profile === 'cpu' ? cpuMs + config.timeoutMs : config.timeoutMs;
    const result = await captureProfile({
      writer,
      server: label,
      profile,
      via,
      fetch: async (sig) => {
        if (profile === 'allocs_delta') return { bytes: await this.#allocsDelta(req, via, sig) };
        if (via === 'system_account') {
          const sys = this.#o.systemAccount;
          if (!sys) throw new CaptureError('no system account', 'unsupported', {});
          if (!req.target.serverId) throw new CaptureError('server_id unknown', 'unsupported', {});
          const msg = await sys.request(profilezSubject(req.target.serverId), profilezRequest(profile, cpuMs), { timeoutMs, signal: sig });
          return { bytes: parseProfilezReply(msg.data, { server: label, profile }) };
        }
        const profUrl = req.target.profUrl;
        if (!profUrl) throw new CaptureError('no prof_url', 'unsupported', {});
        return { stream: await this.#o.pprof.open(profUrl, profile, cpuMs, { timeoutMs, signal: sig }) };
      },
      maxBytes: config.maxProfileBytes,
      // CPU conflicts are retried until the time this profile was allowed would have run out.
      retryBusyUntil: profile === 'cpu' ? clock.now() + cpuMs + config.timeoutMs : 0,
      abortedMessage: 'aborted: the daemon was stopped (shutdown_timeout reached) before this profile was complete',
      signal,
      clock,
      summarize: this.#summarize,
      changes: this.#o.changes,
      log,
    });
    const seconds = (performance.now() - started) / 1000;
    if (result.error === null) {
      metrics.captures.inc({ server: label, profile, via, result: 'ok' });
      metrics.lastCapture.set({ server: label, profile }, clock.now() / 1000);
    } else {
      metrics.captures.inc({ server: label, profile, via, result: 'error' });
      log.warn({ server: label, profile, via, err: result.error }, 'profile capture failed');
    }
    metrics.captureDuration.observe({ profile, via }, seconds);
    return result;
  }

  /** allocs_delta over `capture.allocs_window`: Go's delta through prof_port, two PROFILEZ snapshots subtracted otherwise. */
  async #allocsDelta(req: CaptureRequest, via: Path, signal: AbortSignal): Promise<Uint8Array> {
    const { config, clock } = this.#o;
    const windowMs = config.allocsWindowMs;
    const subtract: AllocsDelta = this.#o.allocsDelta ?? (async (b, a, w) => allocsDeltaInProcess(b, a, w));
    const label = req.target.label;
    if (via === 'system_account') {
      const sys = this.#o.systemAccount;
      const serverId = req.target.serverId;
      if (!sys || !serverId) throw new CaptureError('no system account or server_id unknown', 'unsupported', {});
      const snapshot = async (sig: AbortSignal): Promise<Uint8Array> => {
        const msg = await sys.request(profilezSubject(serverId), profilezRequest('allocs_delta', 0), { timeoutMs: config.timeoutMs, signal: sig });
        return parseProfilezReply(msg.data, { server: label, profile: 'allocs_delta' });
      };
      return snapshotDelta({ snapshot, windowMs, clock, signal, subtract });
    }
    const profUrl = req.target.profUrl;
    if (!profUrl) throw new CaptureError('no prof_url', 'unsupported', {});
    // The server answers after the window: the request's timeout is the window plus the usual one, like cpu's.
    const stream = await this.#o.pprof.open(profUrl, 'allocs_delta', windowMs, { timeoutMs: windowMs + config.timeoutMs, signal });
    return subtract(undefined, await readWhole(stream, config.maxProfileBytes), windowMs);
  }

  #schedulePrune(): void {
    this.#pruning = this.#pruning.then(() => this.prune()).catch(() => undefined);
  }

  /** Applies retention now. Errors are logged and counted, never thrown. */
  async prune(): Promise<void> {
    const { store, metrics, log, clock } = this.#o;
    try {
      const r = await store.prune(this.#o.retention, clock.now());
      if (r.deleted.length > 0) {
        metrics.retentionDeleted.inc(r.deleted.length);
        log.info({ deleted: r.deleted }, `retention deleted ${r.deleted.length} incident(s)`);
      }
      metrics.storageBytes.set(r.totalBytes);
      metrics.storageIncidents.set(r.incidents);
    } catch (err) {
      metrics.storageErrors.inc();
      log.error({ err: describeError(err) }, 'retention failed');
    }
  }

  /**
   * Stops admitting, waits for incidents in progress up to `deadlineMs`, then aborts the rest (they are
   * written with the abort recorded, or removed if that is impossible). Idempotent.
   */
  async stop(deadlineMs: number): Promise<void> {
    this.#stopping = true;
    const inFlight = [...this.#active.values()];
    if (inFlight.length > 0) {
      const all = Promise.allSettled(inFlight);
      const cancelTimer = new AbortController();
      const timedOut = await Promise.race([
        all.then(() => false),
        this.#o.clock.sleep(deadlineMs, cancelTimer.signal).then(
          () => true,
          () => false,
        ),
      ]);
      cancelTimer.abort();
      if (timedOut) {
        this.#o.log.warn({ incidents: inFlight.length }, 'shutdown timeout reached; aborting captures in progress');
        this.#abort.abort(new CaptureError('the daemon is shutting down', 'aborted', {}));
        await all;
      }
    }
    await this.#pruning;
  }
}
