import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildFlameGraph, type FlameGraph } from '../../../src/insight/flamegraph.js';
import { decodeProfile, summarizeProfile } from '../../../src/insight/pprof-summary.js';
import { SampleTypeError } from '../../../src/insight/stacks.js';
import { encodeProfile, type ProfileSpec } from './make-profile.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/profiles');
const fixture = (name: string): Buffer => readFileSync(join(fixtures, `${name}.pb.gz`));
const decode = (spec: ProfileSpec) => decodeProfile(encodeProfile(spec));

/** The tree as readable rows: "  name total self" with two spaces per depth. */
function render(g: FlameGraph): string[] {
  const depth: number[] = [];
  return g.nodes.map(([name, total, self, parent]) => {
    const d = parent < 0 ? 0 : (depth[parent] as number) + 1;
    depth.push(d);
    return `${'  '.repeat(d)}${g.names[name]} ${total} ${self}`;
  });
}

/** Invariants every tree keeps: preorder, totals add up, children by total descending, names used once. */
function assertWellFormed(g: FlameGraph): void {
  assert.equal(g.names[0], 'root');
  assert.deepEqual(g.nodes[0]?.slice(0, 2), [0, g.total]);
  assert.equal(g.nodes[0]?.[3], -1);
  assert.equal(new Set(g.names).size, g.names.length, 'names interned once');
  const childSum = new Array<number>(g.nodes.length).fill(0);
  const lastChildTotal = new Array<number>(g.nodes.length).fill(Infinity);
  g.nodes.forEach(([name, total, , parent], i) => {
    assert.ok(name >= 0 && name < g.names.length);
    if (i === 0) return;
    assert.ok(parent >= 0 && parent < i, `node ${i}: parent ${parent} comes first`);
    childSum[parent] = (childSum[parent] as number) + total;
    assert.ok(total <= (lastChildTotal[parent] as number), `node ${i}: children by total desc`);
    lastChildTotal[parent] = total;
  });
  g.nodes.forEach(([, total, self], i) => assert.equal(total, self + (childSum[i] as number), `node ${i}: total = self + children`));
}

const CPU: ProfileSpec['types'] = [
  ['samples', 'count'],
  ['cpu', 'nanoseconds'],
];

describe('buildFlameGraph: exact trees from small encoded profiles', () => {
  const cases: { name: string; spec: ProfileSpec; minShare?: number; sampleType?: string; tree: string[]; sample_type: string }[] = [
    {
      name: 'paths merge by function, children by total desc, self where a stack ends',
      spec: {
        types: CPU,
        samples: [
          { stack: ['main', 'a', 'b'], values: [5, 50] },
          { stack: ['main', 'a'], values: [3, 30] },
          { stack: ['main', 'c'], values: [9, 90] },
          { stack: ['gc'], values: [1, 10] },
          { stack: ['main', 'a', 'zero'], values: [0, 0] },
        ],
      },
      minShare: 0,
      sample_type: 'cpu',
      tree: ['root 180 0', '  main 170 0', '    c 90 90', '    a 80 30', '      b 50 50', '  gc 10 10'],
    },
    {
      name: 'the first sample type when asked for it',
      spec: { types: CPU, samples: [{ stack: ['main', 'a'], values: [5, 1] }, { stack: ['main', 'b'], values: [1, 7] }] },
      sampleType: 'samples',
      minShare: 0,
      sample_type: 'samples',
      tree: ['root 6 0', '  main 6 0', '    a 5 5', '    b 1 1'],
    },
    {
      name: 'recursion keeps one node per level',
      spec: { types: CPU, samples: [{ stack: ['main', 'f', 'f', 'f', 'g'], values: [1, 4] }, { stack: ['main', 'f'], values: [1, 1] }] },
      minShare: 0,
      sample_type: 'cpu',
      tree: ['root 5 0', '  main 5 0', '    f 5 1', '      f 4 0', '        f 4 0', '          g 4 4'],
    },
    {
      name: 'inlined frames expand outermost first inside one location',
      spec: { types: CPU, samples: [{ stack: ['main', ['outer', 'middle', 'inner'], 'leaf'], values: [1, 2] }, { stack: ['main', ['outer', 'other2']], values: [1, 1] }] },
      minShare: 0,
      sample_type: 'cpu',
      tree: ['root 3 0', '  main 3 0', '    outer 3 0', '      middle 2 0', '        inner 2 0', '          leaf 2 2', '      other2 1 1'],
    },
    {
      name: 'children under min_share of the root merge into one "other" per parent',
      spec: {
        types: CPU,
        samples: [
          { stack: ['main', 'big'], values: [1, 880] },
          { stack: ['main', 'mid'], values: [1, 92] },
          { stack: ['main', 'small1'], values: [1, 5] },
          { stack: ['main', 'small2', 'deep'], values: [1, 3] },
          { stack: ['main', 'big', 'tiny'], values: [1, 9] },
          { stack: ['main', 'big', 'tiny2'], values: [1, 1] },
          { stack: ['lone'], values: [1, 9] },
          { stack: ['lone2'], values: [1, 1] },
        ],
      },
      minShare: 0.01,
      sample_type: 'cpu',
      tree: ['root 1000 0', '  main 990 0', '    big 890 880', '      other 10 10', '    mid 92 92', '    other 8 8', '  other 10 10'],
    },
    {
      name: 'default_sample_type picks the type when set',
      spec: { types: [['alloc_objects', 'count'], ['alloc_space', 'bytes'], ['inuse_space', 'bytes']], defaultType: 'alloc_objects', samples: [{ stack: ['m'], values: [3, 300, 30] }] },
      minShare: 0,
      sample_type: 'alloc_objects',
      tree: ['root 3 0', '  m 3 3'],
    },
    {
      name: 'without default_sample_type the last type is the default',
      spec: { types: [['alloc_objects', 'count'], ['alloc_space', 'bytes'], ['inuse_space', 'bytes']], samples: [{ stack: ['m'], values: [3, 300, 30] }] },
      sample_type: 'inuse_space',
      tree: ['root 30 0', '  m 30 30'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const g = buildFlameGraph(decode(c.spec), { sampleType: c.sampleType, minShare: c.minShare });
      assert.deepEqual(render(g), c.tree);
      assert.equal(g.sample_type, c.sample_type);
      assert.deepEqual(g.sample_types, c.spec.types.map(([type, unit]) => ({ type, unit })));
      assertWellFormed(g);
    });
  }

  it('a sample type the profile does not have is a SampleTypeError naming what it has', () => {
    const p = decode({ types: CPU, samples: [{ stack: ['m'], values: [1, 1] }] });
    assert.throws(() => buildFlameGraph(p, { sampleType: 'inuse_space' }), new SampleTypeError('sample type "inuse_space" is not in the profile; it has: samples, cpu'));
  });

  it('the default min_share is 0.001: a frame at 0.1 % stays, one below merges', () => {
    const g = buildFlameGraph(
      decode({ types: CPU, samples: [{ stack: ['a'], values: [1, 9980] }, { stack: ['b'], values: [1, 10] }, { stack: ['c'], values: [1, 9] }, { stack: ['d'], values: [1, 1] }] }),
    );
    assert.deepEqual(render(g), ['root 10000 0', '  a 9980 9980', '  b 10 10', '  other 10 10']);
  });
});

describe('buildFlameGraph on profiles recorded from nats-server', () => {
  for (const name of ['cpu', 'allocs', 'heap', 'goroutine']) {
    it(`${name}: the total of the default sample type, a well-formed tree, nats-server frames`, () => {
      const data = fixture(name);
      const summary = summarizeProfile(data);
      const full = buildFlameGraph(decodeProfile(data), { minShare: 0 });
      assert.equal(full.sample_type, summary.sampleType);
      assert.equal(full.total, summary.total);
      assertWellFormed(full);
      // The heap's in-use memory at that moment was all net/http's and the runtime's.
      if (name !== 'heap') assert.ok(full.names.some((n) => n.startsWith('github.com/nats-io/nats-server/')), 'nats-server frames');
      assert.equal(full.nodes[0]?.[2], 0, 'no value left at the root');
      // Self values of the full tree per function are the flat values the summary ranks.
      const flat = new Map<string, number>();
      for (const [n, , self] of full.nodes) flat.set(full.names[n] as string, (flat.get(full.names[n] as string) ?? 0) + self);
      for (const t of summary.top) assert.equal(flat.get(t.function), t.flat, t.function);

      const pruned = buildFlameGraph(decodeProfile(data), { minShare: 0.05 });
      assertWellFormed(pruned);
      assert.equal(pruned.total, full.total);
      // The CPU profile has many small frames; the others are small enough that little or nothing merges.
      if (name === 'cpu') assert.ok(pruned.nodes.length < full.nodes.length / 2, `${pruned.nodes.length} of ${full.nodes.length}`);
      else assert.ok(pruned.nodes.length <= full.nodes.length);
      for (const [n, total] of pruned.nodes) if (pruned.names[n] !== 'other') assert.ok(total >= 0.05 * pruned.total);
    });
  }

  it('every sample type of the heap profile', () => {
    const p = decodeProfile(fixture('heap'));
    for (const t of ['alloc_objects', 'alloc_space', 'inuse_objects', 'inuse_space']) {
      const g = buildFlameGraph(p, { sampleType: t });
      assert.equal(g.sample_type, t);
      assert.equal(g.unit, t.endsWith('objects') ? 'count' : 'bytes');
      assertWellFormed(g);
    }
  });
});
