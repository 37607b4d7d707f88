/**
 * Rates of counters and escalating peaks (issue 15), as tables over the pure rule logic: counter resets and
 * server restarts restart the rate window without firing; escalations within the cooldown, their cap, a
 * refused escalation that keeps its step; a missing field.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { commitFire, initialRuleState, refuseFire, stepRule, stepWindow, WINDOW_STEPS, type RuleInput, type RuleSpec, type RuleState } from '../../../src/trigger/rules.js';

const ID = 'NABC';
const up = (value: number | undefined, serverId = ID): RuleInput => ({ ok: true, serverId, value });
const down: RuleInput = { ok: false };

/** Steps a rule; fires are committed unless their time is in `refusedAt`. Returns one line per step. */
function run(spec: RuleSpec, steps: [number, RuleInput][], refusedAt: ReadonlySet<number> = new Set()): { trace: string[]; state: RuleState } {
  let s = initialRuleState(0);
  const trace: string[] = [];
  for (const [t, input] of steps) {
    const r = stepRule(spec, s, input, t);
    s = r.state;
    let ev = '';
    if (r.event?.kind === 'fire') {
      if (refusedAt.has(t)) {
        s = refuseFire(s).state;
        ev = ` fire(step ${r.event.step}) refused`;
      } else {
        s = commitFire(s, t);
        ev = ` fire(step ${r.event.step})`;
      }
    } else if (r.event) ev = ` skip:${r.event.reason}`;
    trace.push(`${t} ${s.phase} value=${s.value ?? '-'}${ev}`);
  }
  return { trace, state: s };
}

const rate: RuleSpec = { above: 0, forMs: 0, rearmBelow: 0, cooldownMs: 600_000, rateMs: 60_000 };

describe('rate rules', () => {
  const cases: { name: string; steps: [number, RuleInput][]; expect: string[] }[] = [
    {
      name: 'a flat counter has rate 0 and does not fire; one new slow consumer fires',
      steps: [[0, up(5)], [10_000, up(5)], [20_000, up(6)]],
      expect: ['0 idle value=-', '10000 idle value=0', '20000 fired value=0.05 fire(step 0)'],
    },
    {
      name: 'the first sample has no rate (nothing fires on a counter that was already high)',
      steps: [[0, up(1_000_000)]],
      expect: ['0 idle value=-'],
    },
    {
      name: 'a counter that goes down restarts the window without firing, then counts from there',
      steps: [[0, up(10)], [10_000, up(10)], [20_000, up(3)], [30_000, up(3)], [40_000, up(4)]],
      expect: ['0 idle value=-', '10000 idle value=0', '20000 idle value=-', '30000 idle value=0', '40000 fired value=0.05 fire(step 0)'],
    },
    {
      name: 'a new server_id restarts the window without firing, even when its counter is higher',
      steps: [[0, up(0)], [10_000, up(0)], [20_000, up(50, 'NEW')], [30_000, up(50, 'NEW')]],
      expect: ['0 idle value=-', '10000 idle value=0', '20000 idle value=-', '30000 idle value=0'],
    },
    {
      name: 'a failed poll keeps the window: the increase across it still counts',
      steps: [[0, up(0)], [10_000, down], [20_000, up(2)]],
      expect: ['0 idle value=-', '10000 idle value=-', '20000 fired value=0.1 fire(step 0)'],
    },
    {
      name: 'a missing field gives no value and does not fire',
      steps: [[0, up(undefined)], [10_000, up(undefined)]],
      expect: ['0 idle value=-', '10000 idle value=-'],
    },
  ];
  for (const c of cases) it(c.name, () => assert.deepEqual(run(rate, c.steps).trace, c.expect));

  it('the window slides: only the last minute counts (plus the sample just before it)', () => {
    const spec: RuleSpec = { ...rate, above: 0.5, rearmBelow: 0.5 };
    // +60 at t=10s, then flat: at 70s the base is the sample of 10s (the newest at or before the window's start).
    const { trace } = run(spec, [[0, up(0)], [10_000, up(60)], [40_000, up(60)], [70_000, up(60)], [100_000, up(60)]]);
    assert.deepEqual(trace, ['0 idle value=-', '10000 fired value=6 fire(step 0)', '40000 fired value=1.5', '70000 cooling value=0', '100000 cooling value=0']);
  });

  it('stepWindow keeps the newest sample at or before the window start as the base', () => {
    let w = stepWindow(undefined, 0, 0, 60_000);
    assert.deepEqual(w, { window: [0, 0], rate: undefined });
    w = stepWindow(w.window, 30_000, 30, 60_000);
    w = stepWindow(w.window, 60_000, 60, 60_000);
    w = stepWindow(w.window, 90_000, 60, 60_000);
    assert.deepEqual(w.window, [30_000, 30, 60_000, 60, 90_000, 60]);
    assert.equal(w.rate, 0.5);
    // A poll interval longer than the window still gives a rate.
    assert.deepEqual(stepWindow([0, 0], 120_000, 12, 60_000), { window: [0, 0, 120_000, 12], rate: 0.1 });
    // Polled every second, a 1m window keeps about WINDOW_STEPS samples, and its base stays within a step of its start.
    let fine = stepWindow(undefined, 0, 0, 60_000);
    for (let t = 1_000; t <= 180_000; t += 1_000) fine = stepWindow(fine.window, t, t / 1000, 60_000);
    assert.ok(fine.window.length <= 2 * (WINDOW_STEPS + 3), `kept ${fine.window.length / 2} samples`);
    assert.ok((fine.window[0] as number) <= 120_000 && (fine.window[0] as number) >= 120_000 - 60_000 / WINDOW_STEPS, `base at ${fine.window[0]}`);
    assert.equal(fine.rate, 1);
    // A repeated timestamp adds nothing.
    assert.deepEqual(stepWindow([0, 0, 10, 1], 10, 5, 60_000), { window: [0, 0, 10, 1], rate: undefined });
  });
});

const esc: RuleSpec = { above: 100, forMs: 0, rearmBelow: 100, cooldownMs: 60_000, escalatePercent: 25, escalateMax: 2 };

describe('escalation', () => {
  it('captures again within the cooldown only past the last peak by 25%, at most escalate_max times', () => {
    const { trace, state } = run(esc, [
      [0, up(200)], // fires: peak 200
      [10_000, up(240)], // +20%: no
      [20_000, up(251)], // +25.5%: step 1, peak 251
      [30_000, up(300)], // +19.5% over 251: no
      [40_000, up(320)], // +27.5%: step 2, peak 320
      [50_000, up(1000)], // cap reached
    ]);
    assert.deepEqual(trace, [
      '0 fired value=200 fire(step 0)',
      '10000 fired value=240',
      '20000 fired value=251 fire(step 1)',
      '30000 fired value=300',
      '40000 fired value=320 fire(step 2)',
      '50000 fired value=1000',
    ]);
    assert.equal(state.step, 2);
    assert.equal(state.peak, 320);
    assert.equal(state.lastFiredAt, 0, 'escalations do not restart the cooldown');
  });

  it('a refused escalation does not consume the step: it is proposed again at the next sample', () => {
    const { trace, state } = run(esc, [[0, up(200)], [10_000, up(300)], [20_000, up(300)]], new Set([10_000]));
    assert.deepEqual(trace, ['0 fired value=200 fire(step 0)', '10000 fired value=300 fire(step 1) refused', '20000 fired value=300 fire(step 1)']);
    assert.equal(state.step, 1);
  });

  it('no escalation after the cooldown: the next capture is a firing (step 0) once re-armed', () => {
    const { trace, state } = run(esc, [[0, up(200)], [30_000, up(260)], [70_000, up(50)], [80_000, up(150)]]);
    assert.deepEqual(trace, ['0 fired value=200 fire(step 0)', '30000 fired value=260 fire(step 1)', '70000 idle value=50', '80000 fired value=150 fire(step 0)']);
    assert.equal(state.step, 0);
    assert.equal(state.peak, 150);
  });

  it('without escalate nothing happens within the cooldown', () => {
    const { trace } = run({ ...esc, escalatePercent: undefined }, [[0, up(200)], [10_000, up(10_000)]]);
    assert.deepEqual(trace, ['0 fired value=200 fire(step 0)', '10000 fired value=10000']);
  });

  it('a restarted server forgets the peak: no escalation on the new process', () => {
    const { trace } = run(esc, [[0, up(200)], [10_000, up(1000, 'NEW')]]);
    assert.deepEqual(trace, ['0 fired value=200 fire(step 0)', '10000 fired value=1000']);
  });

  it('escalates a rate rule on the rate', () => {
    const spec: RuleSpec = { ...rate, escalatePercent: 50, escalateMax: 1 };
    const { trace } = run(spec, [[0, up(0)], [10_000, up(10)], [20_000, up(30)], [30_000, up(60)], [40_000, up(200)]]);
    assert.deepEqual(trace, [
      '0 idle value=-',
      '10000 fired value=1 fire(step 0)',
      '20000 fired value=1.5',
      '30000 fired value=2 fire(step 1)',
      '40000 fired value=5',
    ]);
  });
});
