/**
 * Holds the rule state of every (server, rule) pair and turns each poll outcome into decisions.
 * No I/O and no timers: `now` comes from the caller.
 *
 * A `fire` decision is a proposal: the caller submits one capture for all the proposals of one observation,
 * then tells the engine what happened, `commit` (accepted: the rules are disarmed, their cooldown starts) or
 * `refused` (the rules stay armed and propose again at the next sample still above).
 */
import type { TriggerConfig } from '../config/types.js';
import type { RuleSeries } from '../metrics/registry.js';
import type { Varz } from '../watch/varz.js';
import { compilePath } from './monitor-fields.js';
import { adoptMemory, commitFire, initialRuleState, isFiring, metricValue, refuseFire, stepRule, undoCommit, type BuiltinMetric, type FleetMemory, type RuleState } from './rules.js';

/** Reads a rule's value from one sample. */
export type Extractor = (varz: Varz) => number | undefined;

const BUILTIN: ReadonlySet<string> = new Set(['cpu', 'cpu_per_core', 'mem', 'mem_of_limit']);

/**
 * The value reader of a rule, built once per config: a built-in from the parsed fields, a field path from the
 * parsed document (`varz.doc`) with its segments split once; rules on the same path share one reader.
 */
export function compileExtractors(triggers: readonly TriggerConfig[]): Extractor[] {
  const byPath = new Map<string, Extractor>();
  return triggers.map((t) => {
    let f = byPath.get(t.metric);
    if (!f) {
      if (BUILTIN.has(t.metric)) {
        const m = t.metric as BuiltinMetric;
        f = (v) => metricValue(m, v);
      } else {
        const read = compilePath(t.metric);
        f = (v) => read(v.doc);
      }
      byPath.set(t.metric, f);
    }
    return f;
  });
}

export type Observation = { readonly ok: false } | { readonly ok: true; readonly varz: Varz };

export type Decision =
  /** `step` 0 is a firing, 1.. an escalation; `raw` is the field's value (the counter of a rate rule). */
  | { readonly kind: 'fire'; readonly trigger: TriggerConfig; readonly value: number; readonly step: number; readonly raw: number | undefined }
  | { readonly kind: 'skip'; readonly trigger: TriggerConfig; readonly reason: 'cooldown'; readonly value: number };

const NO_DECISIONS: readonly Decision[] = Object.freeze([]);
const FAILED = { ok: false } as const;

export interface LastSkip {
  readonly at: number;
  readonly reason: string;
  readonly message: string;
}

/** What became of the rule's last firing: a capture (into `incident`), or a refusal (the rule stayed armed). */
export type LastFiring =
  | { readonly at: number; readonly outcome: 'captured'; readonly incident: string }
  | { readonly at: number; readonly outcome: 'refused'; readonly reason: string; readonly message: string };

export interface RuleView {
  readonly key: string;
  readonly label: string;
  readonly trigger: TriggerConfig;
  readonly state: RuleState;
  readonly lastSkip: LastSkip | undefined;
  readonly lastFiring: LastFiring | undefined;
}

interface RuleEntry {
  state: RuleState;
  lastSkip: LastSkip | undefined;
  lastFiring: LastFiring | undefined;
  /** The state before the last commit (replicas: the fleet-wide gate may still refuse that capture). */
  beforeCommit?: RuleState;
}

interface Entry {
  label: string;
  rules: Map<string, RuleEntry>;
}

export class TriggerEngine {
  #triggers: readonly TriggerConfig[];
  #extract: Extractor[];
  readonly #servers = new Map<string, Entry>();

  constructor(triggers: readonly TriggerConfig[]) {
    this.#triggers = triggers;
    this.#extract = compileExtractors(triggers);
  }

  get triggers(): readonly TriggerConfig[] {
    return this.#triggers;
  }

  /** Replaces the rules; state is kept for rules whose name stays. */
  setTriggers(triggers: readonly TriggerConfig[]): void {
    this.#triggers = triggers;
    this.#extract = compileExtractors(triggers);
    const names = new Set(triggers.map((t) => t.name));
    for (const e of this.#servers.values()) {
      for (const name of e.rules.keys()) if (!names.has(name)) e.rules.delete(name);
    }
  }

  #applies(t: TriggerConfig, label: string): boolean {
    return t.servers === undefined || t.servers.includes(label);
  }

  /** Steps every rule that applies to the server; most polls decide nothing (the shared empty list). */
  observe(key: string, label: string, obs: Observation, now: number): readonly Decision[] {
    let e = this.#servers.get(key);
    if (!e) {
      e = { label, rules: new Map() };
      this.#servers.set(key, e);
    }
    e.label = label;
    let out: Decision[] | undefined;
    const triggers = this.#triggers;
    for (let i = 0; i < triggers.length; i++) {
      const t = triggers[i] as TriggerConfig;
      if (!this.#applies(t, label)) {
        e.rules.delete(t.name);
        continue;
      }
      let r = e.rules.get(t.name);
      if (!r) {
        r = { state: initialRuleState(now), lastSkip: undefined, lastFiring: undefined };
        e.rules.set(t.name, r);
      }
      const input = obs.ok ? { ok: true as const, serverId: obs.varz.serverId, value: (this.#extract[i] as Extractor)(obs.varz) } : FAILED;
      // Stepped in place: the entry's state object lives as long as the rule (commit and refusals replace it).
      const { state, event } = stepRule(t, r.state, input, now, r.state);
      if (event?.kind === 'fire') (out ??= []).push({ kind: 'fire', trigger: t, value: event.value, step: event.step, raw: state.raw });
      else if (event?.kind === 'skip') {
        r.lastSkip = { at: now, reason: 'cooldown', message: 'the rule is in its cooldown' };
        (out ??= []).push({ kind: 'skip', trigger: t, reason: 'cooldown', value: event.value });
      }
    }
    return out ?? NO_DECISIONS;
  }

  /** The proposed firings of `triggers` were captured into `incident`: disarm them and start their cooldowns. */
  commit(key: string, triggers: readonly string[], incident: string, now: number): void {
    const e = this.#servers.get(key);
    for (const name of triggers) {
      const r = e?.rules.get(name);
      if (!r) continue;
      r.beforeCommit = r.state;
      r.state = commitFire(r.state, now);
      r.lastFiring = { at: now, outcome: 'captured', incident };
    }
  }

  /**
   * The proposed firings of `triggers` were refused (busy, limit, unsupported): they stay armed. Returns the
   * rules for which this is the first refusal of their episode (count and log those; the others are retries).
   */
  refused(key: string, triggers: readonly string[], skip: { reason: string; message: string }, now: number): string[] {
    const e = this.#servers.get(key);
    const first: string[] = [];
    for (const name of triggers) {
      const r = e?.rules.get(name);
      if (!r) continue;
      const { state, report } = refuseFire(r.state);
      r.state = state;
      r.lastFiring = { at: now, outcome: 'refused', reason: skip.reason, message: skip.message };
      if (report) {
        r.lastSkip = { at: now, reason: skip.reason, message: skip.message };
        first.push(name);
      }
    }
    return first;
  }

  /**
   * Replicas: the capture committed for `triggers` was refused afterwards by the fleet-wide gate. `memory`
   * holds, for each rule the fleet refused as in its cooldown, its firing on another replica: that firing
   * replaces the local one (its cooldown, peak and step). The other rules are put back as before the commit
   * (armed, proposing again at the next sample), as for a refusal known at once.
   */
  refusedByFleet(key: string, triggers: readonly string[], skip: { reason: string; message: string }, memory: ReadonlyMap<string, FleetMemory>, now: number): void {
    const e = this.#servers.get(key);
    for (const name of triggers) {
      const r = e?.rules.get(name);
      if (!r) continue;
      const m = memory.get(name);
      if (m !== undefined) r.state = adoptMemory(r.state, m, now);
      else if (r.beforeCommit !== undefined) r.state = undoCommit(r.state, r.beforeCommit);
      r.beforeCommit = undefined;
      r.lastFiring = { at: now, outcome: 'refused', reason: skip.reason, message: skip.message };
      r.lastSkip = { at: now, reason: skip.reason, message: skip.message };
    }
  }

  forget(key: string): void {
    this.#servers.delete(key);
  }

  /** The rules of one server. */
  viewOf(key: string): RuleView[] {
    const e = this.#servers.get(key);
    if (!e) return [];
    const out: RuleView[] = [];
    for (const t of this.#triggers) {
      const r = e.rules.get(t.name);
      if (r) out.push({ key, label: e.label, trigger: t, state: r.state, lastSkip: r.lastSkip, lastFiring: r.lastFiring });
    }
    return out;
  }

  /** Whether each (server, rule) is firing, by label (the `trigger_firing` gauge, read at each scrape). */
  *firing(): Generator<RuleSeries> {
    const byName = new Map<string, TriggerConfig>();
    for (const t of this.#triggers) byName.set(t.name, t);
    for (const e of this.#servers.values()) {
      for (const [trigger, r] of e.rules) {
        const t = byName.get(trigger);
        yield {
          server: e.label,
          trigger,
          firing: isFiring(r.state),
          metric: t?.metric,
          rate: t?.rateMs === undefined ? '' : `${t.rateMs / 1000}s`,
          escalate: t?.escalatePercent === undefined ? '' : `${t.escalatePercent}%`,
          step: t?.escalatePercent === undefined ? undefined : r.state.step,
        };
      }
    }
  }

  view(): RuleView[] {
    const out: RuleView[] = [];
    for (const [key, e] of this.#servers) {
      for (const t of this.#triggers) {
        const r = e.rules.get(t.name);
        if (r) out.push({ key, label: e.label, trigger: t, state: r.state, lastSkip: r.lastSkip, lastFiring: r.lastFiring });
      }
    }
    return out;
  }
}
