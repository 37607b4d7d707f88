/**
 * Holds the rule state of every (server, rule) pair and turns each poll outcome into decisions.
 * No I/O and no timers: `now` comes from the caller.
 *
 * A `fire` decision is a proposal: the caller submits one capture for all the proposals of one observation,
 * then tells the engine what happened, `commit` (accepted: the rules are disarmed, their cooldown starts) or
 * `refused` (the rules stay armed and propose again at the next sample still above).
 */
import type { TriggerConfig } from '../config/types.js';
import type { Varz } from '../watch/varz.js';
import { commitFire, initialRuleState, isFiring, metricValue, refuseFire, stepRule, type RuleState } from './rules.js';

export type Observation = { readonly ok: false } | { readonly ok: true; readonly varz: Varz };

export type Decision =
  | { readonly kind: 'fire'; readonly trigger: TriggerConfig; readonly value: number }
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
}

interface Entry {
  label: string;
  rules: Map<string, RuleEntry>;
}

export class TriggerEngine {
  #triggers: readonly TriggerConfig[];
  readonly #servers = new Map<string, Entry>();

  constructor(triggers: readonly TriggerConfig[]) {
    this.#triggers = triggers;
  }

  get triggers(): readonly TriggerConfig[] {
    return this.#triggers;
  }

  /** Replaces the rules; state is kept for rules whose name stays. */
  setTriggers(triggers: readonly TriggerConfig[]): void {
    this.#triggers = triggers;
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
    for (const t of this.#triggers) {
      if (!this.#applies(t, label)) {
        e.rules.delete(t.name);
        continue;
      }
      let r = e.rules.get(t.name);
      if (!r) {
        r = { state: initialRuleState(now), lastSkip: undefined, lastFiring: undefined };
        e.rules.set(t.name, r);
      }
      const input = obs.ok ? { ok: true as const, serverId: obs.varz.serverId, value: metricValue(t.metric, obs.varz) } : FAILED;
      const { state, event } = stepRule(t, r.state, input, now);
      r.state = state;
      if (event?.kind === 'fire') (out ??= []).push({ kind: 'fire', trigger: t, value: event.value });
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
  *firing(): Generator<{ server: string; trigger: string; firing: boolean }> {
    for (const e of this.#servers.values()) {
      for (const [trigger, r] of e.rules) yield { server: e.label, trigger, firing: isFiring(r.state) };
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
