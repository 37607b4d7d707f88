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
 *
 * Rates (`rate: 1m`): the rule compares the counter's per-second increase over the window instead of the
 * field itself. The window keeps the samples of the last `rate` (and the one just before, so that a poll
 * interval longer than the window still gives a rate). A counter that goes down (a reset) or a new server_id
 * restarts the window with that one sample: no rate, so nothing fires, until the next sample.
 *
 * Escalation (`escalate: 25%`): after a capture, while the cooldown runs, a value above the value of the last
 * capture (its peak) by that much proposes another capture, at most `escalate_max` times per firing. It is a
 * proposal like a firing: `commitFire` consumes the step (the peak becomes this value), `refuseFire` does not.
 * Escalations do not restart the cooldown; `for` does not apply to them.
 */
import type { TriggerConfig } from '../config/types.js';

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
  /** The last value compared with `above` (the rate for a rate rule; undefined after a failed poll, a missing field, or a restarted window). */
  readonly value: number | undefined;
  /** The field's own value at the last sample (the counter, for a rate rule). */
  readonly raw: number | undefined;
  /** A rate rule's samples as [t0, v0, t1, v1, ...], oldest first; undefined for other rules. */
  readonly window: readonly number[] | undefined;
  /** The value at the last capture (the peak an escalation must exceed); undefined before the first. */
  readonly peak: number | undefined;
  /** Escalations captured since the last firing (0 after a firing). */
  readonly step: number;
  /** The step the current proposal is for (0 a firing, n an escalation); undefined when nothing is proposed. */
  readonly proposal: number | undefined;
}

export type RuleInput =
  | { readonly ok: false }
  | { readonly ok: true; readonly serverId: string; readonly value: number | undefined };

export type RuleEvent =
  /** `step` 0 is a firing, 1.. an escalation within the cooldown. */
  | { readonly kind: 'fire'; readonly value: number; readonly step: number }
  | { readonly kind: 'skip'; readonly reason: 'cooldown'; readonly value: number };

export type RuleSpec = Pick<TriggerConfig, 'above' | 'forMs' | 'rearmBelow' | 'cooldownMs'> &
  Partial<Pick<TriggerConfig, 'rateMs' | 'escalatePercent' | 'escalateMax'>>;

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
    raw: undefined,
    window: undefined,
    peak: undefined,
    step: 0,
    proposal: undefined,
  };
}

export type BuiltinMetric = 'cpu' | 'cpu_per_core' | 'mem' | 'mem_of_limit';

/** The built-in metric a rule watches, from the fields of one varz; undefined when the server does not report it. */
export function metricValue(
  metric: BuiltinMetric,
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

/** Resolution of a rate window: its base is at most windowMs / WINDOW_STEPS older than the window's start. */
export const WINDOW_STEPS = 8;

/**
 * A rate rule's window after one sample: samples older than the window are dropped, except the newest of
 * them (the window's base); a counter that went down restarts it. `rate` is per second, undefined with one
 * sample.
 */
export function stepWindow(
  prev: readonly number[] | undefined,
  now: number,
  counter: number,
  windowMs: number,
): { window: readonly number[]; rate: number | undefined } {
  const n = prev === undefined ? 0 : prev.length;
  if (prev === undefined || n === 0 || counter < (prev[n - 1] as number)) return { window: [now, counter], rate: undefined };
  // A sample no newer than the last one adds nothing.
  if (now <= (prev[n - 2] as number)) return { window: prev, rate: undefined };
  // Keep the newest sample at or before the window's start as the base.
  let i = 0;
  while (i + 2 < n && (prev[i + 2] as number) <= now - windowMs) i += 2;
  // At most about WINDOW_STEPS samples per window: the newest sample replaces the last one while the one
  // before that is less than a step old (a 1m window polled every second copies ~20 numbers, not ~120).
  const replaceLast = n - i >= 4 && now - (prev[n - 4] as number) < windowMs / WINDOW_STEPS;
  const window = prev.slice(i, replaceLast ? n - 2 : n);
  window.push(now, counter);
  const t0 = window[0] as number;
  const v0 = window[1] as number;
  return { window, rate: ((counter - v0) * 1000) / (now - t0) };
}

/**
 * One step. Written with locals and a single state object at the end (not a chain of spreads): it runs for
 * every rule on every poll. With `into` (the engine passes `prev` itself) the new state is written into that
 * object instead of a new one: a state per rule per poll lived one interval, long enough for the young
 * generation to promote it, and at 5,000 servers filled the old space with dead states between collections.
 * `prev` is read in full before anything is written, so `into === prev` is safe.
 */
export function stepRule(
  rule: RuleSpec,
  prev: RuleState,
  input: RuleInput,
  now: number,
  into?: RuleState,
): { state: RuleState; event?: RuleEvent } {
  let phase = prev.phase;
  let since = prev.since;
  let armed = prev.armed;
  let pendingSince = prev.pendingSince;
  let cooldownReported = prev.cooldownReported;
  let refusalReported = prev.refusalReported;
  let serverId = prev.serverId;
  let peak = prev.peak;
  let step = prev.step;
  const lastFiredAt = prev.lastFiredAt;
  const enter = (p: Phase): void => {
    if (p !== phase) {
      phase = p;
      since = now;
    }
  };
  const restarted = input.ok && serverId !== undefined && serverId !== input.serverId;
  const raw = input.ok ? input.value : undefined;
  let window = prev.window;
  let value = raw;
  if (rule.rateMs !== undefined) {
    if (raw === undefined) value = undefined;
    else {
      // A new server process restarts the window: its counters started again from zero.
      const w = stepWindow(restarted ? undefined : prev.window, now, raw, rule.rateMs);
      window = w.window;
      value = w.rate;
    }
  }
  if (restarted) {
    // The peak belongs to the old process.
    peak = undefined;
    step = 0;
  }

  if (value === undefined || restarted) {
    // No usable value, or a new server process: whatever was pending is over.
    pendingSince = undefined;
    cooldownReported = false;
    refusalReported = false;
    if (input.ok && serverId !== input.serverId) serverId = input.serverId;
    enter(restingPhase(rule, armed, lastFiredAt, now));
    // A failed poll stops here; a restarted server with a value is evaluated below.
    if (value === undefined) {
      return { state: ruleState(phase, since, armed, pendingSince, lastFiredAt, cooldownReported, refusalReported, serverId, undefined, raw, window, peak, step, undefined, into) };
    }
  }

  // Kept when equal: the caller's string may be a slice of a whole document (JSON.parse), held as long as the state.
  if (serverId !== (input as { serverId: string }).serverId) serverId = (input as { serverId: string }).serverId;
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
        event = { kind: 'fire', value, step: 0 };
      }
    }
  }
  // An escalation: within the cooldown, above the last capture's peak by escalate%, steps left.
  if (
    rule.escalatePercent !== undefined &&
    event?.kind !== 'fire' &&
    lastFiredAt !== undefined &&
    now - lastFiredAt < rule.cooldownMs &&
    peak !== undefined &&
    step < (rule.escalateMax ?? 0) &&
    value > rule.above &&
    value > peak + Math.abs(peak) * (rule.escalatePercent / 100)
  ) {
    event = { kind: 'fire', value, step: step + 1 };
  }
  const proposal = event?.kind === 'fire' ? event.step : undefined;
  const state = ruleState(phase, since, armed, pendingSince, lastFiredAt, cooldownReported, refusalReported, serverId, value, raw, window, peak, step, proposal, into);
  return event ? { state, event } : { state };
}

/**
 * The proposed firing led to a capture. A firing disarms the rule and starts its cooldown; an escalation
 * leaves both as they are. Either way its value is the new peak.
 */
export function commitFire(prev: RuleState, now: number): RuleState {
  if (prev.proposal !== undefined && prev.proposal > 0) {
    return { ...prev, peak: prev.value, step: prev.proposal, proposal: undefined, refusalReported: false, cooldownReported: false };
  }
  return ruleState('fired', prev.phase === 'fired' ? prev.since : now, false, undefined, now, false, false, prev.serverId, prev.value, prev.raw, prev.window, prev.value, 0, undefined);
}

/**
 * The proposed firing was refused (busy, limit, unsupported): the rule stays armed and pending, and proposes
 * again at the next sample still above; a refused escalation keeps its step. `report` is true for the first
 * refusal of the episode only.
 */
export function refuseFire(prev: RuleState): { state: RuleState; report: boolean } {
  if (prev.refusalReported) return { state: { ...prev, proposal: undefined }, report: false };
  return { state: { ...prev, refusalReported: true, proposal: undefined }, report: true };
}

/** What the replicas share about a rule on a server (src/coord/ keeps it in KV): its last firing and escalation. */
export interface FleetMemory {
  /** When the rule last fired on the server, on any replica (ms). */
  readonly lastFiredAt: number;
  /** The value at the last capture of the rule, firing or escalation (the peak an escalation must exceed). */
  readonly peak: number | undefined;
  /** Escalations captured since that firing. */
  readonly step: number;
}

/**
 * Another replica fired this rule on this server (it owned it before a failover): the local state takes
 * that firing over, so that the cooldown ends when the original's does and an escalation climbs from the
 * original peak. The rule is disarmed as the original was at its firing; a sample below the re-arm level
 * arms it again. Called when the fleet refused this replica's own firing as in its cooldown, so the local
 * firing just committed is replaced. A memory without a peak keeps the local one (the value at that firing).
 */
export function adoptMemory(prev: RuleState, m: FleetMemory, now: number): RuleState {
  return ruleState('fired', prev.phase === 'fired' ? prev.since : now, false, undefined, m.lastFiredAt, false, false, prev.serverId, prev.value, prev.raw, prev.window, m.peak ?? prev.peak, m.step, undefined);
}

/**
 * A capture that was committed (`commitFire`) was then refused by the replicas' fleet-wide gate (another
 * replica is capturing the server, or the fleet-wide capture.limit is full): as for a refusal known at
 * once, the rule is back where it was before the commit (armed, pending, its old cooldown, peak and step)
 * and proposes again at the next sample still above; the refusal counts as reported. The latest sample
 * (value, rate window, server id) is kept.
 */
export function undoCommit(current: RuleState, before: RuleState): RuleState {
  return ruleState(
    before.phase,
    before.since,
    before.armed,
    before.pendingSince,
    before.lastFiredAt,
    before.cooldownReported,
    true,
    current.serverId,
    current.value,
    current.raw,
    current.window,
    before.peak,
    before.step,
    undefined,
  );
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
  raw: number | undefined,
  window: readonly number[] | undefined,
  peak: number | undefined,
  step: number,
  proposal: number | undefined,
  into?: RuleState,
): RuleState {
  if (into === undefined) return { phase, since, armed, pendingSince, lastFiredAt, cooldownReported, refusalReported, serverId, value, raw, window, peak, step, proposal };
  const s = into as { -readonly [K in keyof RuleState]: RuleState[K] };
  s.phase = phase;
  s.since = since;
  s.armed = armed;
  s.pendingSince = pendingSince;
  s.lastFiredAt = lastFiredAt;
  s.cooldownReported = cooldownReported;
  s.refusalReported = refusalReported;
  s.serverId = serverId;
  s.value = value;
  s.raw = raw;
  s.window = window;
  s.peak = peak;
  s.step = step;
  s.proposal = proposal;
  return s;
}
