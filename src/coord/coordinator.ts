/**
 * Replicas sharing the fleet through JetStream KV (issue 17). One coordinator per daemon, when
 * `coordination:` is configured:
 * - membership: every `heartbeat` this replica renews `m.<instance>` in the `live` bucket (TTL `lease_ttl`)
 *   and reads the others' entries; the live member list decides ownership (ownership.ts, rendezvous);
 * - the capture gate, run before an admitted capture writes anything: a per-server lease in `live`, taken
 *   with a KV create (compare-and-set on "no value") and renewed every heartbeat while the capture runs;
 *   the fleet-wide `capture.limit` window in `state`, changed by compare-and-set; the last firing of each
 *   (server, rule) in `state`, so that a server that moved is not captured again inside its cooldown;
 * - losing JetStream: the last good member list stays in force (this replica keeps the servers it owned),
 *   and captures of owned servers go ahead without a lease. Logged once per outage, counted.
 */
import { hostname } from 'node:os';

import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';

import { SystemAccount } from '../capture/nats-connection.js';
import type { CaptureRequest } from '../capture/request.js';
import type { Config } from '../config/types.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import type { FleetMemory } from '../trigger/rules.js';
import { bounded, CoordinationError, JS_WRONG_LAST_SEQUENCE, openBuckets, type Buckets } from './buckets.js';
import { admit, encodeWindow, parseWindow } from './limit-window.js';
import { MemberTracker, sameMembers } from './members.js';
import { ownerOf, serverToken } from './ownership.js';

export type CoordinationConfig = NonNullable<Config['coordination']>;

/** The gate's answer: go ahead (and call `release` when the capture is over), or skip. */
export type GateResult =
  | { readonly ok: true; readonly release: () => void }
  | {
      readonly ok: false;
      readonly reason: 'held_elsewhere' | 'limit' | 'cooldown';
      readonly message: string;
      /** A `cooldown` refusal of rules: each rule's firing on the replica that captured it (the engine adopts it). */
      readonly fleet?: ReadonlyMap<string, FleetMemory>;
      /** A `limit` refusal: when the fleet-wide window frees a slot (ms since the epoch). */
      readonly freeAt?: number;
      /** A `cooldown` refusal of an alert about a server that rules captured within alerts.cooldown, with its profiles. */
      readonly answeredBy?: { readonly triggers: readonly string[]; readonly instance: string; readonly at: number };
    };

export interface CoordinatorOptions {
  config: CoordinationConfig;
  log: Logger;
  metrics: Metrics;
  /** The running capture.limit (read at each capture, so a reload applies). */
  captureLimit: () => { count: number; windowMs: number };
  /** A rule's cooldown by name, undefined for a rule that no longer exists. */
  ruleCooldownMs: (name: string) => number | undefined;
  /** The running alerts.cooldown. */
  alertCooldownMs: () => number;
  /** The names of the running rules (an alert about a server a rule captured is answered by that capture). */
  ruleNames?: () => readonly string[];
  /** The live member list changed: servers moved to or from this replica. */
  onViewChange: () => void;
}

/** Default instance name: host name and process id, made KV-key safe. */
export function defaultInstance(): string {
  return `${hostname()}-${process.pid}`.replace(/[^A-Za-z0-9_=.-]/g, '_');
}

/** Compare-and-set attempts on the capture.limit window before giving up (a burst of firings on every replica at once conflicts a lot). */
const CAS_ATTEMPTS = 40;

export class Coordinator {
  readonly instance: string;
  readonly #o: CoordinatorOptions;
  readonly #conn: SystemAccount;
  readonly #tracker = new MemberTracker();
  readonly #owns = new Map<string, boolean>();
  readonly #startedAt = performance.now();
  #buckets: Buckets | undefined;
  #bucketsOn: NatsConnection | undefined;
  #members: readonly string[] = [];
  #haveView = false;
  #available = false;
  #lastGoodAt: number | undefined;
  #problem: CoordinationError | undefined;
  #outageLogged = false;
  #loop: Promise<void> | undefined;
  #stopping = false;
  readonly #wake = new AbortController();
  readonly #firstView: { promise: Promise<void>; resolve: () => void };
  readonly #leases = new Set<() => Promise<void>>();
  /** Tells this process's member entries from another process's under the same instance name. */
  readonly #nonce = Math.random().toString(36).slice(2, 12);
  #warnedTwin = false;
  #memberRev: number | undefined;
  /** The gate's answer for each request it was asked about, so that the API can report it (see decision()). */
  readonly #decisions = new WeakMap<CaptureRequest, Promise<GateResult>>();

  constructor(o: CoordinatorOptions) {
    this.#o = o;
    this.instance = o.config.instance ?? defaultInstance();
    this.#conn = new SystemAccount({ config: o.config, label: 'coordination server', log: o.log, onConnectedChange: () => undefined });
    let resolve: () => void = () => undefined;
    const promise = new Promise<void>((r) => (resolve = r));
    this.#firstView = { promise, resolve };
  }

  /** The live members at the last good view (sorted). */
  get members(): readonly string[] {
    return this.#members;
  }

  /** The coordination connection (the object store of incidents uses it too), undefined while there is none. */
  get connection(): NatsConnection | undefined {
    return this.#conn.connection;
  }

  /** Whether the last heartbeat reached the KV bucket. */
  get available(): boolean {
    return this.#available;
  }

  /** Whether this replica has had a member list yet (before that it owns nothing). */
  get haveView(): boolean {
    return this.#haveView;
  }

  /** Seconds since the last good contact with the KV bucket (since start while there was none). */
  secondsSinceContact(): number {
    return (performance.now() - (this.#lastGoodAt ?? this.#startedAt)) / 1000;
  }

  /** Whether this replica owns the server (inventory key) at its current view. */
  owns(key: string): boolean {
    let v = this.#owns.get(key);
    if (v === undefined) {
      v = ownerOf(key, this.#members) === this.instance;
      this.#owns.set(key, v);
    }
    return v;
  }

  /**
   * Connects and starts the heartbeat. Resolves after the first member list, or after `waitMs` without one
   * (the replica then owns nothing until coordination answers). Rejects on a problem that needs an operator
   * (the system account, JetStream not enabled, an incompatible bucket): restarting would not help.
   */
  async start(waitMs: number): Promise<void> {
    if (this.#loop) return;
    this.#conn.start();
    this.#loop = this.#run();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#firstView.promise, new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
    if (!this.#haveView && this.#problem?.permanent) throw this.#problem;
    if (!this.#haveView) this.#o.log.warn({ waited_ms: waitMs }, 'coordination has no member list yet: this replica watches nothing until it has one');
  }

  async #run(): Promise<void> {
    // The first heartbeat waits for the connection (bounded): a beat before it would only report an outage.
    await this.#conn.waitConnected(this.#o.config.timeoutMs);
    while (!this.#stopping) {
      await this.#beat();
      if (this.#stopping) break;
      // Until the first member list, try again sooner: the replica watches nothing meanwhile.
      await sleep(this.#haveView ? this.#o.config.heartbeatMs : Math.min(this.#o.config.heartbeatMs, 250), this.#wake.signal);
    }
  }

  async #open(): Promise<Buckets> {
    const nc = this.#conn.connection;
    if (!nc) throw new CoordinationError('not connected to the coordination server', 'unavailable');
    if (this.#buckets && this.#bucketsOn === nc) return this.#buckets;
    const c = this.#o.config;
    const b = await openBuckets(nc, { live: c.buckets.live, state: c.buckets.state, leaseTtlMs: c.leaseTtlMs, replicas: c.replicas, timeoutMs: c.timeoutMs });
    for (const note of b.notes) this.#o.log.warn(note);
    this.#buckets = b;
    this.#bucketsOn = nc;
    return b;
  }

  async #beat(): Promise<void> {
    const c = this.#o.config;
    const m = this.#o.metrics;
    try {
      const { live } = await this.#open();
      await this.#renewMembership(live);
      const revisions = await bounded(readMembers(live), c.timeoutMs, 'reading the member list');
      const members = this.#tracker.update(revisions, performance.now(), c.leaseTtlMs);
      // Our own put just succeeded: we are live whatever the tracker's first impression.
      if (!members.includes(this.instance)) members.push(this.instance), members.sort();
      this.#lastGoodAt = performance.now();
      this.#problem = undefined;
      if (!this.#available && this.#outageLogged) this.#o.log.info({ members }, 'coordination is available again');
      this.#available = true;
      this.#outageLogged = false;
      m.coordinationMembers.set(members.length);
      if (!this.#haveView || !sameMembers(members, this.#members)) {
        const before = this.#members;
        this.#members = members;
        this.#owns.clear();
        if (this.#haveView) m.coordinationOwnershipChanges.inc();
        this.#haveView = true;
        this.#o.log.info({ instance: this.instance, members, before }, `replicas: ${members.length} live (${members.join(', ')})`);
        this.#firstView.resolve();
        try {
          this.#o.onViewChange();
        } catch (err) {
          // A bug in applying the view, not a coordination outage: logged, and the view stands.
          this.#o.log.error({ err: describeError(err) }, 'applying the new member list failed');
        }
      }
    } catch (err) {
      m.coordinationErrors.inc({ op: 'heartbeat' });
      const problem = err instanceof CoordinationError ? err : new CoordinationError(describeError(err), 'unavailable', { cause: err });
      this.#problem = problem;
      const wasAvailable = this.#available;
      this.#available = false;
      // A first heartbeat may fail for a moment after connecting; an outage is one that lasts (or a real problem).
      const settling = !this.#haveView && !problem.permanent && performance.now() - this.#startedAt < this.#o.config.timeoutMs;
      if (!settling && (!this.#outageLogged || wasAvailable)) {
        this.#outageLogged = true;
        const level = problem.permanent ? 'error' : 'warn';
        this.#o.log[level](
          { err: problem.message, members: this.#members },
          this.#haveView
            ? 'coordination unavailable: keeping the servers owned at the last good view, capturing them without a lease, until it answers again'
            : 'coordination unavailable: no member list yet, so this replica watches nothing until it answers',
        );
      }
      if (problem.permanent && !this.#haveView) this.#firstView.resolve();
    }
  }

  /**
   * Renews `m.<instance>` by compare-and-set on this process's last revision: when that fails and the entry
   * carries another process's nonce, a second replica runs under the same instance name (both would own the
   * same servers): said once, loudly. Then (or when our entry expired meanwhile) a plain put.
   */
  async #renewMembership(live: KV): Promise<void> {
    const c = this.#o.config;
    const key = `m.${this.instance}`;
    const value = JSON.stringify({ at: Date.now(), nonce: this.#nonce });
    if (this.#memberRev !== undefined) {
      try {
        this.#memberRev = await bounded(live.update(key, value, this.#memberRev), c.timeoutMs, 'heartbeat');
        return;
      } catch (err) {
        if (codeOf(err) !== JS_WRONG_LAST_SEQUENCE) throw err;
        const e = await bounded(live.get(key), c.timeoutMs, 'heartbeat');
        const nonce = e !== null && e.operation === 'PUT' ? field(e.value, 'nonce') : undefined;
        if (nonce !== undefined && nonce !== this.#nonce && !this.#warnedTwin) {
          this.#warnedTwin = true;
          this.#o.log.error({ instance: this.instance }, `another replica uses the instance name "${this.instance}": both own the same servers; give each replica its own coordination.instance`);
        }
      }
    }
    this.#memberRev = await bounded(live.put(key, value), c.timeoutMs, 'heartbeat');
  }

  /**
   * Decides whether an admitted capture may go ahead, fleet-wide: the server's last firings (trigger
   * captures), its capture lease, then a slot in the fleet-wide capture.limit window.
   */
  acquire(req: CaptureRequest): Promise<GateResult> {
    const p = this.#acquire(req);
    this.#decisions.set(req, p);
    return p;
  }

  /**
   * The fleet-wide answer for a request the capturer admitted (undefined when the gate was not asked). An
   * API request waits for it, so that an alert or a manual capture that another replica already took is
   * answered with the refusal, not with an incident id that will never exist.
   */
  decision(req: CaptureRequest): Promise<GateResult> | undefined {
    return this.#decisions.get(req);
  }

  async #acquire(req: CaptureRequest): Promise<GateResult> {
    // One failed KV call while coordination was answering a moment ago is most often a blip (a leader
    // election in the cluster): try once more before falling back to the last good view.
    const first = await this.#acquireOnce(req, false);
    return first !== 'retry' ? first : ((await this.#acquireOnce(req, true)) as GateResult);
  }

  async #acquireOnce(req: CaptureRequest, last: boolean): Promise<GateResult | 'retry'> {
    const m = this.#o.metrics;
    const key = req.target.key;
    const label = req.target.label;
    const b = this.#available ? this.#buckets : undefined;
    if (!b) return this.#withoutCoordination(key, label);
    const token = serverToken(key);
    const timeoutMs = this.#o.config.timeoutMs;
    let release: (() => Promise<void>) | undefined;
    try {
      // The lease first: it serialises every capture of this server across the replicas, so the memory
      // read below and the record written after it cannot interleave with another replica's.
      const lease = await this.#takeLease(b.live, token, label);
      if (!lease.ok) {
        m.coordinationLeases.inc({ result: 'refused' });
        return { ok: false, reason: 'held_elsewhere', message: `${label} is being captured by replica ${lease.holder}` };
      }
      release = lease.release;
      const memory = await this.#memory(b.state, req, token);
      if (memory.refusal !== undefined) {
        await release();
        m.coordinationLeases.inc({ result: 'refused' });
        return { ok: false, reason: 'cooldown', message: memory.refusal, ...(memory.fleet ? { fleet: memory.fleet } : {}), ...(memory.answeredBy ? { answeredBy: memory.answeredBy } : {}) };
      }
      const limit = this.#o.captureLimit();
      const slot = await this.#takeSlot(b.state, limit.count, limit.windowMs);
      if (!slot.ok) {
        await release();
        m.coordinationLeases.inc({ result: 'refused' });
        return { ok: false, reason: 'limit', message: `capture.limit reached across the replicas: ${limit.count} incidents in ${Math.round(limit.windowMs / 1000)}s`, freeAt: slot.freeAt };
      }
      await Promise.all(memory.record.map(([k, v]) => bounded(b.state.put(k, v), timeoutMs, 'recording a firing')));
      m.coordinationLeases.inc({ result: 'taken' });
      const r = release;
      return { ok: true, release: () => void r() };
    } catch (err) {
      if (release) await release().catch(() => undefined);
      m.coordinationErrors.inc({ op: 'lease' });
      if (!last) {
        await new Promise((r) => setTimeout(r, 200));
        return 'retry';
      }
      this.#o.log.warn({ server: label, err: describeError(err) }, 'coordination failed while taking a capture lease: deciding by the last good view');
      return this.#withoutCoordination(key, label);
    }
  }

  /**
   * The fleet-wide memory of what was captured: a rule's last firing on this server (trigger captures) and an
   * alert fingerprint's last capture (alert captures). A refusal when every firing rule, or the alert, is in
   * its cooldown; else the keys to record once the capture is admitted.
   */
  async #memory(
    state: KV,
    req: CaptureRequest,
    token: string,
  ): Promise<{ refusal?: string; fleet?: Map<string, FleetMemory>; answeredBy?: { triggers: string[]; instance: string; at: number }; record: [string, string][] }> {
    const timeoutMs = this.#o.config.timeoutMs;
    const now = Date.now();
    const read = async (k: string): Promise<StoredFiring | undefined> => {
      const e = await bounded(state.get(k), timeoutMs, 'reading what was captured');
      return e === null || e.operation !== 'PUT' ? undefined : parseFiring(e.value);
    };
    if (req.reason === 'alert' && req.alert) {
      // The fingerprint comes from a webhook body: hashed into a key token, never used as a key as it is.
      const k = `alert.${serverToken(req.alert.fingerprint)}`;
      const last = await read(k);
      if (last !== undefined && now - last.at < this.#o.alertCooldownMs()) {
        return { refusal: `alert ${req.alert.name} (${req.alert.fingerprint}) was captured by replica ${last.instance ?? 'unknown'} within alerts.cooldown`, record: [] };
      }
      // As on a single daemon: an alert about a server that a rule captured within alerts.cooldown, with every
      // profile the alert asks for, is answered by that capture, whichever replica took it.
      const names = this.#o.ruleNames?.() ?? [];
      const fired = await Promise.all(names.map((n) => read(`fired.${token}.${n}`)));
      const covering = names.filter((_, i) => {
        const f = fired[i];
        return f !== undefined && now - f.at < this.#o.alertCooldownMs() && f.profiles !== undefined && req.profiles.every((p) => f.profiles?.includes(p));
      });
      if (covering.length > 0) {
        const f = fired[names.indexOf(covering[0] as string)] as StoredFiring;
        return {
          refusal: `${req.target.label} was captured by rule ${covering.join(', ')} on replica ${f.instance ?? 'unknown'} within alerts.cooldown`,
          answeredBy: { triggers: covering, instance: f.instance ?? 'unknown', at: f.at },
          record: [],
        };
      }
      return { record: [[k, JSON.stringify({ at: now, instance: this.instance })]] };
    }
    const rules = req.reason === 'trigger' ? (req.triggers ?? []) : [];
    if (rules.length === 0) return { record: [] };
    // Rule names are [a-z0-9-]: valid KV key tokens as they are.
    const keys = rules.map((t) => `fired.${token}.${t.name}`);
    const last = await Promise.all(keys.map(read));
    // Escalations are not firings: only firings are checked against the cooldown.
    const firing = rules.map((t, i) => ({ t, i })).filter(({ t }) => (t.escalation_step ?? 0) === 0);
    const inCooldown = firing.filter(({ t, i }) => {
      const l = last[i];
      const cooldown = this.#o.ruleCooldownMs(t.name);
      return l !== undefined && cooldown !== undefined && now - l.at < cooldown;
    });
    if (firing.length > 0 && inCooldown.length === firing.length) {
      const by = [...new Set(inCooldown.map(({ i }) => last[i]?.instance ?? 'unknown'))].join(', ');
      const fleet = new Map<string, FleetMemory>();
      for (const { t, i } of inCooldown) {
        const l = last[i] as StoredFiring;
        fleet.set(t.name, { lastFiredAt: l.at, peak: l.peak, step: l.step });
      }
      return { refusal: `rule ${inCooldown.map(({ t }) => t.name).join(', ')} captured ${req.target.label} on replica ${by} within its cooldown`, fleet, record: [] };
    }
    // What the next owner needs to decide as this one would: the firing's time, the peak and the step.
    const record = rules.map((t, i): [string, string] => {
      const step = t.escalation_step ?? 0;
      const at = step === 0 ? now : (last[i]?.at ?? now);
      return [keys[i] as string, JSON.stringify({ at, instance: this.instance, peak: t.value, step, profiles: req.profiles })];
    });
    return { record };
  }

  /** Guarantee 7: without JetStream, capture what this replica owned at its last good view, nothing else. */
  #withoutCoordination(key: string, label: string): GateResult {
    if (this.#haveView && this.owns(key)) {
      this.#o.metrics.coordinationLeases.inc({ result: 'unavailable' });
      return { ok: true, release: () => undefined };
    }
    this.#o.metrics.coordinationLeases.inc({ result: 'refused' });
    return { ok: false, reason: 'held_elsewhere', message: `coordination is unavailable and ${label} was not this replica's at its last good view` };
  }

  /**
   * The per-server capture lease: a KV create (succeeds only when the key has no value), renewed with
   * compare-and-set every heartbeat while the capture runs, deleted (at our revision only) when it ends.
   * Its TTL is the bucket's, lease_ttl: a replica that dies mid-capture frees it within lease_ttl.
   */
  async #takeLease(live: KV, token: string, label: string): Promise<{ ok: true; release: () => Promise<void> } | { ok: false; holder: string }> {
    const c = this.#o.config;
    const k = `lease.${token}`;
    const value = JSON.stringify({ instance: this.instance, server: label, at: Date.now() });
    let created: number | undefined;
    for (let attempt = 0; created === undefined; attempt++) {
      try {
        created = await bounded(live.create(k, value), c.timeoutMs, 'taking a capture lease');
      } catch (err) {
        if (codeOf(err) !== JS_WRONG_LAST_SEQUENCE) throw err;
        const held = await bounded(live.get(k), c.timeoutMs, 'reading a capture lease');
        const holder = held?.operation === 'PUT' ? holderOf(held.value) : undefined;
        // Released (or expired) between our create and our read: free now, so ask again (twice at most).
        if (held?.operation === 'PUT' || attempt >= 2) return { ok: false, holder: holder ?? 'unknown' };
      }
    }
    let rev: number = created;
    let stopped = false;
    const renew = setInterval(() => {
      void bounded(live.update(k, value, rev), c.timeoutMs, 'renewing a capture lease').then(
        (r) => {
          rev = r;
        },
        (err: unknown) => {
          if (stopped) return;
          this.#o.metrics.coordinationErrors.inc({ op: 'lease' });
          this.#o.log.warn({ server: label, err: describeError(err) }, 'could not renew the capture lease; the capture goes on');
        },
      );
    }, c.heartbeatMs);
    renew.unref();
    const release = async (): Promise<void> => {
      if (stopped) return;
      stopped = true;
      clearInterval(renew);
      this.#leases.delete(release);
      await bounded(live.delete(k, { previousSeq: rev }), c.timeoutMs, 'releasing a capture lease').catch(() => undefined);
    };
    this.#leases.add(release);
    return { ok: true, release };
  }

  /** One slot in the fleet-wide capture.limit window, by compare-and-set (retried when another replica wrote first). */
  async #takeSlot(state: KV, count: number, windowMs: number): Promise<{ ok: true } | { ok: false; freeAt: number }> {
    const timeoutMs = this.#o.config.timeoutMs;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const e = await bounded(state.get('limit.window'), timeoutMs, 'reading the capture.limit window');
      const present = e !== null && e.operation === 'PUT';
      const d = admit(parseWindow(present ? e.value : undefined), Date.now(), count, windowMs);
      if (!d.ok) return { ok: false, freeAt: d.freeAt ?? Date.now() + windowMs };
      try {
        if (e === null) await bounded(state.create('limit.window', encodeWindow(d.next)), timeoutMs, 'writing the capture.limit window');
        else await bounded(state.update('limit.window', encodeWindow(d.next), e.revision), timeoutMs, 'writing the capture.limit window');
        return { ok: true };
      } catch (err) {
        if (codeOf(err) !== JS_WRONG_LAST_SEQUENCE) throw err;
        // Another replica wrote first: back off a little, at random, so that the racers spread out.
        await new Promise((r) => setTimeout(r, 5 + Math.floor(Math.random() * 25)));
      }
    }
    throw new CoordinationError(`the capture.limit window changed ${CAS_ATTEMPTS} times while this replica tried to take a slot`, 'unavailable');
  }

  /** Leaves the member list at once (its servers move without waiting for lease_ttl), then disconnects. Idempotent. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#wake.abort();
    await this.#loop?.catch(() => undefined);
    await Promise.all([...this.#leases].map((r) => r().catch(() => undefined)));
    const b = this.#available ? this.#buckets : undefined;
    if (b) await bounded(b.live.delete(`m.${this.instance}`), this.#o.config.timeoutMs, 'leaving').catch(() => undefined);
    await this.#conn.stop();
  }
}

async function readMembers(live: KV): Promise<Map<string, number>> {
  const names: string[] = [];
  for await (const k of await live.keys('m.>')) names.push(k);
  const revisions = new Map<string, number>();
  await Promise.all(
    names.map(async (k) => {
      const e = await live.get(k);
      if (e !== null && e.operation === 'PUT') revisions.set(k.slice(2), e.revision);
    }),
  );
  return revisions;
}

function field(bytes: Uint8Array, key: string): string | undefined {
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
    return typeof v[key] === 'string' ? v[key] : undefined;
  } catch {
    return undefined;
  }
}

const codeOf = (err: unknown): number | undefined => (typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : undefined);

/** A firing (or an alert capture) as stored in `state`: when, by whom, and for rules the peak and step. */
interface StoredFiring {
  readonly at: number;
  readonly instance: string | undefined;
  readonly peak: number | undefined;
  readonly step: number;
  /** The profiles of the capture (rules; absent in older values). */
  readonly profiles: readonly string[] | undefined;
}

/** Reads a stored firing; anything unreadable counts as none (older values have no peak or step). */
function parseFiring(bytes: Uint8Array): StoredFiring | undefined {
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes)) as { at?: unknown; instance?: unknown; peak?: unknown; step?: unknown; profiles?: unknown };
    if (typeof v.at !== 'number') return undefined;
    return {
      at: v.at,
      instance: typeof v.instance === 'string' ? v.instance : undefined,
      peak: typeof v.peak === 'number' ? v.peak : undefined,
      step: typeof v.step === 'number' && Number.isInteger(v.step) && v.step >= 0 ? v.step : 0,
      profiles: Array.isArray(v.profiles) ? v.profiles.filter((p): p is string => typeof p === 'string') : undefined,
    };
  } catch {
    return undefined;
  }
}

function holderOf(bytes: Uint8Array): string | undefined {
  return field(bytes, 'instance');
}

/** Resolves after `ms`, or at once when `signal` aborts; leaves no listener behind (it runs every heartbeat). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const onAbort = (): void => {
      clearTimeout(t);
      resolve();
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
