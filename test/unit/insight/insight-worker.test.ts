import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { compareProfiles, growthSince } from '../../../src/insight/compare.js';
import { buildFlameGraph } from '../../../src/insight/flamegraph.js';
import { InsightCache } from '../../../src/insight/insight-cache.js';
import { decodeProfile } from '../../../src/insight/pprof-summary.js';
import { ProfileWorker, ProfileWorkerError } from '../../../src/insight/profile-worker.js';
import { SampleTypeError } from '../../../src/insight/stacks.js';
import { buildTop } from '../../../src/insight/top.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/profiles');
const path = (name: string): string => join(fixtures, `${name}.pb.gz`);
const misbehaving = new URL('./fixtures/misbehaving-thread.ts', import.meta.url);

describe('ProfileWorker: flame graphs, top tables, diffs and growth in the thread', () => {
  const w = new ProfileWorker();
  after(() => w.close());
  const head = { incident: 'nats-a~20261126T000000.000Z-manual', profile: 'x' };

  for (const name of ['cpu', 'heap', 'allocs', 'goroutine']) {
    it(`${name}: the same answers as the pure functions, as JSON text with the head first`, async () => {
      const p = decodeProfile(readFileSync(path(name)));
      const fg = await w.flamegraph({ path: path(name) }, { head, sampleType: undefined, minShare: 0.01 });
      assert.equal(fg, JSON.stringify({ ...head, ...buildFlameGraph(p, { minShare: 0.01 }) }));
      assert.ok(fg.startsWith(`{"incident":"${head.incident}","profile":"x","sample_type":`));
      const top = await w.top(readFileSync(path(name)), { head, sampleType: undefined, limit: 7 });
      assert.equal(top, JSON.stringify({ ...head, ...buildTop(p, { limit: 7 }) }));
    });
  }

  it('compare and growth take the base/previous profile first', async () => {
    const heap = decodeProfile(readFileSync(path('heap')));
    const allocs = decodeProfile(readFileSync(path('allocs')));
    const base = { incident: 'a~1', profile: 'heap' };
    const target = { incident: 'b~2', profile: 'allocs' };
    const text = await w.compare({ path: path('heap') }, { path: path('allocs') }, { base, target, sampleType: 'alloc_space', minShare: 0.001 });
    const { base_total, target_total, ...diff } = compareProfiles(heap, allocs, { sampleType: 'alloc_space' });
    assert.deepEqual(JSON.parse(text), { base: { ...base, total: base_total }, target: { ...target, total: target_total }, ...diff });
    assert.deepEqual(await w.growth({ path: path('heap') }, { path: path('allocs') }), growthSince(heap, allocs));
  });

  it('a missing sample type comes back as a SampleTypeError naming it', async () => {
    await assert.rejects(
      w.flamegraph({ path: path('goroutine') }, { head, sampleType: 'cpu', minShare: 0 }),
      new SampleTypeError('sample type "cpu" is not in the profile; it has: goroutine'),
    );
    await assert.rejects(w.growth({ path: path('goroutine') }, { path: path('cpu') }), new SampleTypeError('sample type "cpu" is not in the base profile; it has: goroutine'));
  });

  it('a per-job timeout stops only that job', async () => {
    const m = new ProfileWorker({ entry: misbehaving, timeoutMs: 60_000 });
    try {
      const hang = m.growth({ path: path('cpu') }, { path: '/hang' }, { timeoutMs: 2_000 });
      await assert.rejects(hang, new ProfileWorkerError(`the profile worker took longer than 2000 ms reading /hang and ${path('cpu')}; it was stopped and a new one serves the next job`, 'timeout'));
      assert.ok((await m.top({ path: path('cpu') }, { head, sampleType: undefined, limit: 1 })).includes('"rows":[{'));
    } finally {
      await m.close();
    }
  });
});

describe('InsightCache', () => {
  it('evicts the least recently used when over its byte bound; a value larger than the bound is not kept', () => {
    // Each entry: 2 bytes per character of value and key, plus 64.
    const c = new InsightCache<string>({ maxBytes: 3 * (2 * 10 + 2 * 1 + 64) });
    for (const k of ['a', 'b', 'c']) c.set(k, '0123456789');
    assert.equal(c.size, 3);
    assert.equal(c.bytes, 3 * 86);
    assert.equal(c.get('a'), '0123456789'); // a is now the most recent
    c.set('d', '0123456789');
    assert.deepEqual(['a', 'b', 'c', 'd'].map((k) => c.get(k) !== undefined), [true, false, true, true]);
    c.set('huge', 'x'.repeat(1000));
    assert.equal(c.get('huge'), undefined);
    assert.equal(c.size, 3);
    c.set('a', 'x'.repeat(50)); // replacing a value re-counts it (166 bytes) and evicts the oldest as needed
    assert.equal(c.bytes, 166 + 86);
    assert.deepEqual(['a', 'c', 'd'].map((k) => c.get(k) !== undefined), [true, false, true]);
  });

  it('getOrCompute: one computation for concurrent callers, hits afterwards, failures not kept', async () => {
    const c = new InsightCache<string>();
    let runs = 0;
    const compute = async (): Promise<string> => {
      runs++;
      await new Promise((r) => setTimeout(r, 10));
      return 'v';
    };
    assert.deepEqual(await Promise.all([c.getOrCompute('k', compute), c.getOrCompute('k', compute)]), ['v', 'v']);
    assert.equal(await c.getOrCompute('k', compute), 'v');
    assert.equal(runs, 1);
    assert.equal(c.hits, 1);
    await assert.rejects(c.getOrCompute('bad', () => Promise.reject(new Error('no'))), /no/);
    assert.equal(await c.getOrCompute('bad', async () => 'ok'), 'ok');
  });
});
