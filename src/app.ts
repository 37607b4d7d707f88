/**
 * Composition root: builds every component from a Config, wires the one-way flow
 *   poll result -> inventory -> trigger engine -> capturer -> incident store
 * (metrics read the inventory and the engine when scraped), starts them in order and stops them in reverse.
 */
import { systemClock, type Clock } from './clock.js';
import type { Config, ServerConfig } from './config/types.js';
import { HttpServer } from './api/http-server.js';
import { apiRoutes } from './api/routes.js';
import { Capturer } from './capture/capturer.js';
import { isLoopbackUrl, PprofClient } from './capture/http-pprof.js';
import { SystemAccount } from './capture/nats-connection.js';
import { targetOf, type CaptureRequest } from './capture/request.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics/registry.js';
import { IncidentStore } from './store/incident-store.js';
import { TriggerEngine, type Decision } from './trigger/engine.js';
import { Discovery, type DiscoveryRound } from './watch/discovery.js';
import { Inventory, type Reading, type WatchedServer } from './watch/inventory.js';
import { HttpPoller, type PollResult } from './watch/poller.js';
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
  readonly metrics: Metrics;
  readonly engine: TriggerEngine;
  readonly store: IncidentStore;
  readonly capturer: Capturer;
  readonly #varz: VarzClient;
  readonly #pprof = new PprofClient();
  readonly #poller: HttpPoller;
  readonly #http: HttpServer;
  readonly #sys: SystemAccount | undefined;
  #retentionTimer: NodeJS.Timeout | undefined;
  readonly #discovery: Discovery | undefined;
  #started = false;
  #stopped: Promise<void> | undefined;

  constructor(config: Config, o: AppOptions) {
    this.#config = config;
    this.#log = o.log;
    this.#clock = o.clock ?? systemClock;
    this.engine = new TriggerEngine(config.triggers);
    // Per-server series are read from the inventory and the engine at each scrape, not written per poll.
    this.metrics = new Metrics({ servers: () => this.inventory.values(), rules: () => this.engine.firing() });
    this.store = new IncidentStore({ dir: config.storage.dir, log: this.#log.child({ component: 'store' }), clock: this.#clock });
    this.#varz = new VarzClient();
    this.#poller = new HttpPoller({
      client: this.#varz,
      intervalMs: config.poll.intervalMs,
      timeoutMs: config.poll.timeoutMs,
      maxBodyBytes: config.poll.maxBodyBytes,
      onResult: (r) => this.#onPoll(r),
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
        onRound: (r) => this.#onDiscovery(r),
        log: this.#log.child({ component: 'discovery' }),
      });
    }
    this.capturer = new Capturer({
      config: config.capture,
      retention: config.storage.retention,
      store: this.store,
      systemAccount: this.#sys,
      pprof: this.#pprof,
      metrics: this.metrics,
      log: this.#log.child({ component: 'capture' }),
      clock: this.#clock,
    });
    this.#http = new HttpServer({
      host: config.http.host,
      port: config.http.port,
      tls: config.http.tls,
      auth: () => this.#config.http.auth,
      log: this.#log.child({ component: 'http' }),
      onRequest: (route, code) => this.metrics.apiRequests.inc({ route, code: String(code) }),
      routes: apiRoutes({
        inventory: this.inventory,
        engine: this.engine,
        store: this.store,
        capturer: this.capturer,
        metrics: this.metrics,
        clock: this.#clock,
        log: this.#log.child({ component: 'api' }),
        config: () => this.#config,
        readiness: () => this.#readiness(),
        systemAccount: () => (this.#sys === undefined ? 'none' : this.#sys.connected ? 'up' : 'down'),
      }),
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
    this.#retentionTimer = setInterval(() => void this.capturer.prune(), this.#config.storage.retention.intervalMs);
    this.#retentionTimer.unref();
  }

  #readiness(): { ready: boolean; reason?: string } {
    if (!this.#started) return { ready: false, reason: 'starting' };
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

  #applyServers(servers: readonly ServerConfig[]): void {
    const removed = this.inventory.setServers(servers);
    for (const s of removed) this.#forget(s);
    this.#poller.setServers(servers);
  }

  #forget(s: WatchedServer): void {
    this.engine.forget(s.key);
    // Series are per label: keep them while another watched entry still carries the same name.
    if (!this.inventory.byLabel(s.label)) void this.metrics.forgetServer(s.label);
    this.#log.info({ server: s.label, url: s.config?.url, server_id: s.last?.varz.serverId }, 'server no longer watched');
  }

  #onPoll(r: PollResult): void {
    this.metrics.pollDuration.observe(r.durationMs / 1000);
    this.metrics.pollLateness.observe(Math.max(0, r.at - r.scheduledAt) / 1000);
    const now = this.#clock.now();
    if (r.ok) this.#seen(r.key, r.reading, now);
    else this.#missed(r.key, r.error.message, now);
  }

  /** A server answered (HTTP poll or discovery round): inventory, rules. */
  #seen(key: string, reading: Reading, now: number, discovered?: { profUrl: string | undefined }): void {
    const change = this.inventory.ok(key, reading, now, discovered);
    const s = this.inventory.get(key);
    if (!change || !s) return;
    if (change.previousLabel !== undefined) void this.metrics.forgetServer(change.previousLabel);
    const v = reading.varz;
    if (change.added) this.#log.info({ server: s.label, server_id: v.serverId, version: v.version, cluster: v.cluster }, 'discovered server');
    else if (change.stateChanged) this.#log.info({ server: s.label, url: s.config?.url, server_id: v.serverId, version: v.version }, 'server is up');
    this.#decide(s, this.engine.observe(key, s.label, { ok: true, varz: v }, now), now);
  }

  /** A poll failed, or a discovered server was missing from a round. */
  #missed(key: string, error: string, now: number): void {
    const change = this.inventory.failed(key, error, now);
    const s = this.inventory.get(key);
    if (!change || !s) return;
    if (change.stateChanged) this.#log.warn({ server: s.label, url: s.config?.url, err: error }, 'server is down');
    this.#decide(s, this.engine.observe(key, s.label, { ok: false }, now), now);
  }

  /** The outcome of one discovery round: who is up, who is missing, who is gone. */
  #onDiscovery(round: DiscoveryRound): void {
    const cfg = this.#config.systemAccount;
    if (!cfg?.discover) return;
    const m = this.metrics;
    m.discoveryRounds.inc({ ended: round.ended });
    if (round.durationMs !== undefined) {
      m.discoveryDuration.observe(round.durationMs / 1000);
      m.discoveryExpected.set(round.expected ?? round.selected.length);
    }
    const at = this.#clock.now();
    const viaHttp = this.inventory.httpServerIds();
    // Configured names count too: an HTTP server whose first poll has not answered yet has no server_id.
    const httpNames = new Set(this.inventory.all().filter((x) => x.source === 'http').map((x) => x.label));
    const seen = new Set<string>();
    for (const r of round.selected) {
      // Discovered servers are keyed by name, so that a restarted server (new server_id) stays one server.
      const key = `system_account:${r.varz.serverName}`;
      if (viaHttp.has(r.varz.serverId) || httpNames.has(r.varz.serverName)) {
        // Watched over HTTP already: one server, one set of series.
        if (this.inventory.get(key)?.source === 'system_account') this.#forget(this.inventory.remove(key) as WatchedServer);
        continue;
      }
      seen.add(key);
      this.#seen(key, { varz: r.varz, body: r.body, kind: 'statsz' }, at, { profUrl: cfg.profUrls[r.varz.serverName] });
    }
    m.discoveryServers.set(seen.size);
    for (const key of this.inventory.discoveredKeys()) {
      if (!seen.has(key)) this.#missed(key, `missing from the discovery round (${round.ended})`, at);
    }
    for (const gone of this.inventory.forgetMissing(at, cfg.forgetAfterMs)) this.#forget(gone);
  }

  /**
   * The rules' decisions for one observation of one server. Cooldown skips are counted and logged; every
   * proposed firing of the observation goes into ONE capture request (the union of their profiles, every
   * rule listed), and the engine is told whether it was accepted (rules disarmed, cooldown started) or
   * refused (rules stay armed and propose again at the next sample; counted once per episode).
   */
  #decide(s: WatchedServer, decisions: readonly Decision[], now: number): void {
    if (decisions.length === 0) return;
    const m = this.metrics;
    const fires: Extract<Decision, { kind: 'fire' }>[] = [];
    for (const d of decisions) {
      if (d.kind === 'skip') {
        m.capturesSkipped.inc({ server: s.label, reason: d.reason });
        this.#log.info({ server: s.label, trigger: d.trigger.name, value: d.value }, 'rule would fire but is in its cooldown');
      } else {
        fires.push(d);
      }
    }
    const first = fires[0];
    if (!first) return;
    const records = fires.map((d) => ({ name: d.trigger.name, metric: d.trigger.metric, value: d.value, above: d.trigger.above, for_ms: d.trigger.forMs }));
    const names = records.map((r) => r.name);
    const profiles = [...new Set(fires.flatMap((d) => d.trigger.profiles))];
    const req: CaptureRequest = {
      target: targetOf(s),
      reason: 'trigger',
      trigger: records[0],
      triggers: records,
      profiles,
      cpuDurationMs: this.#config.capture.cpuDurationMs,
    };
    const res = this.capturer.submit(req, { countSkip: false });
    if (res.accepted) {
      this.engine.commit(s.key, names, res.id, now);
      for (const d of fires) {
        m.triggersFired.inc({ server: s.label, trigger: d.trigger.name });
        this.#log.info(
          { server: s.label, trigger: d.trigger.name, metric: d.trigger.metric, value: d.value, above: d.trigger.above },
          `rule ${d.trigger.name} fired on ${s.label}`,
        );
      }
      this.#log.info({ server: s.label, trigger: first.trigger.name, triggers: names, incident: res.id, profiles }, 'capturing');
      return;
    }
    // Refused: the rules stay armed. Count and log the first refusal of each episode only.
    const reported = this.engine.refused(s.key, names, { reason: res.reason, message: res.message }, now);
    if (reported.length === 0) return;
    m.capturesSkipped.inc({ server: s.label, reason: res.reason });
    for (const name of reported) m.triggersFired.inc({ server: s.label, trigger: name });
    this.#log.warn(
      { server: s.label, trigger: reported[0], triggers: reported, reason: res.reason },
      `capture skipped: ${res.message} (the rule stays armed and fires at the next sample still above)`,
    );
  }

  /** Applies a new, already validated config. Keys that need a restart are logged and kept. */
  reload(next: Config): void {
    const prev = this.#config;
    const restartNeeded: string[] = [];
    if (next.http.listen !== prev.http.listen) restartNeeded.push('http.listen');
    if (next.storage.dir !== prev.storage.dir) restartNeeded.push('storage.dir');
    if (JSON.stringify(next.http.tls) !== JSON.stringify(prev.http.tls)) restartNeeded.push('http.tls');
    const sameConnection = connectionKey(next.systemAccount) === connectionKey(prev.systemAccount);
    if (!sameConnection) restartNeeded.push('system_account (connection)');
    if (next.poll.intervalMs !== prev.poll.intervalMs || next.poll.timeoutMs !== prev.poll.timeoutMs || next.poll.maxBodyBytes !== prev.poll.maxBodyBytes) {
      restartNeeded.push('poll');
    }
    // Keep what cannot change without a restart; apply everything else.
    this.#config = {
      ...next,
      http: { ...prev.http, auth: next.http.auth },
      poll: prev.poll,
      // Discovery settings (discover, select, stall, forget_after, prof_urls) apply at once; the connection does not.
      systemAccount: sameConnection ? next.systemAccount : prev.systemAccount,
      storage: { ...next.storage, dir: prev.storage.dir },
    };
    this.#log.level = next.log.level;
    this.engine.setTriggers(next.triggers);
    this.capturer.updateConfig(next.capture, next.storage.retention);
    this.#applyServers(next.servers);
    if (this.#config.systemAccount?.discover) {
      this.#discovery?.start();
    } else {
      for (const key of this.inventory.discoveredKeys()) this.#forget(this.inventory.remove(key) as WatchedServer);
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
      await this.#http.stop();
      await this.#closeClients();
      this.#log.info('nats-autoprof stopped');
    })();
    return this.#stopped;
  }

  async #closeClients(): Promise<void> {
    await Promise.allSettled([this.#poller.stop(), this.#varz.close(), this.#pprof.close(), this.#sys?.stop()]);
  }
}

/** Everything that defines the system-account connection (secrets included, never logged). */
function connectionKey(c: Config['systemAccount']): string {
  if (!c) return '';
  return JSON.stringify([c.urls, c.user, c.password?.reveal(), c.token?.reveal(), c.creds, c.nkeySeed?.reveal(), c.tls, c.timeoutMs]);
}
