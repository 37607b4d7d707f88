/**
 * Rule memory across replicas (issue 17, guarantee 3): the pure parts. A firing committed here that the
 * fleet-wide gate then refuses is put right: adopted from the replica that fired it (its cooldown, peak and
 * step: the decisions afterwards are the ones that replica would have taken), or undone (the rule proposes
 * again at the next sample, as after a refusal known at once).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { Clock } from '../../../src/clock.js';
import { parseConfigText } from '../../../src/config/load.js';
import { Flow, type FleetAnswer } from '../../../src/flow.js';
import { adoptMemory, commitFire, initialRuleState, stepRule, undoCommit, type RuleInput, type RuleSpec, type RuleState } from '../../../src/trigger/rules.js';
import type { Varz } from '../../../src/watch/varz.js';
import { flowRig } from '../../helpers/flow.js';

const rule: RuleSpec = { above: 100, forMs: 0, rearmBelow: 100, cooldownMs: 600_000, escalatePercent: 50, escalateMax: 2 };
const up = (value: number): RuleInput => ({ ok: true, serverId: 'N1', value });

/** Steps a rule through `values` (one per second from `t0`), committing every proposal; returns the events. */
function drive(s: RuleState, values: number[], t0: number): { state: RuleState; events: string[] } {
  const events: string[] = [];
  values.forEach((v, i) => {
    const t = t0 + i * 1_000;
    const r = stepRule(rule, s, up(v), t);
    s = r.state;
    if (r.event?.kind === 'fire') {
      events.push(`fire:${r.event.step}@${t}`);
      s = commitFire(s, t);
    } else if (r.event) events.push(`skip@${t}`);
  });
  return { state: s, events };
}

describe('adoptMemory', () => {
  it('a failover decides as the replica that fired would have: same cooldown end, escalation from its peak', () => {
    // Replica A: fires at t=1000 on 150, escalates at 2000 on 240 (> 150 x 1.5).
    const a = drive(initialRuleState(0), [150, 240], 1_000);
    assert.deepEqual(a.events, ['fire:0@1000', 'fire:1@2000']);
    // Replica B takes the server over at t=60s: its first sample proposes a firing, committed here, refused by
    // the fleet as in A's cooldown, with A's memory.
    const b0 = stepRule(rule, initialRuleState(60_000), up(250), 60_000);
    assert.equal(b0.event?.kind, 'fire');
    const refused = commitFire(b0.state, 60_000);
    const b = adoptMemory(refused, { lastFiredAt: 1_000, peak: 240, step: 1 }, 60_500);
    assert.equal(b.lastFiredAt, 1_000, 'the cooldown is the original one, not one restarted at the refusal');
    assert.equal(b.peak, 240);
    assert.equal(b.step, 1);
    assert.equal(b.armed, false);
    // From here both replicas see the same values: they take the same decisions.
    const values = [250, 370, 300, 500];
    const onA = drive(a.state, values, 61_000);
    const onB = drive(b, values, 61_000);
    assert.deepEqual(onB.events, onA.events);
    assert.deepEqual(onB.events, ['fire:2@62000'], 'escalates once past 240 x 1.5, then has no step left');
    // The cooldown ends when A's does: past 601 s a sample that re-armed and then went above fires again.
    const after = drive(onB.state, [50, 200], 601_000);
    assert.deepEqual(after.events, ['fire:0@602000']);
    const early = drive(onB.state, [50, 200], 590_000);
    assert.deepEqual(early.events, ['skip@591000'], 'inside the original cooldown: a skip, no firing');
  });

  it('keeps the local peak when the stored memory has none (written before peaks were stored)', () => {
    const r = stepRule(rule, initialRuleState(0), up(150), 1_000);
    const s = adoptMemory(commitFire(r.state, 1_000), { lastFiredAt: 500, peak: undefined, step: 0 }, 1_100);
    assert.equal(s.peak, 150);
    assert.equal(s.lastFiredAt, 500);
  });
});

describe('undoCommit', () => {
  it('a firing refused by the fleet after it was committed proposes again at the next sample, as a refusal known at once', () => {
    const before = stepRule(rule, initialRuleState(0), up(150), 1_000).state;
    const committed = commitFire(before, 1_000);
    const undone = undoCommit(committed, before);
    assert.equal(undone.armed, true);
    assert.equal(undone.lastFiredAt, undefined, 'no cooldown: nothing was captured');
    assert.equal(undone.refusalReported, true);
    const next = stepRule(rule, undone, up(160), 2_000);
    assert.deepEqual(next.event, { kind: 'fire', value: 160, step: 0 });
  });

  it('an escalation refused by the fleet keeps its step and the old peak', () => {
    const fired = drive(initialRuleState(0), [150], 1_000).state;
    const before = stepRule(rule, fired, up(240), 2_000).state;
    assert.equal(before.proposal, 1);
    const undone = undoCommit(commitFire(before, 2_000), before);
    assert.equal(undone.step, 0);
    assert.equal(undone.peak, 150);
    assert.equal(undone.lastFiredAt, 1_000);
    assert.deepEqual(stepRule(rule, undone, up(241), 3_000).event, { kind: 'fire', value: 241, step: 1 });
  });
});

describe('flow: the fleet-wide answer reaches the engine', () => {
  function setup(answer: FleetAnswer) {
    const config = parseConfigText(
      'servers: [{ url: "http://127.0.0.1:8222", name: s1 }]\ntriggers: [{ name: mem-any, metric: mem, above: 1MiB, cooldown: 1h, profiles: [heap] }]\n',
      'test.yaml',
      {},
      () => '',
    );
    let now = 1_000_000;
    const clock: Clock = { now: () => now, sleep: () => Promise.resolve() };
    let submitted = 0;
    const { flow, inventory, engine } = flowRig(config, {
      clock,
      submit: () => (submitted++, { accepted: true, id: `i-${submitted}`, done: new Promise(() => undefined) }),
      decision: () => Promise.resolve(answer),
    });
    inventory.setServers(config.servers);
    const varz: Varz = { serverId: 'N1', serverName: 's1', cluster: undefined, tags: [], version: '2.10.27', cpu: 1, mem: 64 << 20, cores: 2, gomaxprocs: 2, gomemlimit: undefined };
    const poll = (): void => {
      flow.onPoll({ key: 'http://127.0.0.1:8222', ok: true, reading: { varz: { ...varz }, body: new TextEncoder().encode('{}'), kind: 'varz' }, at: now, scheduledAt: now, durationMs: 1 } as Parameters<Flow['onPoll']>[0]);
      now += 1_000;
    };
    return { engine, poll, submitted: () => submitted };
  }
  const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

  it('cooldown: the rule takes over the other replica firing, and does not propose again', async () => {
    const f = setup({ ok: false, reason: 'cooldown', message: 'in its cooldown elsewhere', fleet: new Map([['mem-any', { lastFiredAt: 400_000, peak: 70e6, step: 0 }]]) });
    f.poll();
    await settle();
    const [v] = f.engine.viewOf('http://127.0.0.1:8222');
    assert.equal(v?.state.lastFiredAt, 400_000);
    assert.equal(v?.lastFiring?.outcome, 'refused');
    f.poll();
    f.poll();
    assert.equal(f.submitted(), 1);
  });

  it('limit: the rule is armed again and proposes at the next sample', async () => {
    const f = setup({ ok: false, reason: 'limit', message: 'capture.limit reached across the replicas' });
    f.poll();
    await settle();
    const [v] = f.engine.viewOf('http://127.0.0.1:8222');
    assert.equal(v?.state.armed, true);
    assert.equal(v?.state.lastFiredAt, undefined);
    f.poll();
    assert.equal(f.submitted(), 2);
  });

  it('limit with the time a slot frees: refused here until then (not asked of the fleet at every sample), then proposed again', async () => {
    // The flow's clock starts at 1,000,000 and each poll advances it by 1 s.
    const f = setup({ ok: false, reason: 'limit', message: 'capture.limit reached across the replicas', freeAt: 1_003_500 });
    f.poll();
    await settle();
    f.poll();
    f.poll();
    f.poll();
    assert.equal(f.submitted(), 1, 'refused locally at 1,001,000 .. 1,003,000');
    const [v] = f.engine.viewOf('http://127.0.0.1:8222');
    assert.equal(v?.lastFiring?.outcome, 'refused');
    assert.equal(v?.state.armed, true);
    f.poll();
    assert.equal(f.submitted(), 2, 'asked again once the slot is free (1,004,000)');
  });

  it('accepted: the commit stands', async () => {
    const f = setup({ ok: true });
    f.poll();
    await settle();
    f.poll();
    assert.equal(f.submitted(), 1);
    assert.equal(f.engine.viewOf('http://127.0.0.1:8222')[0]?.state.lastFiredAt, 1_000_000);
  });
});
