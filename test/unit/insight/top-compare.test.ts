import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { compareProfiles, describeGrowth, growthSince, type ProfileDiff } from '../../../src/insight/compare.js';
import { decodeProfile, summarizeProfile } from '../../../src/insight/pprof-summary.js';
import { SampleTypeError } from '../../../src/insight/stacks.js';
import { buildTop } from '../../../src/insight/top.js';
import { encodeProfile, type ProfileSpec } from './make-profile.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/profiles');
const fixture = (name: string): Buffer => readFileSync(join(fixtures, `${name}.pb.gz`));
const decode = (spec: ProfileSpec) => decodeProfile(encodeProfile(spec));
const CPU: ProfileSpec['types'] = [
  ['samples', 'count'],
  ['cpu', 'nanoseconds'],
];
const cpu = (samples: [stack: (string | string[])[], value: number][]) => decode({ types: CPU, samples: samples.map(([stack, v]) => ({ stack, values: [1, v] })) });

describe('buildTop', () => {
  it('flat is the leaf, cum counts a function once per sample (recursion), rows by flat desc', () => {
    const p = cpu([
      [['main', 'f', 'f', 'f', 'g'], 40],
      [['main', 'f'], 10],
      [['main', 'h'], 30],
      [['main', ['inl', 'leafy']], 20],
    ]);
    const t = buildTop(p);
    assert.equal(t.total, 100);
    assert.equal(t.sample_type, 'cpu');
    assert.equal(t.unit, 'nanoseconds');
    assert.deepEqual(
      t.rows.map((r) => [r.function, r.flat, r.flat_share, r.cum, r.cum_share]),
      [
        ['g', 40, 0.4, 40, 0.4],
        ['h', 30, 0.3, 30, 0.3],
        ['leafy', 20, 0.2, 20, 0.2],
        ['f', 10, 0.1, 50, 0.5],
        ['main', 0, 0, 100, 1],
        ['inl', 0, 0, 20, 0.2],
      ],
    );
    assert.deepEqual(buildTop(p, { limit: 2 }).rows.map((r) => r.function), ['g', 'h']);
    assert.deepEqual(buildTop(p, { sampleType: 'samples' }).rows[0], { function: 'f', flat: 1, flat_share: 0.25, cum: 2, cum_share: 0.5 });
    assert.throws(() => buildTop(p, { sampleType: 'alloc_space' }), SampleTypeError);
  });

  for (const name of ['cpu', 'allocs', 'heap', 'goroutine']) {
    it(`${name}: the same flat values as the manifest summary, flat sums to the total`, () => {
      const data = fixture(name);
      const s = summarizeProfile(data, 10);
      const t = buildTop(decodeProfile(data), { limit: 1000 });
      assert.equal(t.total, s.total);
      const flat = new Map(t.rows.map((r) => [r.function, r.flat]));
      for (const x of s.top) assert.equal(flat.get(x.function), x.flat, x.function);
      assert.deepEqual(t.rows.slice(0, s.top.length).map((r) => r.flat), s.top.map((x) => x.flat));
      assert.equal(t.rows.reduce((a, r) => a + r.flat, 0), t.total);
      for (const r of t.rows) assert.ok(r.cum >= r.flat && r.cum <= t.total && r.cum_share <= 1, r.function);
    });
  }
});

function render(d: ProfileDiff): string[] {
  const depth: number[] = [];
  return d.nodes.map(([name, b, t, parent]) => {
    const dd = parent < 0 ? 0 : (depth[parent] as number) + 1;
    depth.push(dd);
    return `${'  '.repeat(dd)}${d.names[name]} ${b} ${t}`;
  });
}

describe('compareProfiles', () => {
  // base: 100 in total, target: 1000 (ten times longer): shares, not values, decide.
  const base = cpu([
    [['main', 'a'], 50],
    [['main', 'b'], 40],
    [['main', 'c', 'gone'], 10],
  ]);
  const target = cpu([
    [['main', 'a'], 100],
    [['main', 'b'], 400],
    [['main', 'd'], 495],
    [['main', 'c', 'tiny'], 5],
  ]);

  it('merges both trees; children by base share + target share; changes by |delta|', () => {
    const d = compareProfiles(base, target, { minShare: 0 });
    assert.equal(d.sample_type, 'cpu');
    assert.equal(d.base_total, 100);
    assert.equal(d.target_total, 1000);
    assert.deepEqual(render(d), ['root 100 1000', '  main 100 1000', '    b 40 400', '    a 50 100', '    d 0 495', '    c 10 5', '      gone 10 0', '      tiny 0 5']);
    assert.deepEqual(
      d.changes.map((c) => [c.function, c.base_share, c.target_share, Number(c.delta.toFixed(4))]),
      [
        ['d', 0, 0.495, 0.495],
        ['a', 0.5, 0.1, -0.4],
        ['gone', 0.1, 0, -0.1],
        ['tiny', 0, 0.005, 0.005],
      ],
    );
  });

  it('nodes under min_share in both profiles merge into one "other" per parent', () => {
    const d = compareProfiles(base, target, { minShare: 0.08 });
    assert.deepEqual(render(d), ['root 100 1000', '  main 100 1000', '    b 40 400', '    a 50 100', '    d 0 495', '    c 10 5', '      gone 10 0', '      other 0 5']);
    const d2 = compareProfiles(base, target, { minShare: 0.2 });
    assert.deepEqual(render(d2), ['root 100 1000', '  main 100 1000', '    b 40 400', '    a 50 100', '    d 0 495', '    other 10 5']);
  });

  it('both profiles need the sample type; the error names the side and what it has', () => {
    const heap = decode({ types: [['inuse_space', 'bytes']], samples: [{ stack: ['m'], values: [1] }] });
    assert.throws(() => compareProfiles(heap, target), new SampleTypeError('sample type "cpu" is not in the base profile; it has: inuse_space'));
    assert.throws(() => compareProfiles(base, target, { sampleType: 'inuse_space' }), new SampleTypeError('sample type "inuse_space" is not in the target profile; it has: samples, cpu'));
    assert.equal(compareProfiles(base, target, { sampleType: 'samples' }).sample_type, 'samples');
  });

  it('a profile against itself: no changes, equal totals at every node', () => {
    const p = decodeProfile(fixture('cpu'));
    const d = compareProfiles(p, p);
    assert.deepEqual(d.changes, []);
    for (const [, b, t] of d.nodes) assert.equal(b, t);
    assert.ok(d.names.includes('runtime.mcall') || d.names.length > 10);
  });

  it('recorded heap against recorded allocs (same Go heap profile types): changes sorted by |delta|, at most 50', () => {
    const d = compareProfiles(decodeProfile(fixture('heap')), decodeProfile(fixture('allocs')), { sampleType: 'alloc_space' });
    assert.ok(d.changes.length <= 50);
    for (let i = 1; i < d.changes.length; i++) assert.ok(Math.abs((d.changes[i - 1] as { delta: number }).delta) >= Math.abs((d.changes[i] as { delta: number }).delta));
  });
});

describe('growthSince (capture-time changes)', () => {
  it('up to 5 functions grown by at least 1 point, most first, shares rounded', () => {
    const before = cpu([
      [['m', 'mapassign'], 3],
      [['m', 'a'], 50],
      [['m', 'b'], 20],
      [['m', 'c'], 27],
    ]);
    const after = cpu([
      [['m', 'mapassign'], 410],
      [['m', 'a'], 300],
      [['m', 'b'], 210],
      [['m', 'c'], 10],
      [['m', 'n1'], 20],
      [['m', 'n2'], 15],
      [['m', 'n3'], 12],
      [['m', 'n4'], 10],
      [['m', 'n5'], 9],
      [['m', 'n6'], 4],
    ]);
    const g = growthSince(before, after);
    assert.deepEqual(g, [
      { function: 'mapassign', before_share: 0.03, after_share: 0.41 },
      { function: 'n1', before_share: 0, after_share: 0.02 },
      { function: 'n2', before_share: 0, after_share: 0.015 },
      { function: 'n3', before_share: 0, after_share: 0.012 },
      { function: 'b', before_share: 0.2, after_share: 0.21 },
    ]);
    assert.equal(describeGrowth(g.slice(0, 2)), 'mapassign 3% -> 41%, n1 0% -> 2%');
  });

  it('[] when nothing grew by a point; the sample type must be in both', () => {
    const p = cpu([[['m', 'a'], 10]]);
    assert.deepEqual(growthSince(p, cpu([[['m', 'a'], 5], [['m', 'b'], 0]])), []);
    const heap = decode({ types: [['inuse_space', 'bytes']], samples: [{ stack: ['m'], values: [1] }] });
    assert.throws(() => growthSince(heap, p), SampleTypeError);
  });
});
