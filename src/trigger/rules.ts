/**
 * Threshold rules as a pure state machine per (server, rule): state + input + now -> next state + event.
 * No I/O, no timers: the clock is the `now` argument.
 *
 *   idle ──value > above──> pending ──stayed above for `for`, capture accepted──> fired (disarmed)
 *    ^                        │                                   │ value drops below rearm_below
 *    └──value not above───────┘                                   v
 *    └──────────────cooldown over─────────────────────────────── cooling
 *
 * A pending rule whose `for` is met while the cooldown still runs reports one `skip(cooldown)` and stays
 * pending; it fires as soon as the cooldown is over if the value is still above.
 * A failed poll, a missing value, or a server restart (new server_id) ends a pending episode.
 *
 * Firing is two steps. `stepRule` only proposes it (event `fire`; the rule stays pending and armed); the
 * caller commits it with `commitFire` once the capture was accepted (disarmed, cooldown starts), or records
 * with `refuseFire` that it was refused (busy, limit, unsupported): the rule stays armed and proposes again
 * at the next sample still above. Only the first refusal of an episode is reported, so a refused rule does
 * not turn into a storm of skips.
 */
import type { TriggerConfig, TriggerMetric } from '../config/types.js';

export type Phase = 'idle' | 'pending' | 'fired' | 'cooling';

export interface RuleState {
  readonly phase: Phase;
  /** When the current phase began (ms). */
  readonly since: number;
  /** Whether the rule may fire: true until it fires, then again once the value drops below rearm_below. */
  readonly armed: boolean;
  readonly pendingSince: number | undefined;
  readonly lastFiredAt: number | undefined;
  /** A cooldown skip was already reported for the current pending episode. */
  readonly cooldownReported: boolean;
  /** A refused firing was already reported for the current pending episode. */
  readonly refusalReported: boolean;
  readonly serverId: string | undefined;
  /** The last value seen (undefined after a failed poll or when the metric is not available). */
  readonly value: number | undefined;
}

export type RuleInput =
  | { readonly ok: false }
  | { readonly ok: true; readonly serverId: string; readonly value: number | undefined };

export type RuleEvent =
  | { readonly kind: 'fire'; readonly value: number }
  | { readonly kind: 'skip'; readonly reason: 'cooldown'; readonly value: number };

export type RuleSpec = Pick<TriggerConfig, 'above' | 'forMs' | 'rearmBelow' | 'cooldownMs'>;

export function initialRuleState(now: number): RuleState {
  return {
    phase: 'idle',
    since: now,
    armed: true,
    pendingSince: undefined,
    lastFiredAt: undefined,
    cooldownReported: false,
    refusalReported: false,
    serverId: undefined,
    value: undefined,
  };
}

/** The metric a rule watches, from the fields of one varz; undefined when the server does not report it. */
export function metricValue(
  metric: TriggerMetric,
  v: { cpu: number; mem: number; cores: number; gomaxprocs: number | undefined; gomemlimit: number | undefined },
): number | undefined {
  switch (metric) {
    case 'cpu':
      return v.cpu;
    case 'cpu_per_core': {
      const procs = v.gomaxprocs ?? v.cores;
      return procs > 0 ? v.cpu / procs : undefined;
    }
    case 'mem':
      return v.mem;
    case 'mem_of_limit':
      return v.gomemlimit !== undefined && v.gomemlimit > 0 ? (v.mem / v.gomemlimit) * 100 : undefined;
  }
}

export function inCooldown(rule: RuleSpec, s: RuleState, now: number): boolean {
  return s.lastFiredAt !== undefined && now - s.lastFiredAt < rule.cooldownMs;
}

/** 1 while pending, or fired and not yet re-armed (the `trigger_firing` gauge). */
export function isFiring(s: RuleState): boolean {
  return s.phase === 'pending' || s.phase === 'fired';
}

/** Earliest time the rule could fire given what it has seen; undefined when it is not on its way. */
export function nextFireAt(rule: RuleSpec, s: RuleState): number | undefined {
  if (!s.armed) return undefined;
  const cooldownEnd = s.lastFiredAt !== undefined ? s.lastFiredAt + rule.cooldownMs : 0;
  if (s.pendingSince === undefined) return undefined;
  return Math.max(s.pendingSince + rule.forMs, cooldownEnd);
}

function restingPhase(rule: RuleSpec, armed: boolean, lastFiredAt: number | undefined, now: number): Phase {
  if (!armed) return 'fired';
  return lastFiredAt !== undefined && now - lastFiredAt < rule.cooldownMs ? 'cooling' : 'idle';
}

function rearms(rule: RuleSpec, value: number): boolean {
  // With the default rearm_below (equal to above) "not above" is enough to re-arm.
  return value < rule.rearmBelow || (rule.rearmBelow === rule.above && value <= rule.above);
}

/**
 * One step. Written with locals and a single new state object at the end (not a chain of spreads): it runs
 * for every rule on every poll, and each state it returns lives one interval.
 */
export function stepRule(
  rule: RuleSpec,
  prev: RuleState,
  input: RuleInput,
  now: number,
): { state: RuleState; event?: RuleEvent } {
  let phase = prev.phase;
  let since = prev.since;
  let armed = prev.armed;
  let pendingSince = prev.pendingSince;
  let cooldownReported = prev.cooldownReported;
  let refusalReported = prev.refusalReported;
  let serverId = prev.serverId;
  let lastFiredAt = prev.lastFiredAt;
  const enter = (p: Phase): void => {
    if (p !== phase) {
      phase = p;
      since = now;
    }
  };

  if (!input.ok || input.value === undefined || (serverId !== undefined && serverId !== input.serverId)) {
    // No usable value, or a new server process: whatever was pending is over.
    pendingSince = undefined;
    cooldownReported = false;
    refusalReported = false;
    if (input.ok) serverId = input.serverId;
    enter(restingPhase(rule, armed, lastFiredAt, now));
    // A failed poll stops here; a restarted server with a value is evaluated below.
    if (!input.ok || input.value === undefined) {
      return { state: ruleState(phase, since, armed, pendingSince, lastFiredAt, cooldownReported, refusalReported, serverId, undefined) };
    }
  }

  const value = input.value;
  serverId = input.serverId;
  let event: RuleEvent | undefined;
  if (!armed && rearms(rule, value)) armed = true;
  if (!armed) {
    enter('fired');
  } else if (!(value > rule.above)) {
    pendingSince = undefined;
    cooldownReported = false;
    refusalReported = false;
    enter(restingPhase(rule, armed, lastFiredAt, now));
  } else {
    pendingSince ??= now;
    enter('pending');
    if (now - pendingSince >= rule.forMs) {
      if (lastFiredAt !== undefined && now - lastFiredAt < rule.cooldownMs) {
        if (!cooldownReported) {
          cooldownReported = true;
          event = { kind: 'skip', reason: 'cooldown', value };
        }
      } else {
        // A proposal: the rule stays pending and armed until the caller commits or refuses it.
        event = { kind: 'fire', value };
      }
    }
  }
  const state = ruleState(phase, since, armed, pendingSince, lastFiredAt, cooldownReported, refusalReported, serverId, value);
  return event ? { state, event } : { state };
}

/** The proposed firing led to a capture: the rule is disarmed and its cooldown starts now. */
export function commitFire(prev: RuleState, now: number): RuleState {
  return ruleState('fired', prev.phase === 'fired' ? prev.since : now, false, undefined, now, false, false, prev.serverId, prev.value);
}

/**
 * The proposed firing was refused (busy, limit, unsupported): the rule stays armed and pending, and proposes
 * again at the next sample still above. `report` is true for the first refusal of the episode only.
 */
export function refuseFire(prev: RuleState): { state: RuleState; report: boolean } {
  if (prev.refusalReported) return { state: prev, report: false };
  return { state: { ...prev, refusalReported: true }, report: true };
}

function ruleState(
  phase: Phase,
  since: number,
  armed: boolean,
  pendingSince: number | undefined,
  lastFiredAt: number | undefined,
  cooldownReported: boolean,
  refusalReported: boolean,
  serverId: string | undefined,
  value: number | undefined,
): RuleState {
  return { phase, since, armed, pendingSince, lastFiredAt, cooldownReported, refusalReported, serverId, value };
}
