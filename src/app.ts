/**
 * Composition root: builds every component from a Config, wires the one-way flow (src/flow.ts)
 *   poll result / discovery round -> inventory -> trigger engine -> capturer -> incident store
 * (metrics read the inventory and the engine when scraped), starts them in order and stops them in reverse.
 * Reloads apply the plan computed by planReload (src/reload-plan.ts).
 */
import { systemClock, type Clock } from './clock.js';
import type { Config, ServerConfig } from './config/types.js';
import { uiRoutes } from './api/ui-routes.js';
import { HttpServer } from './api/http-server.js';
import { apiRoutes } from './api/routes.js';
import { viewerDataRoutes } from './api/viewer-data-routes.js';
import { InsightAnswers } from './api/insight-routes.js';
import { Capturer } from './capture/capturer.js';
import { isLoopbackUrl, PprofClient } from './capture/http-pprof.js';
import { SystemAccount } from './capture/nats-connection.js';
import { Coordinator } from './coord/coordinator.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics/registry.js';
import { ProfileWorker } from './insight/profile-worker.js';
import { changesFinder } from './insight/changes.js';
import { SUMMARY_MAX_BYTES } from './capture/incident-capture.js';
import { IncidentStore } from './store/incident-store.js';
import { IncidentSync } from './store/incident-sync.js';
import { JetStreamIncidentBucket } from './coord/incident-bucket.js';
import { CoordinationError } from './coord/buckets.js';
import { describeError } from './errors.js';
import { incidentPageUrl } from './store/page-url.js';
import { Flow } from './flow.js';
import { planReload } from './reload-plan.js';
import { TriggerEngine } from './trigger/engine.js';
import { Discovery } from './watch/discovery.js';
import { Inventory, type WatchedServer } from './watch/inventory.js';
import type { CaptureRequest } from './capture/request.js';
import { HttpPoller } from './watch/poller.js';
import { SampleRings } from './watch/sample-ring.js';
import { VarzClient } from './watch/varz.js';

export interface AppOptions {
  log: Logger;
  clock?: Clock;
}

export class App {
  #config: Config;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly inventory = new Inventory();
  readonly samples: SampleRings;
  readonly metrics: Metrics;
  readonly engine: TriggerEngine;
  readonly store: IncidentStore;
  readonly capturer: Capturer;
  readonly #varz: VarzClient;
  readonly #pprof = new PprofClient();
  readonly #profiles = new ProfileWorker();
  readonly #poller: HttpPoller;
  readonly #http: HttpServer;
  readonly #sys: SystemAccount | undefined;
  #retentionTimer: NodeJS.Timeout | undefined;
  readonly #discovery: Discovery | undefined;
  readonly #flow: Flow;
  /** Incidents shared through the object store (storage.object_store); undefined without it. */
  readonly #sync: IncidentSync | undefined;
  readonly #bucket: JetStreamIncidentBucket | undefined;
  #bucketPruneFailing = false;
  /** Replicas sharing the fleet (coordination:); undefined for a single daemon. */
  readonly #coord: Coordinator | undefined;
  /** Replicas: the servers another replica owns, known here so that alerts and manual captures about them are taken. */
  readonly #elsewhere: Inventory | undefined;
  #started = false;
  #stopped: Promise<void> | undefined;

  constructor(config: Config, o: AppOptions) {
    this.#config = config;
    this.#log = o.log;
    this.#clock = o.clock ?? systemClock;
    this.engine = new TriggerEngine(config.triggers);
    this.samples = new SampleRings({ historyMs: config.ui.historyMs });
    // Per-server series are read from the inventory and the engine at each scrape, not written per poll.
    this.metrics = new Metrics({ servers: () => this.inventory.values(), rules: () => this.engine.firing() });
    // An incident's manifest links its viewer page when http.external_url is set (read at each commit: a reload applies).
    this.store = new IncidentStore({ dir: config.storage.dir, log: this.#log.child({ component: 'store' }), clock: this.#clock, pageUrl: (id) => incidentPageUrl(this.#config.http.externalUrl, id),
      // With the object store: each commit is queued for upload, and retention keeps what waits for one.
      ...(config.storage.objectStore ? { onCommit: (id: string) => this.#sync?.enqueue(id), keep: () => this.#sync?.pending() ?? new Set<string>() } : {}) });
    this.#varz = new VarzClient();
    this.#poller = new HttpPoller({
      client: this.#varz,
      intervalMs: config.poll.intervalMs,
      timeoutMs: config.poll.timeoutMs,
      maxBodyBytes: config.poll.maxBodyBytes,
      maxInFlight: config.poll.maxInFlight,
      onResult: (r) => this.#flow.onPoll(r),
      log: this.#log.child({ component: 'poller' }),
      onError: () => this.metrics.internalErrors.inc({ where: 'poll' }),
    });
    if (config.systemAccount) {
      this.#sys = new SystemAccount({
        config: config.systemAccount,
        log: this.#log.child({ component: 'system_account' }),
        onConnectedChange: (c) => this.metrics.systemAccountConnected.set(c ? 1 : 0),
      });
    }
    if (this.#sys) {
      this.#discovery = new Discovery({
        requester: this.#sys,
        settings: () => {
          const c = this.#config;
          const sa = c.systemAccount;
          return sa?.discover ? { intervalMs: c.poll.intervalMs, timeoutMs: c.poll.timeoutMs, stallMs: sa.stallMs, select: sa.select } : undefined;
        },
        onRound: (r) => this.#flow.onDiscovery(r),
        log: this.#log.child({ component: 'discovery' }),
        onError: () => this.metrics.internalErrors.inc({ where: 'discovery' }),
      });
    }
    if (config.coordination) {
      const coord = new Coordinator({
        config: config.coordination,
        log: this.#log.child({ component: 'coordination' }),
        metrics: this.metrics,
        captureLimit: () => this.#config.capture.limit,
        ruleCooldownMs: (name) => this.#config.triggers.find((t) => t.name === name)?.cooldownMs,
        alertCooldownMs: () => this.#config.alerts.cooldownMs,
        ruleNames: () => this.#config.triggers.map((t) => t.name),
        onViewChange: () => this.#ownershipChanged(),
      });
      this.#coord = coord;
      this.#elsewhere = new Inventory();
      this.metrics.enableCoordination({ owned: () => this.inventory.size, secondsSinceContact: () => coord.secondsSinceContact() });
      const os = config.storage.objectStore;
      if (os) {
        const c = config.coordination;
        const bucket = new JetStreamIncidentBucket(
          { bucket: os.bucket, replicas: os.replicas, maxBytes: os.maxBytes, liveBucket: c.buckets.live, timeoutMs: c.timeoutMs, transferTimeoutMs: Math.max(30_000, c.timeoutMs), instance: coord.instance },
          () => coord.connection,
        );
        this.#sync = new IncidentSync({ store: this.store, bucket, log: this.#log.child({ component: 'object_store' }), onUpload: (result) => this.metrics.incidentUploads.inc({ result }), onBucketDeleted: (n) => this.metrics.bucketRetentionDeleted.inc(n) });
        this.#bucket = bucket;
        this.metrics.enableObjectStore();
      }
    }
    const insight = new InsightAnswers({ store: this.#sync ?? this.store, profiles: this.#profiles, cacheSizeBytes: config.ui.cacheSizeBytes });
    this.capturer = new Capturer({
      gate: this.#coord,
      onWritten: (m) => void insight.prepare(m),
      config: config.capture,
      retention: config.storage.retention,
      store: this.store,
      systemAccount: this.#sys,
      pprof: this.#pprof,
      metrics: this.metrics,
      log: this.#log.child({ component: 'capture' }),
      clock: this.#clock,
      summarize: (input) => this.#profiles.summarize(input, 10),
      allocsDelta: (before, after, windowMs) => this.#profiles.allocsDelta(before, after, windowMs),
      changes: changesFinder({ store: this.store, worker: this.#profiles, maxBytes: SUMMARY_MAX_BYTES, log: this.#log.child({ component: 'capture' }) }),
    });
    this.#flow = new Flow({
      inventory: this.inventory,
      engine: this.engine,
      metrics: this.metrics,
      log: this.#log,
      clock: this.#clock,
      config: () => this.#config,
      submit: (req, opts) => this.capturer.submit(req, opts),
      samples: this.samples,
      onForget: (s) => this.capturer.forget(s.key),
      owns: this.#coord ? (key) => (this.#coord as Coordinator).owns(key) : undefined,
      elsewhere: this.#elsewhere,
      decision: this.#coord ? (req) => (this.#coord as Coordinator).decision(req) : undefined,
    });
    this.#http = new HttpServer({
      host: config.http.host,
      port: config.http.port,
      tls: config.http.tls,
      auth: () => this.#config.http.auth,
      log: this.#log.child({ component: 'http' }),
      onRequest: (route, code) => this.metrics.apiRequests.inc({ route, code: String(code) }),
      routes: [...uiRoutes(), ...insight.routes(), ...apiRoutes({
        inventory: this.inventory,
        engine: this.engine,
        store: this.#sync ?? this.store,
        capturer: this.capturer,
        metrics: this.metrics,
        clock: this.#clock,
        log: this.#log.child({ component: 'api' }),
        config: () => this.#config,
        readiness: () => this.#readiness(),
        systemAccount: () => (this.#sys === undefined ? 'none' : this.#sys.connected ? 'up' : 'down'),
        ...(this.#coord ? { elsewhere: this.#elsewhere, gateDecision: (req: CaptureRequest) => (this.#coord as Coordinator).decision(req) } : {}),
      }), ...viewerDataRoutes({ inventory: this.inventory, samples: this.samples, clock: this.#clock, config: () => this.#config })],
    });
  }

  get config(): Config {
    return this.#config;
  }

  /** Starts everything; throws (StorageError, listen error) without leaving anything running. */
  async start(): Promise<{ port: number }> {
    if (this.#started) throw new Error('App.start called twice');
    this.#started = true;
    const removed = await this.store.init();
    if (removed.length > 0) this.#log.warn({ removed }, `removed ${removed.length} half-written incident(s) left by an earlier run`);
    let address;
    try {
      address = await this.#http.start();
    } catch (err) {
      await this.#closeClients();
      throw err;
    }
    this.metrics.configReloadSuccess.set(1);
    this.metrics.configReloadTimestamp.set(this.#clock.now() / 1000);
    this.#applyServers(this.#config.servers);
    this.#warnAboutPaths(this.#config);
    // Rejects on what restarting cannot fix (the system account, no JetStream, an incompatible bucket).
    await this.#coord?.start(2 * (this.#config.coordination?.timeoutMs ?? 0));
    if (this.#bucket) {
      // An incompatible bucket needs an operator: refuse to start. Unreachable: uploads wait and retry.
      await this.#bucket.check().catch((err: unknown) => {
        if (err instanceof CoordinationError && err.permanent) throw err;
        this.#log.warn({ err: describeError(err) }, 'object store not reachable yet: uploads wait and are retried');
      });
      for (const note of this.#bucket.notes) this.#log.warn(note);
    }
    await this.#sync?.start();
    if (this.#sys) {
      this.#sys.start();
      // Give the connection a moment so that the first firing can already use it.
      await this.#sys.waitConnected(this.#config.systemAccount?.timeoutMs ?? 0);
    }
    this.#poller.start();
    this.#discovery?.start();
    await this.capturer.prune();
    this.#armRetention();
    this.#log.info(
      { listen: `${address.address}:${address.port}`, servers: this.#config.servers.length, triggers: this.#config.triggers.length, storage: this.#config.storage.dir },
      'nats-autoprof started',
    );
    return { port: address.port };
  }

  #armRetention(): void {
    if (this.#retentionTimer) clearInterval(this.#retentionTimer);
    this.#retentionTimer = setInterval(() => {
      void this.capturer.prune();
      void this.pruneBucket();
    }, this.#config.storage.retention.intervalMs);
    this.#retentionTimer.unref();
  }

  #readiness(): { ready: boolean; reason?: string } {
    if (!this.#started) return { ready: false, reason: 'starting' };
    if (this.#coord && !this.#coord.haveView) return { ready: false, reason: 'coordination: no member list yet' };
    // A replica may own no server at all (more replicas than servers): that is its share, not a fault.
    if (this.#coord && this.inventory.size === 0) return { ready: true };
    // A daemon that watches nothing can do none of its work (no rule, capture or alert can name a server):
    // not ready, so that a rollout of such a config stalls visibly instead of replacing a working one.
    if (this.inventory.size === 0) {
      return {
        ready: false,
        reason: this.#config.systemAccount?.discover
          ? 'watching nothing yet: discovery has found no server'
          : 'watching nothing: no servers configured and system_account.discover is off',
      };
    }
    const waiting = this.inventory.all().filter((s) => !s.polled).map((s) => s.label);
    if (waiting.length > 0) return { ready: false, reason: `waiting for the first poll of: ${waiting.join(', ')}` };
    return { ready: true };
  }

  #warnAboutPaths(config: Config): void {
    for (const [name, url] of Object.entries(config.systemAccount?.profUrls ?? {})) {
      if (!isLoopbackUrl(url)) {
        this.#log.warn({ server: name, url }, 'prof_url is not a loopback address: the prof_port has no authentication and no TLS; keep it off untrusted networks');
      }
    }
    for (const s of config.servers) {
      if (s.profUrl && !isLoopbackUrl(s.profUrl)) {
        this.#log.warn(
          { server: s.name ?? s.url, url: s.profUrl },
          'prof_url is not a loopback address: the prof_port has no authentication and no TLS; keep it off untrusted networks',
        );
      }
      if (!s.profUrl && !config.systemAccount && config.triggers.some((t) => t.servers === undefined || (s.name !== undefined && t.servers.includes(s.name)))) {
        this.#log.warn(
          { server: s.name ?? s.url },
          'no way to capture profiles from this server: configure system_account, or a prof_url for it',
        );
      }
    }
  }

  #applyServers(all: readonly ServerConfig[]): void {
    // With replicas, only this replica's share is watched (polled, evaluated, exported); keyed by URL.
    const coord = this.#coord;
    const servers = coord ? all.filter((s) => coord.owns(s.url)) : all;
    const removed = this.inventory.setServers(servers);
    if (coord) this.#elsewhere?.setServers(all.filter((s) => !coord.owns(s.url)));
    for (const s of removed) this.#flow.forget(s);
    this.#poller.setServers(servers);
    // TLS agents of removed servers, or built from files a reload replaced, are closed.
    void this.#varz.retain(all);
  }

  /** The live member list changed: take this replica's new share of configured and discovered servers. */
  #ownershipChanged(): void {
    const coord = this.#coord;
    if (!coord) return;
    const before = this.inventory.size;
    this.#applyServers(this.#config.servers);
    // Discovered servers that moved away go at once; those that moved here come with the next round.
    for (const key of this.inventory.discoveredKeys()) if (!coord.owns(key)) this.#flow.forget(this.inventory.remove(key) as WatchedServer);
    this.#log.info({ instance: coord.instance, members: coord.members, owned_before: before, owned: this.inventory.size }, `this replica now watches ${this.inventory.size} server(s)`);
  }

  /** Applies a new, already validated config. Keys that need a restart are logged and kept (see planReload). */
  reload(next: Config): void {
    const plan = planReload(this.#config, next);
    const prevCoord = this.#config.coordination;
    // The coordination connection and buckets are set up once: changes to them wait for a restart.
    const restartNeeded = JSON.stringify(next.coordination) === JSON.stringify(prevCoord) ? plan.restartNeeded : [...plan.restartNeeded, 'coordination'];
    const { coordination: _next, ...effective } = plan.effective;
    this.#config = prevCoord === undefined ? effective : { ...effective, coordination: prevCoord };
    this.#log.level = next.log.level;
    this.engine.setTriggers(next.triggers);
    this.samples.setHistory(this.#config.ui.historyMs);
    this.capturer.updateConfig(next.capture, next.storage.retention);
    this.#applyServers(next.servers);
    if (this.#config.systemAccount?.discover) {
      this.#discovery?.start();
    } else {
      for (const key of this.inventory.discoveredKeys()) this.#flow.forget(this.inventory.remove(key) as WatchedServer);
    }
    this.#warnAboutPaths(this.#config);
    this.#armRetention();
    this.metrics.configReloadSuccess.set(1);
    this.metrics.configReloadTimestamp.set(this.#clock.now() / 1000);
    if (restartNeeded.length > 0) {
      this.#log.warn({ keys: restartNeeded }, `configuration reloaded; changes to ${restartNeeded.join(', ')} take effect after a restart`);
    } else {
      this.#log.info({ servers: next.servers.length, triggers: next.triggers.length }, 'configuration reloaded');
    }
  }

  /** Retention over the object store (one replica at a time, under the `retention` lease). Never throws. */
  async pruneBucket(): Promise<void> {
    const r = this.#config.storage.retention;
    try {
      await this.#sync?.pruneBucket(r, this.#clock.now());
      // Whichever replica pruned the bucket, each one drops its local copies of what left it.
      await this.#sync?.followBucket();
      if (this.#bucketPruneFailing) this.#log.info('object store retention runs again');
      this.#bucketPruneFailing = false;
    } catch (err) {
      // Once per outage: retention runs every interval, and an outage can last hours.
      if (!this.#bucketPruneFailing) this.#log.warn({ err: describeError(err) }, 'object store retention failed; it is tried again at every interval (said once until it works)');
      this.#bucketPruneFailing = true;
    }
  }

  /** A reload that failed validation: counted; the running config stays. */
  reloadFailed(): void {
    this.metrics.configReloadSuccess.set(0);
  }

  /** Stops in reverse order: polling, captures (up to shutdown_timeout), listener, connections. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      if (this.#retentionTimer) clearInterval(this.#retentionTimer);
      await Promise.all([this.#poller.stop(), this.#discovery?.stop()]);
      await this.capturer.stop(this.#config.shutdownTimeoutMs);
      await this.#sync?.stop();
      // After the captures (their leases are released), leave the member list so the servers move at once.
      await this.#coord?.stop();
      await this.#http.stop();
      await this.#closeClients();
      this.#log.info('nats-autoprof stopped');
    })();
    return this.#stopped;
  }

  async #closeClients(): Promise<void> {
    await Promise.allSettled([this.#poller.stop(), this.#varz.close(), this.#pprof.close(), this.#sys?.stop(), this.#profiles.close()]);
  }
}
