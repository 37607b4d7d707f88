/**
 * Every metric the daemon exports, defined in one place, in the daemon's own registry
 * (never prom-client's global one). Names, labels and meanings are documented in README.md.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { expositionChunks, labelValue, seriesLines, writeExposition, type SeriesWriter } from './exposition.js';
import { registerProcessMetrics } from './process.js';

export const METRIC_PREFIX = 'nats_autoprof_';

export type SkipReason = 'cooldown' | 'limit' | 'busy' | 'unsupported' | 'held_elsewhere';

/**
 * What the per-server series show, read at each scrape (nothing is written per poll: at thousands of polls
 * a second, label hashing in prom-client was a measurable share of the daemon's CPU). The inventory's
 * entries have this shape.
 */
export interface ServerSeries {
  readonly label: string;
  /** Polled at least once: `up` is exported from then on. */
  readonly polled: boolean;
  readonly up: boolean;
  readonly okPolls: number;
  readonly failedPolls: number;
  /** ms since the epoch. */
  readonly lastOkAt: number | undefined;
  readonly last: { readonly varz: { readonly cpu: number; readonly mem: number; readonly serverId: string; readonly cluster: string | undefined; readonly version: string } } | undefined;
}

export interface RuleSeries {
  readonly server: string;
  readonly trigger: string;
  readonly firing: boolean;
  /** The field the rule watches (`cpu`, `slow_consumers`, `jetstream.stats.memory`). */
  readonly metric?: string;
  /** The rate window (`60s`), or '' when the rule compares the field itself. */
  readonly rate?: string;
  /** `escalate` (`25%`), or '' when the rule does not escalate. */
  readonly escalate?: string;
  /** Escalations captured since the rule's last firing; undefined when it does not escalate. */
  readonly step?: number | undefined;
}

/** Where the scrape-time series come from (the app's inventory and trigger engine). */
export interface SeriesSource {
  servers(): Iterable<ServerSeries>;
  rules(): Iterable<RuleSeries>;
}

const NO_SOURCE: SeriesSource = { servers: () => [], rules: () => [] };

export class Metrics {
  readonly registry = new Registry();

  #source: SeriesSource = NO_SOURCE;

  // --- watching (per server; filled from the source at each scrape) ---
  readonly up: Gauge<'server'> = new Gauge({
    name: 'nats_autoprof_up', help: 'Whether the last poll of the server succeeded (1) or not (0).', labelNames: ['server'] as const, registers: [this.registry],
    collect: (): void => this.#fill(this.up, (s) => (s.polled ? (s.up ? 1 : 0) : undefined)),
  });
  readonly serverCpu: Gauge<'server'> = new Gauge({
    name: 'nats_autoprof_server_cpu_percent', help: 'Server CPU as varz reports it: percent of one core.', labelNames: ['server'] as const, registers: [this.registry],
    // Only while up: a reading that is not current is not exported (the exporter convention; a down server
    // shows `up 0` and its `server_info`, not its last figures as if they were still true).
    collect: (): void => this.#fill(this.serverCpu, (s) => (s.up ? s.last?.varz.cpu : undefined)),
  });
  readonly serverMemory: Gauge<'server'> = new Gauge({
    name: 'nats_autoprof_server_memory_bytes', help: 'Server resident memory (varz mem).', labelNames: ['server'] as const, registers: [this.registry],
    collect: (): void => this.#fill(this.serverMemory, (s) => (s.up ? s.last?.varz.mem : undefined)),
  });
  readonly serverInfo = new Gauge({
    name: 'nats_autoprof_server_info', help: 'Identity of a watched server (as last reported, also while it is down); always 1.', labelNames: ['server', 'server_id', 'cluster', 'version'] as const, registers: [this.registry],
    collect: () => {
      this.serverInfo.reset();
      for (const s of this.#source.servers()) {
        const v = s.last?.varz;
        if (v) this.serverInfo.set({ server: s.label, server_id: v.serverId, cluster: v.cluster ?? '', version: v.version }, 1);
      }
    },
  });
  readonly polls = new Counter({
    name: 'nats_autoprof_polls_total', help: 'Polls of monitoring endpoints by result.', labelNames: ['server', 'result'] as const, registers: [this.registry],
    collect: () => {
      // Counted in the inventory; a server that stops being watched and comes back starts again from 0
      // (a counter reset, which rate() handles).
      this.polls.reset();
      for (const s of this.#source.servers()) {
        if (s.okPolls > 0) this.polls.inc({ server: s.label, result: 'ok' }, s.okPolls);
        if (s.failedPolls > 0) this.polls.inc({ server: s.label, result: 'error' }, s.failedPolls);
      }
    },
  });
  readonly pollDuration = new Histogram({ name: 'nats_autoprof_poll_duration_seconds', help: 'Time one poll of a monitoring endpoint took.', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [this.registry] });
  readonly pollLateness = new Histogram({ name: 'nats_autoprof_poll_lateness_seconds', help: 'How late a poll started against its schedule (actual minus scheduled start).', buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5], registers: [this.registry] });
  readonly lastPollSuccess: Gauge<'server'> = new Gauge({
    name: 'nats_autoprof_last_poll_success_timestamp_seconds', help: 'When the server last answered a poll (Unix seconds).', labelNames: ['server'] as const, registers: [this.registry],
    collect: (): void => this.#fill(this.lastPollSuccess, (s) => (s.lastOkAt === undefined ? undefined : s.lastOkAt / 1000)),
  });

  // --- configuration ---
  readonly configReloadSuccess = new Gauge({ name: 'nats_autoprof_config_last_reload_success', help: 'Whether the last configuration reload succeeded (1) or not (0).', registers: [this.registry] });
  readonly configReloadTimestamp = new Gauge({ name: 'nats_autoprof_config_last_reload_success_timestamp_seconds', help: 'When the configuration was last loaded successfully (Unix seconds).', registers: [this.registry] });

  // --- triggers and captures ---
  readonly triggerFiring = new Gauge({
    name: 'nats_autoprof_trigger_firing', help: 'Whether a rule is pending or has fired and not yet re-armed (1) or not (0).', labelNames: ['server', 'trigger'] as const, registers: [this.registry],
    collect: () => {
      this.triggerFiring.reset();
      for (const r of this.#source.rules()) this.triggerFiring.set({ server: r.server, trigger: r.trigger }, r.firing ? 1 : 0);
    },
  });
  readonly triggerInfo = new Gauge({
    name: 'nats_autoprof_trigger_info', help: 'A rule that applies to a watched server: the field it watches, its rate window and escalate setting (always 1).', labelNames: ['trigger', 'metric', 'rate', 'escalate'] as const, registers: [this.registry],
    collect: () => {
      this.triggerInfo.reset();
      for (const r of this.#source.rules()) {
        if (r.metric !== undefined) this.triggerInfo.set({ trigger: r.trigger, metric: r.metric, rate: r.rate ?? '', escalate: r.escalate ?? '' }, 1);
      }
    },
  });
  readonly triggerEscalationStep = new Gauge({
    name: 'nats_autoprof_trigger_escalation_step', help: 'Escalations a rule captured since its last firing (rules with escalate only).', labelNames: ['server', 'trigger'] as const, registers: [this.registry],
    collect: () => {
      this.triggerEscalationStep.reset();
      for (const r of this.#source.rules()) if (r.step !== undefined) this.triggerEscalationStep.set({ server: r.server, trigger: r.trigger }, r.step);
    },
  });
  readonly triggerEscalations = new Counter({ name: 'nats_autoprof_trigger_escalations_total', help: 'Captures a rule made within its cooldown because the value climbed past the last capture by escalate.', labelNames: ['server', 'trigger'] as const, registers: [this.registry] });
  readonly triggersFired = new Counter({ name: 'nats_autoprof_triggers_fired_total', help: 'Times a rule fired.', labelNames: ['server', 'trigger'] as const, registers: [this.registry] });
  readonly captures = new Counter({ name: 'nats_autoprof_captures_total', help: 'Profiles captured by result.', labelNames: ['server', 'profile', 'via', 'result'] as const, registers: [this.registry] });
  readonly capturesSkipped = new Counter({ name: 'nats_autoprof_captures_skipped_total', help: 'Captures not started, by reason (cooldown, limit, busy, unsupported, held_elsewhere).', labelNames: ['server', 'reason'] as const, registers: [this.registry] });
  readonly captureDuration = new Histogram({ name: 'nats_autoprof_capture_duration_seconds', help: 'Time one profile capture took.', labelNames: ['profile', 'via'] as const, buckets: [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300], registers: [this.registry] });
  readonly lastCapture = new Gauge({ name: 'nats_autoprof_last_capture_timestamp_seconds', help: 'When a profile was last captured successfully (Unix seconds).', labelNames: ['server', 'profile'] as const, registers: [this.registry] });
  readonly incidents = new Counter({ name: 'nats_autoprof_incidents_total', help: 'Incidents written, by status (ok, partial, failed).', labelNames: ['status'] as const, registers: [this.registry] });

  // --- storage ---
  readonly storageBytes = new Gauge({ name: 'nats_autoprof_storage_bytes', help: 'Bytes used by complete incidents in the storage directory.', registers: [this.registry] });
  readonly storageIncidents = new Gauge({ name: 'nats_autoprof_storage_incidents', help: 'Complete incidents in the storage directory.', registers: [this.registry] });
  readonly retentionDeleted = new Counter({ name: 'nats_autoprof_retention_deleted_total', help: 'Incidents deleted by retention.', registers: [this.registry] });
  readonly storageErrors = new Counter({ name: 'nats_autoprof_storage_errors_total', help: 'Failed writes, reads or deletions in the storage directory.', registers: [this.registry] });

  // --- discovery through the system account ---
  readonly discoveryServers = new Gauge({ name: 'nats_autoprof_discovery_servers', help: 'Servers seen (and selected) in the last discovery round.', registers: [this.registry] });
  readonly discoveryExpected = new Gauge({ name: 'nats_autoprof_discovery_expected_servers', help: 'Servers the last discovery round expected (statsz active_servers).', registers: [this.registry] });
  readonly discoveryDuration = new Histogram({ name: 'nats_autoprof_discovery_duration_seconds', help: 'Time one discovery round took to collect its replies.', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [this.registry] });
  readonly discoveryRounds = new Counter({ name: 'nats_autoprof_discovery_rounds_total', help: 'Discovery rounds by how they ended (count, stall, timeout, no_responders, not_connected, max_replies).', labelNames: ['ended'] as const, registers: [this.registry] });

  // --- API ---
  readonly apiRequests = new Counter({ name: 'nats_autoprof_api_requests_total', help: 'HTTP requests by route and status code.', labelNames: ['route', 'code'] as const, registers: [this.registry] });
  readonly alertsReceived = new Counter({ name: 'nats_autoprof_alerts_received_total', help: 'Alertmanager alerts received, by what was done (captured, already_captured, deduplicated, unknown_server, resolved, skipped).', labelNames: ['result'] as const, registers: [this.registry] });

  // --- the daemon itself ---

  // --- the daemon itself ---
  readonly internalErrors = new Counter({
    name: 'nats_autoprof_internal_errors_total', help: 'Exceptions thrown while handling a poll result or a discovery round (a bug), caught so that watching goes on; by where (poll, discovery).', labelNames: ['where'] as const, registers: [this.registry],
  });

  // --- system account ---
  readonly systemAccountConnected = new Gauge({ name: 'nats_autoprof_system_account_connected', help: 'Whether the system-account connection is up (1) or not (0).', registers: [this.registry] });

  // --- coordination (replicas; registered only when coordination is configured: see enableCoordination) ---
  #coord: { owned(): number; secondsSinceContact(): number } | undefined;
  readonly coordinationMembers = new Gauge({ name: 'nats_autoprof_coordination_members', help: 'Live replicas in the member list this replica last read (itself included).', registers: [] });
  readonly coordinationServersOwned: Gauge = new Gauge({
    name: 'nats_autoprof_coordination_servers_owned', help: 'Watched servers this replica owns (polls, evaluates and exports).', registers: [],
    collect: (): void => this.coordinationServersOwned.set(this.#coord?.owned() ?? 0),
  });
  readonly coordinationLeases = new Counter({ name: 'nats_autoprof_coordination_leases_total', help: 'Capture leases by result (taken; refused: held by another replica, or the fleet-wide limit; unavailable: captured without a lease while coordination was down).', labelNames: ['result'] as const, registers: [] });
  readonly coordinationOwnershipChanges = new Counter({ name: 'nats_autoprof_coordination_ownership_changes_total', help: 'Times the live member list changed after the first, each moving servers between replicas.', registers: [] });
  readonly coordinationErrors = new Counter({ name: 'nats_autoprof_coordination_errors_total', help: 'Failed coordination operations by op (heartbeat, lease).', labelNames: ['op'] as const, registers: [] });
  readonly coordinationContactAge: Gauge = new Gauge({
    name: 'nats_autoprof_coordination_last_contact_age_seconds', help: 'Seconds since this replica last reached the coordination KV bucket (since start while it never has).', registers: [],
    collect: (): void => this.coordinationContactAge.set(this.#coord?.secondsSinceContact() ?? 0),
  });

  /** Exports the coordination metrics (a daemon without coordination exports none of them). */
  enableCoordination(source: { owned(): number; secondsSinceContact(): number }): void {
    if (this.#coord) return;
    this.#coord = source;
    const all: AnyMetric[] = [this.coordinationMembers, this.coordinationServersOwned, this.coordinationLeases, this.coordinationOwnershipChanges, this.coordinationErrors, this.coordinationContactAge];
    for (const m of all) this.registry.registerMetric(m as Gauge<string>);
    for (const result of ['taken', 'refused', 'unavailable']) this.coordinationLeases.inc({ result }, 0);
    for (const op of ['heartbeat', 'lease']) this.coordinationErrors.inc({ op }, 0);
  }

  // --- object store (storage.object_store; registered only when configured: see enableObjectStore) ---
  readonly incidentUploads = new Counter({ name: 'nats_autoprof_incident_uploads_total', help: 'Incident uploads to the object store by result (ok; error: retried with backoff, the local copy kept; gone: deleted locally before it was uploaded).', labelNames: ['result'] as const, registers: [] });
  readonly bucketRetentionDeleted = new Counter({ name: 'nats_autoprof_bucket_retention_deleted_total', help: 'Incidents deleted from the object store by retention (run by one replica at a time).', registers: [] });
  #objectStore = false;

  /** Exports the object-store metrics (a daemon without storage.object_store exports none of them). */
  enableObjectStore(): void {
    if (this.#objectStore) return;
    this.#objectStore = true;
    this.registry.registerMetric(this.incidentUploads);
    this.registry.registerMetric(this.bucketRetentionDeleted);
    for (const result of ['ok', 'error', 'gone']) this.incidentUploads.inc({ result }, 0);
  }

  /** `source` supplies the per-server and per-rule series at each scrape; without it they are empty. */
  constructor(source?: SeriesSource) {
    if (source) this.#source = source;
    // Exported at 0 from the start, so that an alert on any increase works from the first scrape.
    for (const where of ['poll', 'discovery']) this.internalErrors.inc({ where }, 0);
    // Not prom-client's collectDefaultMetrics: its event-loop histogram and GC observer were most of a small
    // daemon's per-scrape CPU (BENCHMARKS.md, issue 19); see process.ts for what is kept.
    registerProcessMetrics(this.registry, METRIC_PREFIX);
  }

  #fill(gauge: Gauge<'server'>, value: (s: ServerSeries) => number | undefined): void {
    gauge.reset();
    for (const s of this.#source.servers()) {
      const v = value(s);
      if (v !== undefined) gauge.set({ server: s.label }, v);
    }
  }

  /**
   * Removes the event-counted series (fired, captured, skipped) of a server that is no longer watched, or
   * whose label changed. The scrape-time series follow the source by themselves.
   */
  async forgetServer(server: string): Promise<void> {
    const counted: AnyMetric[] = [this.triggersFired, this.triggerEscalations, this.captures, this.capturesSkipped, this.lastCapture];
    await Promise.all(counted.map((m) => removeMatching(m, server)));
  }

  /**
   * The scrape-time series written straight from the source at each scrape, the same lines their collects
   * make prom-client write (test/unit/metrics/exposition.test.ts compares the two). At 5,000 servers the
   * collects' reset + set (a label object and a label hash per series, ~60,000 of them) and their garbage
   * were most of a 180 ms exposition (BENCHMARKS.md, issue 16).
   */
  readonly #writers: ReadonlyMap<unknown, SeriesWriter> = new Map<unknown, SeriesWriter>([
    [this.up, (name) => this.#perServer(name, (s) => (s.polled ? (s.up ? 1 : 0) : undefined))],
    [this.serverCpu, (name) => this.#perServer(name, (s) => (s.up ? s.last?.varz.cpu : undefined))],
    [this.serverMemory, (name) => this.#perServer(name, (s) => (s.up ? s.last?.varz.mem : undefined))],
    [this.lastPollSuccess, (name) => this.#perServer(name, (s) => (s.lastOkAt === undefined ? undefined : s.lastOkAt / 1000))],
    [this.serverInfo, (name) => {
      const series = new Map<string, number>();
      for (const s of this.#source.servers()) {
        const v = s.last?.varz;
        if (v) series.set(`server="${labelValue(s.label)}",server_id="${labelValue(v.serverId)}",cluster="${labelValue(v.cluster ?? '')}",version="${labelValue(v.version)}"`, 1);
      }
      return seriesLines(name, series);
    }],
    [this.polls, (name) => {
      const series = new Map<string, number>();
      const add = (pairs: string, n: number): void => void series.set(pairs, (series.get(pairs) ?? 0) + n);
      for (const s of this.#source.servers()) {
        const server = labelValue(s.label);
        if (s.okPolls > 0) add(`server="${server}",result="ok"`, s.okPolls);
        if (s.failedPolls > 0) add(`server="${server}",result="error"`, s.failedPolls);
      }
      return seriesLines(name, series);
    }],
    [this.triggerFiring, (name) => {
      const series = new Map<string, number>();
      for (const r of this.#source.rules()) series.set(`server="${labelValue(r.server)}",trigger="${labelValue(r.trigger)}"`, r.firing ? 1 : 0);
      return seriesLines(name, series);
    }],
    [this.triggerInfo, (name) => {
      const series = new Map<string, number>();
      for (const r of this.#source.rules()) {
        if (r.metric !== undefined) series.set(`trigger="${labelValue(r.trigger)}",metric="${labelValue(r.metric)}",rate="${labelValue(r.rate ?? '')}",escalate="${labelValue(r.escalate ?? '')}"`, 1);
      }
      return seriesLines(name, series);
    }],
    [this.triggerEscalationStep, (name) => {
      const series = new Map<string, number>();
      for (const r of this.#source.rules()) if (r.step !== undefined) series.set(`server="${labelValue(r.server)}",trigger="${labelValue(r.trigger)}"`, r.step);
      return seriesLines(name, series);
    }],
  ]);

  /** A per-server gauge's lines: a label seen twice keeps its first place and its last value, as `set` does. */
  #perServer(name: string, value: (s: ServerSeries) => number | undefined): Iterable<string> {
    const series = new Map<string, number>();
    for (const s of this.#source.servers()) {
      const v = value(s);
      if (v !== undefined) series.set(`server="${labelValue(s.label)}"`, v);
    }
    return seriesLines(name, series);
  }

  /** The text exposition, written in one pass (exposition.ts); the same bytes as `registry.metrics()`. */
  async exposition(): Promise<string> {
    return writeExposition(this.registry, this.#writers);
  }

  /** The same text in pieces, for /metrics to send on as they come (exposition.ts, expositionChunks). */
  expositionChunks(): AsyncGenerator<string> {
    return expositionChunks(this.registry, this.#writers);
  }
}

type AnyMetric = Gauge<string> | Counter<string>;


/** Removes every series of `metric` whose `server` label equals `server`. */
async function removeMatching(metric: AnyMetric, server: string): Promise<void> {
  // prom-client has no partial-label removal: read the current label sets and remove the matching ones.
  const { values } = await metric.get();
  for (const v of values) {
    if (v.labels['server'] === server) metric.remove(v.labels as Record<string, string | number>);
  }
}
