import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { admit, encodeWindow, parseWindow } from '../../../src/coord/limit-window.js';

describe('fleet-wide capture.limit window', () => {
  it('the table', () => {
    const cases: { stored: number[]; now: number; count: number; windowMs: number; ok: boolean; next: number[] }[] = [
      { stored: [], now: 1000, count: 1, windowMs: 100, ok: true, next: [1000] },
      { stored: [950], now: 1000, count: 1, windowMs: 100, ok: false, next: [950] },
      // A start exactly one window ago is outside it (the same rule as the capturer's local window).
      { stored: [900], now: 1000, count: 1, windowMs: 100, ok: true, next: [1000] },
      { stored: [10, 950, 990], now: 1000, count: 3, windowMs: 100, ok: true, next: [950, 990, 1000] },
      { stored: [990, 950, 960], now: 1000, count: 3, windowMs: 100, ok: false, next: [950, 960, 990] },
    ];
    for (const c of cases) {
      const d = admit(c.stored, c.now, c.count, c.windowMs);
      assert.equal(d.ok, c.ok, JSON.stringify(c));
      assert.deepEqual(d.next, c.next, JSON.stringify(c));
    }
    // Refused: a slot frees when the start that must leave first (the count-th newest) is one window old.
    assert.equal(admit([990, 950, 960], 1000, 3, 100).freeAt, 1050);
    assert.equal(admit([990, 950, 960], 1000, 2, 100).freeAt, 1060);
    assert.equal(admit([950], 1000, 1, 100).freeAt, 1050);
    assert.equal(admit([], 1000, 1, 100).freeAt, undefined);
  });

  it('never admits more than count in any window, whatever the order of attempts', () => {
    let stored: readonly number[] = [];
    const admitted: number[] = [];
    for (let t = 0; t < 10_000; t += 7) {
      const d = admit(stored, t, 5, 1_000);
      stored = d.next;
      if (d.ok) admitted.push(t);
    }
    for (const t of admitted) assert.ok(admitted.filter((u) => u > t - 1_000 && u <= t).length <= 5);
    assert.ok(admitted.length >= 45, `only ${admitted.length} admitted`);
  });

  it('round-trips, and a value it cannot read counts as empty', () => {
    assert.deepEqual(parseWindow(new TextEncoder().encode(encodeWindow([1, 2]))), [1, 2]);
    assert.deepEqual(parseWindow(new TextEncoder().encode('not json')), []);
    assert.deepEqual(parseWindow(undefined), []);
  });
});
