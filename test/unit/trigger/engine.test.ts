/**
 * The rule engine: proposals per observation, commit and refusal, with `now` as the injected clock (no
 * timers, no sleeps).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TriggerConfig } from '../../../src/config/types.js';
import { TriggerEngine } from '../../../src/trigger/engine.js';
import type { Varz } from '../../../src/watch/varz.js';

const MiB = 1024 * 1024;
const KEY = 'http://127.0.0.1:8222';

function rule(over: Partial<TriggerConfig> & { name: string }): TriggerConfig {
  return { metric: 'mem', above: MiB, forMs: 0, rearmBelow: MiB, cooldownMs: 600_000, rateMs: undefined, escalatePercent: undefined, escalateMax: 0, profiles: ['heap'], servers: undefined, ...over };
}

// The case: two memory rules that cross on the same sample.
const goroutineRule = rule({ name: 'mem-2mib', above: 2 * MiB, rearmBelow: 2 * MiB, profiles: ['goroutine'] });
const heapRule = rule({ name: 'mem-1mib', above: MiB, rearmBelow: MiB, profiles: ['heap'] });

function varz(mem: number, serverId = 'NSERVER'): Varz {
  return { serverId, serverName: 'n1', cluster: undefined, tags: [], version: '2.10.27', cpu: 1, mem, cores: 2, gomaxprocs: 2, gomemlimit: undefined };
}

function names(ds: readonly { kind: string; trigger: TriggerConfig }[]): string[] {
  return ds.map((d) => `${d.kind}:${d.trigger.name}`);
}

function stateOf(e: TriggerEngine, name: string): { phase: string; armed: boolean; lastFiredAt: number | undefined } {
  const v = e.viewOf(KEY).find((x) => x.trigger.name === name);
  assert.ok(v, name);
  return { phase: v.state.phase, armed: v.state.armed, lastFiredAt: v.state.lastFiredAt };
}

describe('TriggerEngine', () => {
  it('two rules crossing on one sample both propose; commit disarms both and records the incident', () => {
    const e = new TriggerEngine([goroutineRule, heapRule]);
    const ds = e.observe(KEY, 'n1', { ok: true, varz: varz(3 * MiB) }, 1_000);
    assert.deepEqual(names(ds), ['fire:mem-2mib', 'fire:mem-1mib']);
    // Proposed only: still armed, no cooldown.
    assert.deepEqual(stateOf(e, 'mem-2mib'), { phase: 'pending', armed: true, lastFiredAt: undefined });
    e.commit(KEY, ['mem-2mib', 'mem-1mib'], 'n1~inc', 1_000);
    assert.deepEqual(stateOf(e, 'mem-2mib'), { phase: 'fired', armed: false, lastFiredAt: 1_000 });
    assert.deepEqual(stateOf(e, 'mem-1mib'), { phase: 'fired', armed: false, lastFiredAt: 1_000 });
    assert.deepEqual(e.viewOf(KEY).map((v) => v.lastFiring), [
      { at: 1_000, outcome: 'captured', incident: 'n1~inc' },
      { at: 1_000, outcome: 'captured', incident: 'n1~inc' },
    ]);
    // Still above: disarmed, nothing more.
    assert.deepEqual(names(e.observe(KEY, 'n1', { ok: true, varz: varz(3 * MiB) }, 2_000)), []);
  });

  it('a refusal leaves the rules armed; they propose again at the next sample, and only the first refusal is reported', () => {
    const e = new TriggerEngine([goroutineRule, heapRule]);
    let ds = e.observe(KEY, 'n1', { ok: true, varz: varz(3 * MiB) }, 1_000);
    assert.deepEqual(e.refused(KEY, ['mem-2mib', 'mem-1mib'], { reason: 'busy', message: 'server n1 is already being captured' }, 1_000), ['mem-2mib', 'mem-1mib']);
    assert.deepEqual(stateOf(e, 'mem-1mib'), { phase: 'pending', armed: true, lastFiredAt: undefined });
    const view = e.viewOf(KEY).find((v) => v.trigger.name === 'mem-1mib');
    assert.deepEqual(view?.lastFiring, { at: 1_000, outcome: 'refused', reason: 'busy', message: 'server n1 is already being captured' });
    assert.deepEqual(view?.lastSkip, { at: 1_000, reason: 'busy', message: 'server n1 is already being captured' });

    ds = e.observe(KEY, 'n1', { ok: true, varz: varz(3 * MiB) }, 2_000);
    assert.deepEqual(names(ds), ['fire:mem-2mib', 'fire:mem-1mib'], 'proposed again at the next sample');
    assert.deepEqual(e.refused(KEY, ['mem-2mib', 'mem-1mib'], { reason: 'limit', message: 'capture.limit reached' }, 2_000), [], 'a retry is not reported');

    ds = e.observe(KEY, 'n1', { ok: true, varz: varz(3 * MiB) }, 3_000);
    assert.deepEqual(names(ds), ['fire:mem-2mib', 'fire:mem-1mib']);
    e.commit(KEY, ['mem-2mib', 'mem-1mib'], 'n1~late', 3_000);
    assert.deepEqual(stateOf(e, 'mem-2mib'), { phase: 'fired', armed: false, lastFiredAt: 3_000 }, 'the cooldown starts when the capture is accepted');
  });

  it('a refused rule whose value drops starts a new episode, reported again', () => {
    const e = new TriggerEngine([heapRule]);
    e.observe(KEY, 'n1', { ok: true, varz: varz(3 * MiB) }, 1_000);
    assert.deepEqual(e.refused(KEY, ['mem-1mib'], { reason: 'limit', message: 'm' }, 1_000), ['mem-1mib']);
    assert.deepEqual(names(e.observe(KEY, 'n1', { ok: true, varz: varz(MiB / 2) }, 2_000)), []);
    assert.deepEqual(names(e.observe(KEY, 'n1', { ok: true, varz: varz(3 * MiB) }, 3_000)), ['fire:mem-1mib']);
    assert.deepEqual(e.refused(KEY, ['mem-1mib'], { reason: 'limit', message: 'm' }, 3_000), ['mem-1mib']);
  });

  it('the cooldown runs from the commit: a re-armed rule inside it reports one cooldown skip, then fires', () => {
    const e = new TriggerEngine([rule({ name: 'r', cooldownMs: 60_000 })]);
    e.observe(KEY, 'n1', { ok: true, varz: varz(3 * MiB) }, 0);
    e.commit(KEY, ['r'], 'n1~a', 0);
    assert.deepEqual(names(e.observe(KEY, 'n1', { ok: true, varz: varz(0) }, 10_000)), []);
    assert.deepEqual(names(e.observe(KEY, 'n1', { ok: true, varz: varz(3 * MiB) }, 20_000)), ['skip:r']);
    assert.deepEqual(names(e.observe(KEY, 'n1', { ok: true, varz: varz(3 * MiB) }, 30_000)), []);
    assert.deepEqual(names(e.observe(KEY, 'n1', { ok: true, varz: varz(3 * MiB) }, 60_000)), ['fire:r']);
  });

  it('commit and refused ignore unknown servers and rules', () => {
    const e = new TriggerEngine([heapRule]);
    e.commit('nope', ['mem-1mib'], 'x', 0);
    assert.deepEqual(e.refused('nope', ['mem-1mib'], { reason: 'busy', message: 'm' }, 0), []);
    e.observe(KEY, 'n1', { ok: true, varz: varz(0) }, 0);
    assert.deepEqual(e.refused(KEY, ['gone'], { reason: 'busy', message: 'm' }, 0), []);
  });
});
