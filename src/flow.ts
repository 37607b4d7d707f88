/**
 * The one-way flow of the daemon, from plain typed values to capture requests:
 *   PollResult / DiscoveryRound -> inventory -> trigger engine -> CaptureRequest -> capturer
 * No timers and no I/O of its own: the poller and discovery hand it their results, `now` comes from the
 * clock, and captures are submitted through the injected `submit`. An exception thrown here is contained by
 * the caller (the poller and discovery log it once per kind and count it in
 * `nats_autoprof_internal_errors_total{where}`), so the next result is handled as usual.
 */
import type { SubmitResult } from './capture/capturer.js';
import { targetOf, type CaptureRequest } from './capture/request.js';
import type { Clock } from './clock.js';
import type { Config } from './config/types.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics/registry.js';
import { incidentPageUrl } from './store/page-url.js';
import type { Decision, TriggerEngine } from './trigger/engine.js';
import type { FleetMemory } from './trigger/rules.js';
import type { DiscoveryRound } from './watch/discovery.js';
import type { StatszReading } from './watch/fleet.js';
import type { Inventory, Reading, WatchedServer } from './watch/inventory.js';
import type { PollResult } from './watch/poller.js';
import type { SampleRings } from './watch/sample-ring.js';

export interface FlowOptions {
  inventory: Inventory;
  engine: TriggerEngine;
  metrics: Metrics;
  log: Logger;
  clock: Clock;
  /** The running config (read at each use, so a reload applies at once). */
  config: () => Config;
  /** Hands a request to the capturer; admission is decided at once. */
  submit: (req: CaptureRequest, opts: { countSkip: boolean }) => SubmitResult;
  /** Recent cpu/mem per server for the viewer: fed with every reading the inventory gets, freed with the server. */
  samples?: SampleRings;
  /** Called for every server that stops being watched (after the flow dropped its rule state). */
  onForget?: (s: WatchedServer) => void;
  /** Replicas (src/coord/): whether this replica owns a discovered server (by key); absent: it owns all. */
  owns?: (key: string) => boolean;
  /**
   * Replicas: the discovered servers another replica owns, with their latest STATSZ reading. Not polled,
   * evaluated or exported here; kept so that an alert or a manual capture about one can be taken by this
   * replica (the fleet-wide lease and memory decide whether it goes ahead).
   */
  elsewhere?: Inventory;
  /**
   * Replicas: the fleet-wide gate's answer for an admitted request (src/coord/). A firing the fleet refuses
   * after it was committed here is put right in the engine: adopted from the replica that fired it (cooldown),
   * or undone (another replica is capturing the server, or the fleet-wide capture.limit is full).
   */
  decision?: (req: CaptureRequest) => Promise<FleetAnswer> | undefined;
}

/** The part of the fleet-wide gate's answer the flow reads. */
export type FleetAnswer =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: string; readonly message: string; readonly fleet?: ReadonlyMap<string, FleetMemory>; readonly freeAt?: number };

/**
 * Keys of discovered servers. A discovered server is keyed by its name, so that a restarted server (new
 * server_id) stays one server; names that several servers of the same round carry are keyed by name plus
 * server_id, so that they do not reset each other's rule state.
 */
export function discoveredKeys(selected: readonly StatszReading[]): { keys: string[]; clashes: Map<string, string[]> } {
  const ids = new Map<string, Set<string>>();
  for (const r of selected) {
    let set = ids.get(r.varz.serverName);
    if (!set) ids.set(r.varz.serverName, (set = new Set()));
    set.add(r.varz.serverId);
  }
  const clashes = new Map<string, string[]>();
  for (const [name, set] of ids) if (set.size > 1) clashes.set(name, [...set].sort());
  const keys = selected.map((r) =>
    clashes.has(r.varz.serverName) ? `system_account:${r.varz.serverName}:${r.varz.serverId}` : `system_account:${r.varz.serverName}`,
  );
  return { keys, clashes };
}

export class Flow {
  readonly #o: FlowOptions;
  readonly #warnedClash = new Set<string>();
  /**
   * Replicas: the fleet-wide capture.limit is full until then. Rule firings are refused here meanwhile, as the
   * local limit refuses them at once (one skip per episode), instead of asking the fleet at every sample.
   */
  #fleetFullUntil: { at: number; message: string } | undefined;

  constructor(o: FlowOptions) {
    this.#o = o;
  }

  /** A poll result from the HTTP poller. */
  onPoll(r: PollResult): void {
    this.#onPoll(r);
  }

  /** A discovery round through the system account. */
  onDiscovery(round: DiscoveryRound): void {
    this.#onDiscovery(round);
  }

  /** Drops a server that is no longer watched: its rule state, and its counted series unless its label is still in use. */
  forget(s: WatchedServer): void {
    const { engine, inventory, metrics, log } = this.#o;
    engine.forget(s.key);
    this.#o.samples?.delete(s.key);
    // Series are per label: keep them while another watched entry still carries the same name.
    if (!inventory.byLabel(s.label)) void metrics.forgetServer(s.label);
    this.#o.onForget?.(s);
    log.info({ server: s.label, url: s.config?.url, server_id: s.last?.varz.serverId }, 'server no longer watched');
  }

  #onPoll(r: PollResult): void {
    const { metrics, clock } = this.#o;
    metrics.pollDuration.observe(r.durationMs / 1000);
    metrics.pollLateness.observe(Math.max(0, r.at - r.scheduledAt) / 1000);
    const now = clock.now();
    if (r.ok) this.#seen(r.key, r.reading, now);
    else this.#missed(r.key, r.error.message, now);
  }

  /** A server answered (HTTP poll or discovery round): inventory, sample ring, rules. */
  #seen(key: string, reading: Reading, now: number, discovered?: { profUrl: string | undefined }): void {
    const change = this.#o.inventory.ok(key, reading, now, discovered);
    const s = this.#o.inventory.get(key);
    if (!change || !s) return;
    if (change.previousLabel !== undefined) void this.#o.metrics.forgetServer(change.previousLabel);
    const v = reading.varz;
    this.#o.samples?.record(key, now, v.cpu, v.mem);
    if (change.added) this.#o.log.info({ server: s.label, server_id: v.serverId, version: v.version, cluster: v.cluster }, 'discovered server');
    else if (change.stateChanged) this.#o.log.info({ server: s.label, url: s.config?.url, server_id: v.serverId, version: v.version }, 'server is up');
    const decisions = this.#o.engine.observe(key, s.label, { ok: true, varz: v }, now);
    // The rules have read their fields: the parsed document is not kept for an interval.
    v.doc = undefined;
    this.#decide(s, decisions, now);
  }

  /** A poll failed, or a discovered server was missing from a round. */
  #missed(key: string, error: string, now: number): void {
    const change = this.#o.inventory.failed(key, error, now);
    const s = this.#o.inventory.get(key);
    if (!change || !s) return;
    if (change.stateChanged) this.#o.log.warn({ server: s.label, url: s.config?.url, err: error }, 'server is down');
    this.#decide(s, this.#o.engine.observe(key, s.label, { ok: false }, now), now);
  }

  /** The outcome of one discovery round: who is up, who is missing, who is gone. */
  #onDiscovery(round: DiscoveryRound): void {
    const { inventory, metrics: m, clock, log } = this.#o;
    const cfg = this.#o.config().systemAccount;
    if (!cfg?.discover) return;
    m.discoveryRounds.inc({ ended: round.ended });
    if (round.durationMs !== undefined) {
      m.discoveryDuration.observe(round.durationMs / 1000);
      m.discoveryExpected.set(round.expected ?? round.selected.length);
    }
    const at = clock.now();
    const viaHttp = inventory.httpServerIds();
    // Configured names count too: an HTTP server whose first poll has not answered yet has no server_id.
    const httpNames = new Set(inventory.all().filter((x) => x.source === 'http').map((x) => x.label));
    // Replicas: so are the configured servers another replica owns (by their configured name), so that a
    // server both configured and discovered is one server, owned through its URL, on every replica.
    for (const x of this.#o.elsewhere?.all() ?? []) if (x.source === 'http') httpNames.add(x.label);
    const { keys, clashes } = discoveredKeys(round.selected);
    for (const [name, ids] of clashes) {
      if (this.#warnedClash.has(name)) continue;
      this.#warnedClash.add(name);
      log.warn({ server: name, server_ids: ids }, `${ids.length} servers answer as "${name}": watched apart by server_id (give them distinct server_name values)`);
    }
    const seen = new Set<string>();
    const seenElsewhere = new Set<string>();
    const elsewhere = this.#o.elsewhere;
    round.selected.forEach((r, i) => {
      const key = keys[i] as string;
      if (viaHttp.has(r.varz.serverId) || httpNames.has(r.varz.serverName)) {
        // Watched over HTTP already: one server, one set of series.
        if (inventory.get(key)?.source === 'system_account') this.forget(inventory.remove(key) as WatchedServer);
        return;
      }
      if (this.#o.owns && !this.#o.owns(key)) {
        // Another replica's server: not watched here (and dropped at once when it just moved away).
        if (inventory.get(key)) this.forget(inventory.remove(key) as WatchedServer);
        if (elsewhere) {
          seenElsewhere.add(key);
          elsewhere.ok(key, { varz: r.varz, body: r.body, kind: 'statsz' }, at, { profUrl: cfg.profUrls[r.varz.serverName] });
        }
        return;
      }
      seen.add(key);
      this.#seen(key, { varz: r.varz, body: r.body, kind: 'statsz' }, at, { profUrl: cfg.profUrls[r.varz.serverName] });
    });
    m.discoveryServers.set(seen.size);
    // Another replica's servers are known only while rounds report them (nothing is exported for them here).
    if (elsewhere) for (const key of elsewhere.discoveredKeys()) if (!seenElsewhere.has(key)) elsewhere.remove(key);
    for (const key of inventory.discoveredKeys()) {
      if (!seen.has(key)) this.#missed(key, `missing from the discovery round (${round.ended})`, at);
    }
    for (const gone of inventory.forgetMissing(at, cfg.forgetAfterMs)) this.forget(gone);
  }

  /**
   * The rules' decisions for one observation of one server. Cooldown skips are counted and logged; every
   * proposed firing of the observation goes into ONE capture request (the union of their profiles, every
   * rule listed), and the engine is told whether it was accepted (rules disarmed, cooldown started) or
   * refused (rules stay armed and propose again at the next sample; counted once per episode).
   */
  #decide(s: WatchedServer, decisions: readonly Decision[], now: number): void {
    if (decisions.length === 0) return;
    const m = this.#o.metrics;
    const fires: Extract<Decision, { kind: 'fire' }>[] = [];
    for (const d of decisions) {
      if (d.kind === 'skip') {
        m.capturesSkipped.inc({ server: s.label, reason: d.reason });
        this.#o.log.info({ server: s.label, trigger: d.trigger.name, value: d.value }, 'rule would fire but is in its cooldown');
      } else {
        fires.push(d);
      }
    }
    const first = fires[0];
    if (!first) return;
    const records = fires.map((d) => ({
      name: d.trigger.name,
      metric: d.trigger.metric,
      value: d.value,
      above: d.trigger.above,
      for_ms: d.trigger.forMs,
      rate_ms: d.trigger.rateMs ?? null,
      raw: d.raw ?? null,
      escalation_step: d.step,
    }));
    const names = records.map((r) => r.name);
    const profiles = [...new Set(fires.flatMap((d) => d.trigger.profiles))];
    const req: CaptureRequest = {
      target: targetOf(s),
      reason: 'trigger',
      trigger: records[0],
      triggers: records,
      profiles,
      cpuDurationMs: this.#o.config().capture.cpuDurationMs,
    };
    const full = this.#fleetFullUntil;
    const res: SubmitResult =
      full !== undefined && now < full.at ? { accepted: false, reason: 'limit', message: full.message } : this.#o.submit(req, { countSkip: false });
    if (res.accepted) {
      this.#o.engine.commit(s.key, names, res.id, now);
      void this.#o.decision?.(req)?.then(
        (g) => {
          if (g.ok) return;
          this.#o.engine.refusedByFleet(s.key, names, { reason: g.reason, message: g.message }, g.fleet ?? new Map(), this.#o.clock.now());
          if (g.reason === 'limit' && g.freeAt !== undefined) this.#fleetFullUntil = { at: g.freeAt, message: g.message };
        },
        () => undefined,
      );
      for (const d of fires) {
        if (d.step > 0) {
          m.triggerEscalations.inc({ server: s.label, trigger: d.trigger.name });
          this.#o.log.info(
            { server: s.label, trigger: d.trigger.name, metric: d.trigger.metric, value: d.value, escalation_step: d.step },
            `rule ${d.trigger.name} escalated on ${s.label} (step ${d.step} of ${d.trigger.escalateMax})`,
          );
          continue;
        }
        m.triggersFired.inc({ server: s.label, trigger: d.trigger.name });
        this.#o.log.info(
          { server: s.label, trigger: d.trigger.name, metric: d.trigger.metric, value: d.value, above: d.trigger.above, rate_ms: d.trigger.rateMs },
          `rule ${d.trigger.name} fired on ${s.label}`,
        );
      }
      const pageUrl = incidentPageUrl(this.#o.config().http.externalUrl, res.id);
      this.#o.log.info({ server: s.label, trigger: first.trigger.name, triggers: names, incident: res.id, profiles, ...(pageUrl !== undefined ? { page_url: pageUrl } : {}) }, 'capturing');
      return;
    }
    // Refused: the rules stay armed. Count and log the first refusal of each episode only.
    const reported = this.#o.engine.refused(s.key, names, { reason: res.reason, message: res.message }, now);
    if (reported.length === 0) return;
    m.capturesSkipped.inc({ server: s.label, reason: res.reason });
    // A refused escalation is not a firing: only firings (step 0) are counted as fired.
    const firings = new Set(fires.filter((d) => d.step === 0).map((d) => d.trigger.name));
    for (const name of reported) if (firings.has(name)) m.triggersFired.inc({ server: s.label, trigger: name });
    this.#o.log.warn(
      { server: s.label, trigger: reported[0], triggers: reported, reason: res.reason },
      `capture skipped: ${res.message} (the rule stays armed and fires at the next sample still above)`,
    );
  }
}
