import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { commitFire, inCooldown, initialRuleState, isFiring, metricValue, nextFireAt, refuseFire, stepRule, type RuleInput, type RuleSpec, type RuleState } from '../../../src/trigger/rules.js';

const rule: RuleSpec = { above: 80, forMs: 15_000, rearmBelow: 60, cooldownMs: 600_000 };
const ID = 'NABC';

function up(value: number | undefined, serverId = ID): RuleInput {
  return { ok: true, serverId, value };
}

/**
 * Runs a sequence of [time, input] steps and returns the phases and events. A proposed firing is committed
 * (the capture was accepted) unless its time is in `refusedAt`; then it is refused (`fire:refused`, plus
 * `:reported` for the first refusal of an episode).
 */
function run(spec: RuleSpec, steps: [number, RuleInput][], start?: RuleState, refusedAt: ReadonlySet<number> = new Set()) {
  let s = start ?? initialRuleState(0);
  const trace: { t: number; phase: string; event?: string }[] = [];
  for (const [t, input] of steps) {
    const r = stepRule(spec, s, input, t);
    s = r.state;
    let ev = r.event ? (r.event.kind === 'fire' ? 'fire' : `skip:${r.event.reason}`) : undefined;
    if (r.event?.kind === 'fire') {
      if (refusedAt.has(t)) {
        const refused = refuseFire(s);
        s = refused.state;
        ev = refused.report ? 'fire:refused:reported' : 'fire:refused';
      } else {
        s = commitFire(s, t);
      }
    }
    trace.push({ t, phase: s.phase, ...(ev ? { event: ev } : {}) });
  }
  return { state: s, trace };
}

describe('rules state machine', () => {
  const cases: { name: string; spec?: RuleSpec; steps: [number, RuleInput][]; expect: { t: number; phase: string; event?: string }[] }[] = [
    {
      name: 'stays idle below the threshold',
      steps: [[0, up(50)], [5_000, up(80)]],
      expect: [{ t: 0, phase: 'idle' }, { t: 5_000, phase: 'idle' }],
    },
    {
      name: 'idle -> pending -> fired after `for`',
      steps: [[0, up(90)], [10_000, up(95)], [15_000, up(95)]],
      expect: [{ t: 0, phase: 'pending' }, { t: 10_000, phase: 'pending' }, { t: 15_000, phase: 'fired', event: 'fire' }],
    },
    {
      name: 'for: 0s fires on the first sample above',
      spec: { ...rule, forMs: 0 },
      steps: [[0, up(81)]],
      expect: [{ t: 0, phase: 'fired', event: 'fire' }],
    },
    {
      name: 'a dip below `above` while pending restarts the wait',
      steps: [[0, up(90)], [10_000, up(70)], [15_000, up(90)], [25_000, up(90)], [30_000, up(90)]],
      expect: [
        { t: 0, phase: 'pending' },
        { t: 10_000, phase: 'idle' },
        { t: 15_000, phase: 'pending' },
        { t: 25_000, phase: 'pending' },
        { t: 30_000, phase: 'fired', event: 'fire' },
      ],
    },
    {
      name: 'a failed poll ends a pending episode',
      steps: [[0, up(90)], [5_000, { ok: false }], [10_000, up(90)], [20_000, up(90)], [25_000, up(90)]],
      expect: [
        { t: 0, phase: 'pending' },
        { t: 5_000, phase: 'idle' },
        { t: 10_000, phase: 'pending' },
        { t: 20_000, phase: 'pending' },
        { t: 25_000, phase: 'fired', event: 'fire' },
      ],
    },
    {
      name: 'a server restart (new server_id) ends a pending episode',
      steps: [[0, up(90)], [10_000, up(90, 'NNEW')], [20_000, up(90, 'NNEW')], [25_000, up(90, 'NNEW')]],
      expect: [
        { t: 0, phase: 'pending' },
        { t: 10_000, phase: 'pending' },
        { t: 20_000, phase: 'pending' },
        { t: 25_000, phase: 'fired', event: 'fire' },
      ],
    },
    {
      name: 'stays fired (disarmed) until the value drops below rearm_below',
      spec: { ...rule, forMs: 0, cooldownMs: 0 },
      steps: [[0, up(90)], [5_000, up(70)], [10_000, up(90)], [15_000, up(59)], [20_000, up(90)]],
      expect: [
        { t: 0, phase: 'fired', event: 'fire' },
        { t: 5_000, phase: 'fired' },
        { t: 10_000, phase: 'fired' },
        { t: 15_000, phase: 'idle' },
        { t: 20_000, phase: 'fired', event: 'fire' },
      ],
    },
    {
      name: 're-armed inside the cooldown is cooling; a sustained rise reports one cooldown skip, then fires when it ends',
      spec: { ...rule, forMs: 0, cooldownMs: 60_000 },
      steps: [[0, up(90)], [5_000, up(50)], [10_000, up(90)], [15_000, up(90)], [60_000, up(90)]],
      expect: [
        { t: 0, phase: 'fired', event: 'fire' },
        { t: 5_000, phase: 'cooling' },
        { t: 10_000, phase: 'pending', event: 'skip:cooldown' },
        { t: 15_000, phase: 'pending' },
        { t: 60_000, phase: 'fired', event: 'fire' },
      ],
    },
    {
      name: 'cooling turns idle once the cooldown is over',
      spec: { ...rule, forMs: 0, cooldownMs: 60_000 },
      steps: [[0, up(90)], [5_000, up(50)], [61_000, up(50)]],
      expect: [
        { t: 0, phase: 'fired', event: 'fire' },
        { t: 5_000, phase: 'cooling' },
        { t: 61_000, phase: 'idle' },
      ],
    },
    {
      name: 'default rearm_below (= above) re-arms as soon as the value is not above',
      spec: { above: 80, forMs: 0, rearmBelow: 80, cooldownMs: 0 },
      steps: [[0, up(81)], [1_000, up(80)], [2_000, up(81)]],
      expect: [
        { t: 0, phase: 'fired', event: 'fire' },
        { t: 1_000, phase: 'idle' },
        { t: 2_000, phase: 'fired', event: 'fire' },
      ],
    },
    {
      name: 'a metric the server does not report keeps the rule idle',
      spec: { ...rule, forMs: 0 },
      steps: [[0, up(undefined)], [1_000, up(undefined)]],
      expect: [{ t: 0, phase: 'idle' }, { t: 1_000, phase: 'idle' }],
    },
    {
      name: 'a failed poll after firing keeps the rule disarmed',
      spec: { ...rule, forMs: 0 },
      steps: [[0, up(90)], [1_000, { ok: false }], [2_000, up(90)]],
      expect: [{ t: 0, phase: 'fired', event: 'fire' }, { t: 1_000, phase: 'fired' }, { t: 2_000, phase: 'fired' }],
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      assert.deepEqual(run(c.spec ?? rule, c.steps).trace, c.expect);
    });
  }

  it('stepRule only proposes: the state it returns with `fire` is still pending and armed, no cooldown started', () => {
    const spec = { ...rule, forMs: 0 };
    const r = stepRule(spec, initialRuleState(0), up(90), 1_000);
    assert.equal(r.event?.kind, 'fire');
    assert.equal(r.state.phase, 'pending');
    assert.equal(r.state.armed, true);
    assert.equal(r.state.lastFiredAt, undefined);
    const committed = commitFire(r.state, 1_000);
    assert.deepEqual(
      { phase: committed.phase, since: committed.since, armed: committed.armed, lastFiredAt: committed.lastFiredAt, pendingSince: committed.pendingSince },
      { phase: 'fired', since: 1_000, armed: false, lastFiredAt: 1_000, pendingSince: undefined },
    );
  });

  const refusals: { name: string; spec?: RuleSpec; steps: [number, RuleInput][]; refusedAt: number[]; expect: { t: number; phase: string; event?: string }[] }[] = [
    {
      name: 'a refused firing leaves the rule armed; it fires at the next sample still above, once accepted',
      spec: { ...rule, forMs: 0 },
      steps: [[0, up(90)], [1_000, up(90)], [2_000, up(90)], [3_000, up(90)]],
      refusedAt: [0, 1_000],
      expect: [
        { t: 0, phase: 'pending', event: 'fire:refused:reported' },
        { t: 1_000, phase: 'pending', event: 'fire:refused' },
        { t: 2_000, phase: 'fired', event: 'fire' },
        { t: 3_000, phase: 'fired' },
      ],
    },
    {
      name: 'a refusal is reported once per episode: a new episode (value dropped) reports again',
      spec: { ...rule, forMs: 0 },
      steps: [[0, up(90)], [1_000, up(90)], [2_000, up(50)], [3_000, up(90)], [4_000, up(90)]],
      refusedAt: [0, 1_000, 3_000],
      expect: [
        { t: 0, phase: 'pending', event: 'fire:refused:reported' },
        { t: 1_000, phase: 'pending', event: 'fire:refused' },
        { t: 2_000, phase: 'idle' },
        { t: 3_000, phase: 'pending', event: 'fire:refused:reported' },
        { t: 4_000, phase: 'fired', event: 'fire' },
      ],
    },
    {
      name: 'a failed poll ends the refused episode too',
      spec: { ...rule, forMs: 0 },
      steps: [[0, up(90)], [1_000, { ok: false }], [2_000, up(90)]],
      refusedAt: [0, 2_000],
      expect: [
        { t: 0, phase: 'pending', event: 'fire:refused:reported' },
        { t: 1_000, phase: 'idle' },
        { t: 2_000, phase: 'pending', event: 'fire:refused:reported' },
      ],
    },
    {
      name: 'a refused firing starts no cooldown: the next accepted one is not skipped as cooling',
      spec: { ...rule, forMs: 0, cooldownMs: 60_000 },
      steps: [[0, up(90)], [5_000, up(90)], [10_000, up(90)]],
      refusedAt: [0],
      expect: [
        { t: 0, phase: 'pending', event: 'fire:refused:reported' },
        { t: 5_000, phase: 'fired', event: 'fire' },
        { t: 10_000, phase: 'fired' },
      ],
    },
    {
      name: 'with `for`, a refused rule keeps its pending start and proposes at every later sample',
      steps: [[0, up(90)], [15_000, up(90)], [20_000, up(90)]],
      refusedAt: [15_000],
      expect: [
        { t: 0, phase: 'pending' },
        { t: 15_000, phase: 'pending', event: 'fire:refused:reported' },
        { t: 20_000, phase: 'fired', event: 'fire' },
      ],
    },
  ];
  for (const c of refusals) {
    it(c.name, () => {
      assert.deepEqual(run(c.spec ?? rule, c.steps, undefined, new Set(c.refusedAt)).trace, c.expect);
    });
  }

  it('`since` changes only when the phase changes', () => {
    const { state } = run(rule, [[0, up(90)], [5_000, up(91)], [10_000, up(92)]]);
    assert.equal(state.phase, 'pending');
    assert.equal(state.since, 0);
    assert.equal(state.pendingSince, 0);
  });

  it('isFiring is 1 while pending and while fired, 0 once re-armed', () => {
    const spec = { ...rule, forMs: 5_000, cooldownMs: 0 };
    let s = initialRuleState(0);
    assert.equal(isFiring(s), false);
    s = stepRule(spec, s, up(90), 0).state;
    assert.equal(isFiring(s), true);
    s = commitFire(stepRule(spec, s, up(90), 5_000).state, 5_000);
    assert.equal(s.phase, 'fired');
    assert.equal(isFiring(s), true);
    s = stepRule(spec, s, up(10), 6_000).state;
    assert.equal(isFiring(s), false);
  });

  it('nextFireAt counts down `for` and respects the cooldown', () => {
    let s = stepRule(rule, initialRuleState(0), up(90), 1_000).state;
    assert.equal(nextFireAt(rule, s), 16_000);
    s = { ...s, lastFiredAt: 0 };
    assert.equal(nextFireAt(rule, s), 600_000);
    assert.equal(inCooldown(rule, s, 599_999), true);
    assert.equal(inCooldown(rule, s, 600_000), false);
  });
});

describe('metricValue', () => {
  const v = { cpu: 150, mem: 512, cores: 8, gomaxprocs: 2, gomemlimit: 1024 };
  it('cpu is varz cpu as reported', () => assert.equal(metricValue('cpu', v), 150));
  it('cpu_per_core divides by gomaxprocs', () => assert.equal(metricValue('cpu_per_core', v), 75));
  it('cpu_per_core falls back to cores without gomaxprocs', () => assert.equal(metricValue('cpu_per_core', { ...v, gomaxprocs: undefined }), 18.75));
  it('mem is bytes', () => assert.equal(metricValue('mem', v), 512));
  it('mem_of_limit is percent of gomemlimit', () => assert.equal(metricValue('mem_of_limit', v), 50));
  it('mem_of_limit is undefined without a limit', () => assert.equal(metricValue('mem_of_limit', { ...v, gomemlimit: undefined }), undefined));
});

describe('stepRule in place (the engine passes the previous state as `into`)', () => {
  // A seeded sequence of values around the threshold, failed polls, a restarted server, commits and refusals:
  // stepping into the previous state object must give, step by step, the same states and events as stepping
  // into new ones.
  function lcg(seed: number): () => number {
    let x = seed;
    return () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
  }
  const specs: [string, RuleSpec][] = [
    ['plain', rule],
    ['rate and escalation', { above: 50, forMs: 2_000, rearmBelow: 40, cooldownMs: 20_000, rateMs: 10_000, escalatePercent: 20, escalateMax: 3 }],
  ];
  for (const [name, spec] of specs) {
    it(`${name}: same states and events as stepping into new objects`, () => {
      const rnd = lcg(7);
      let pure = initialRuleState(0);
      let kept = initialRuleState(0);
      const object = kept;
      let counter = 0;
      let level = 50; // a slow walk, so that values stay above the threshold long enough to fire
      for (let t = 1_000; t <= 3_600_000; t += 1_000) {
        const r = rnd();
        level = Math.min(120, Math.max(0, level + (rnd() - 0.5) * 12));
        counter += Math.floor(level);
        const input: RuleInput = r < 0.02 ? { ok: false } : up(spec.rateMs ? counter : Math.floor(level), r > 0.998 ? `N${t}` : ID);
        const a = stepRule(spec, pure, input, t);
        const b = stepRule(spec, kept, input, t, kept);
        pure = a.state;
        assert.equal(b.state, kept, 'written into the object it was given');
        assert.deepEqual({ ...b.state }, { ...a.state }, `state at ${t}`);
        assert.deepEqual(b.event, a.event, `event at ${t}`);
        if (a.event?.kind === 'fire') {
          // Commits and refusals make new objects (the engine keeps the one before a commit): both sides alike.
          const refuse = rnd() < 0.3;
          pure = refuse ? refuseFire(pure).state : commitFire(pure, t);
          kept = refuse ? refuseFire(kept).state : commitFire(kept, t);
        }
      }
      assert.notEqual(kept, object, 'commits replaced the object at least once');
    });
  }
});
