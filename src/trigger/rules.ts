/**
 * Threshold rules as a pure state machine per (server, rule): state + input + now -> next state + event.
 * No I/O, no timers: the clock is the `now` argument.
 *
 *   idle ──value > above──> pending ──stayed above for `for`──> fired (disarmed)
 *    ^                        │                                   │ value drops below rearm_below
 *    └──value not above───────┘                                   v
 *    └──────────────cooldown over─────────────────────────────── cooling
 *
 * A pending rule whose `for` is met while the cooldown still runs reports one `skip(cooldown)` and stays
 * pending; it fires as soon as the cooldown is over if the value is still above.
 * A failed poll, a missing value, or a server restart (new server_id) ends a pending episode.
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

function withPhase(s: RuleState, phase: Phase, now: number, patch: Partial<RuleState>): RuleState {
  return { ...s, ...patch, phase, since: phase === s.phase ? s.since : now };
}

function restingPhase(rule: RuleSpec, s: RuleState, now: number): Phase {
  if (!s.armed) return 'fired';
  return inCooldown(rule, s, now) ? 'cooling' : 'idle';
}

function rearms(rule: RuleSpec, value: number): boolean {
  // With the default rearm_below (equal to above) "not above" is enough to re-arm.
  return value < rule.rearmBelow || (rule.rearmBelow === rule.above && value <= rule.above);
}

export function stepRule(
  rule: RuleSpec,
  prev: RuleState,
  input: RuleInput,
  now: number,
): { state: RuleState; event?: RuleEvent } {
  if (!input.ok || input.value === undefined || (prev.serverId !== undefined && prev.serverId !== input.serverId)) {
    // No usable value, or a new server process: whatever was pending is over.
    const base: RuleState = {
      ...prev,
      pendingSince: undefined,
      cooldownReported: false,
      value: input.ok ? input.value : undefined,
      serverId: input.ok ? input.serverId : prev.serverId,
    };
    // A restarted server with a value still gets evaluated below; a failed poll stops here.
    if (!input.ok || input.value === undefined) {
      return { state: withPhase(base, restingPhase(rule, base, now), now, {}) };
    }
    prev = withPhase(base, restingPhase(rule, base, now), now, {});
  }

  const value = input.value;
  let s: RuleState = { ...prev, value, serverId: input.serverId };

  if (!s.armed && rearms(rule, value)) s = { ...s, armed: true };
  if (!s.armed) return { state: withPhase(s, 'fired', now, {}) };

  if (!(value > rule.above)) {
    return { state: withPhase(s, restingPhase(rule, s, now), now, { pendingSince: undefined, cooldownReported: false }) };
  }

  const pendingSince = s.pendingSince ?? now;
  s = withPhase(s, 'pending', now, { pendingSince });
  if (now - pendingSince < rule.forMs) return { state: s };

  if (inCooldown(rule, s, now)) {
    if (s.cooldownReported) return { state: s };
    return { state: { ...s, cooldownReported: true }, event: { kind: 'skip', reason: 'cooldown', value } };
  }

  const fired = withPhase(s, 'fired', now, {
    armed: false,
    lastFiredAt: now,
    pendingSince: undefined,
    cooldownReported: false,
  });
  return { state: fired, event: { kind: 'fire', value } };
}
