import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { RetentionItem, RetentionPolicy } from '../../../src/store/retention.js';
import { planRetention } from '../../../src/store/retention.js';

const H = 3_600_000;
const NOW = 100 * H;
const NONE: RetentionPolicy = { maxIncidentsPerServer: Infinity, maxTotalSizeBytes: Infinity, maxAgeMs: Infinity };

/** `a1` = server a, started 1 h ago... */
function item(id: string, server: string, ageH: number, bytes = 100): RetentionItem {
  return { id, server, startedAtMs: NOW - ageH * H, bytes };
}

describe('planRetention', () => {
  it('keeps everything without limits', () => {
    const items = [item('a1', 'a', 1), item('b1', 'b', 2)];
    assert.deepEqual(planRetention(items, NONE, NOW), { delete: [], keptBytes: 200, keptIncidents: 2 });
  });

  it('handles an empty store', () => {
    assert.deepEqual(planRetention([], { ...NONE, maxIncidentsPerServer: 0, maxTotalSizeBytes: 0, maxAgeMs: 0 }, NOW), {
      delete: [],
      keptBytes: 0,
      keptIncidents: 0,
    });
  });

  it('deletes by age, strictly older than maxAge, oldest first', () => {
    const items = [item('a1', 'a', 1), item('a48', 'a', 48), item('b24', 'b', 24), item('b72', 'b', 72)];
    const plan = planRetention(items, { ...NONE, maxAgeMs: 24 * H }, NOW);
    assert.deepEqual(plan.delete, [
      { id: 'b72', reason: 'age' },
      { id: 'a48', reason: 'age' },
    ]);
    assert.equal(plan.keptIncidents, 2);
    assert.equal(plan.keptBytes, 200);
  });

  it('deletes per server beyond the count, oldest first, after age', () => {
    const items = [
      item('a1', 'a', 1),
      item('a2', 'a', 2),
      item('a3', 'a', 3),
      item('a4', 'a', 4),
      item('b1', 'b', 1),
      item('b5', 'b', 5),
      item('c9', 'c', 9),
    ];
    const plan = planRetention(items, { ...NONE, maxIncidentsPerServer: 2, maxAgeMs: 8 * H }, NOW);
    assert.deepEqual(plan.delete, [
      { id: 'c9', reason: 'age' },
      { id: 'a4', reason: 'count' },
      { id: 'a3', reason: 'count' },
    ]);
    assert.equal(plan.keptIncidents, 4);
  });

  it('deletes the globally oldest until the total fits', () => {
    const items = [item('a1', 'a', 1, 300), item('a5', 'a', 5, 300), item('b3', 'b', 3, 300), item('b4', 'b', 4, 50)];
    const plan = planRetention(items, { ...NONE, maxTotalSizeBytes: 600 }, NOW);
    assert.deepEqual(plan.delete, [
      { id: 'a5', reason: 'size' },
      { id: 'b4', reason: 'size' },
    ]);
    assert.equal(plan.keptBytes, 600);
    assert.equal(plan.keptIncidents, 2);
  });

  it('applies age, count and size together', () => {
    const items = [item('a1', 'a', 1, 500), item('a2', 'a', 2, 500), item('a3', 'a', 3, 500), item('b1', 'b', 1.5, 500), item('b99', 'b', 99, 1)];
    const plan = planRetention(items, { maxIncidentsPerServer: 2, maxTotalSizeBytes: 1000, maxAgeMs: 10 * H }, NOW);
    assert.deepEqual(plan.delete, [
      { id: 'b99', reason: 'age' },
      { id: 'a3', reason: 'count' },
      { id: 'a2', reason: 'size' },
    ]);
    assert.deepEqual([plan.keptBytes, plan.keptIncidents], [1000, 2]);
  });

  it('never deletes a protected id, which still counts toward the limits', () => {
    const items = [item('a1', 'a', 1), item('a2', 'a', 2), item('a3', 'a', 3), item('a99', 'a', 99)];
    const plan = planRetention(items, { maxIncidentsPerServer: 1, maxTotalSizeBytes: 100, maxAgeMs: 50 * H }, NOW, new Set(['a99', 'a3']));
    assert.deepEqual(plan.delete, [
      { id: 'a2', reason: 'count' },
      { id: 'a1', reason: 'count' },
    ]);
    assert.deepEqual([plan.keptBytes, plan.keptIncidents], [200, 2]);
  });

  it('breaks ties in start time by id and ignores input order', () => {
    const same = [item('a-c', 'a', 5), item('a-a', 'a', 5), item('a-b', 'a', 5)];
    const policy = { ...NONE, maxIncidentsPerServer: 1 };
    const want = [
      { id: 'a-a', reason: 'count' },
      { id: 'a-b', reason: 'count' },
    ];
    assert.deepEqual(planRetention(same, policy, NOW).delete, want);
    assert.deepEqual(planRetention([...same].reverse(), policy, NOW).delete, want);
  });

  it('reports count deletions oldest first across servers', () => {
    const items = [item('a1', 'a', 1), item('a3', 'a', 3), item('b1', 'b', 1), item('b2', 'b', 2), item('b4', 'b', 4)];
    const plan = planRetention(items, { ...NONE, maxIncidentsPerServer: 1 }, NOW);
    assert.deepEqual(
      plan.delete.map((d) => d.id),
      ['b4', 'a3', 'b2'],
    );
  });

  it('a count limit of 0 deletes every unprotected incident', () => {
    const plan = planRetention([item('a1', 'a', 1), item('a2', 'a', 2)], { ...NONE, maxIncidentsPerServer: 0 }, NOW, new Set(['a1']));
    assert.deepEqual(plan.delete, [{ id: 'a2', reason: 'count' }]);
  });
});
