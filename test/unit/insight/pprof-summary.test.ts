import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { Function as PFunction, Line, Location, Profile, Sample, StringTable, ValueType } from 'pprof-format';
import {
  ProfileDecodeError,
  decodeProfile,
  profileDurationNs,
  sampleTypes,
  summarizeProfile,
} from '../../../src/insight/pprof-summary.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/profiles');
const fixture = (name: string): Buffer => readFileSync(join(fixtures, `${name}.pb.gz`));

function assertShares(top: { flat: number; share: number; function: string }[], total: number): void {
  assert.ok(top.length > 0);
  let sum = 0;
  for (const t of top) {
    assert.ok(t.share > 0 && t.share <= 1, `${t.function} share ${t.share}`);
    assert.equal(t.share, t.flat / total);
    assert.ok(t.function.length > 0);
    sum += t.share;
  }
  assert.ok(sum <= 1 + 1e-9, `shares sum to ${sum}`);
  for (let i = 1; i < top.length; i++) {
    const prev = top[i - 1];
    const cur = top[i];
    assert.ok(prev && cur && (prev.flat > cur.flat || (prev.flat === cur.flat && prev.function < cur.function)));
  }
}

describe('summarizeProfile on profiles recorded from nats-server 2.10.27', () => {
  it('cpu: cpu/nanoseconds, 2 s, non-empty top', () => {
    const data = fixture('cpu');
    assert.deepEqual(sampleTypes(data), [
      { type: 'samples', unit: 'count' },
      { type: 'cpu', unit: 'nanoseconds' },
    ]);
    const ns = profileDurationNs(data);
    assert.ok(ns !== undefined && ns >= 2e9 && ns < 3e9, `duration ${ns}`);
    const s = summarizeProfile(data);
    assert.equal(s.sampleType, 'cpu');
    assert.equal(s.unit, 'nanoseconds');
    assert.ok(s.total > 0);
    assert.ok(s.top.length > 0 && s.top.length <= 10);
    assertShares(s.top, s.total);
    // Every CPU sample is a multiple of the 10 ms sampling period.
    for (const t of s.top) assert.equal(t.flat % 10_000_000, 0);
  });

  it('allocs: default_sample_type alloc_space/bytes', () => {
    const data = fixture('allocs');
    assert.deepEqual(
      sampleTypes(data).map((t) => `${t.type}/${t.unit}`),
      ['alloc_objects/count', 'alloc_space/bytes', 'inuse_objects/count', 'inuse_space/bytes'],
    );
    const s = summarizeProfile(data, 5);
    assert.equal(s.sampleType, 'alloc_space');
    assert.equal(s.unit, 'bytes');
    assert.equal(s.top.length, 5);
    assertShares(s.top, s.total);
    assert.equal(profileDurationNs(data), undefined);
  });

  it('heap: no default set, so the last type, inuse_space/bytes', () => {
    const s = summarizeProfile(fixture('heap'));
    assert.equal(s.sampleType, 'inuse_space');
    assert.equal(s.unit, 'bytes');
    assertShares(s.top, s.total);
  });

  it('goroutine: goroutine/count, runtime.gopark on top', () => {
    const s = summarizeProfile(fixture('goroutine'));
    assert.equal(s.sampleType, 'goroutine');
    assert.equal(s.unit, 'count');
    assert.ok(Number.isInteger(s.total) && s.total > 5);
    assert.equal(s.top[0]?.function, 'runtime.gopark');
    assertShares(s.top, s.total);
  });

  it('accepts the uncompressed protobuf too', () => {
    const data = fixture('cpu');
    assert.deepEqual(summarizeProfile(gunzipSync(data)), summarizeProfile(data));
  });

  it('n limits the list', () => {
    assert.equal(summarizeProfile(fixture('cpu'), 1).top.length, 1);
    assert.deepEqual(summarizeProfile(fixture('cpu'), 0).top, []);
  });
});

describe('summarizeProfile semantics (synthetic profile)', () => {
  // Two locations: L1 = bar inlined into foo (line[0] = bar, the innermost), L2 = main.
  // Samples: [L1, L2] x 30, [L2] x 10, [L1] x 30 again, [] x 5 (no stack). Values are bigint where it matters.
  function build(defaultType?: string): Uint8Array {
    const st = new StringTable();
    const fn = (id: number, name: string): PFunction => new PFunction({ id, name: st.dedup(name) });
    const profile = new Profile({
      sampleType: [
        new ValueType({ type: st.dedup('alloc_space'), unit: st.dedup('bytes') }),
        new ValueType({ type: st.dedup('inuse_space'), unit: st.dedup('bytes') }),
      ],
      function: [fn(1, 'pkg.foo'), fn(2, 'pkg.bar'), fn(3, 'main.main')],
      location: [
        new Location({ id: 1, line: [new Line({ functionId: 2 }), new Line({ functionId: 1 })] }),
        new Location({ id: 2, line: [new Line({ functionId: 3 })] }),
      ],
      sample: [
        new Sample({ locationId: [1, 2], value: [1, 30] }),
        new Sample({ locationId: [2], value: [2 ** 40, 10] }),
        new Sample({ locationId: [1], value: [1, 30n] }),
        new Sample({ locationId: [], value: [0, 5] }),
      ],
      stringTable: st,
      defaultSampleType: defaultType === undefined ? 0 : st.dedup(defaultType),
    });
    return gzipSync(profile.encode());
  }

  it('ranks by the last type by default, leaf = line[0] of locationId[0]', () => {
    const s = summarizeProfile(build());
    assert.deepEqual(s, {
      sampleType: 'inuse_space',
      unit: 'bytes',
      total: 75,
      top: [
        { function: 'pkg.bar', flat: 60, share: 60 / 75 },
        { function: 'main.main', flat: 10, share: 10 / 75 },
        { function: '<unknown>', flat: 5, share: 5 / 75 },
      ],
    });
  });

  it('honours default_sample_type and large values', () => {
    const s = summarizeProfile(build('alloc_space'));
    assert.equal(s.sampleType, 'alloc_space');
    assert.equal(s.total, 2 ** 40 + 2);
    assert.deepEqual(
      s.top.map((t) => [t.function, t.flat]),
      [
        ['main.main', 2 ** 40],
        ['pkg.bar', 2],
      ],
    );
  });

  it('decodeProfile returns the pprof-format Profile', () => {
    assert.ok(decodeProfile(build()) instanceof Profile);
  });
});

describe('summarizeProfile on garbage', () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ['empty input', new Uint8Array(0), /^profile is empty \(0 bytes\)$/],
    ['text', Buffer.from('hello, not a profile'), /^profile is not a pprof protobuf \(and not gzip\): /],
    ['an HTTP error page', Buffer.from('404 page not found\n'), /^profile is not a pprof protobuf \(and not gzip\): /],
    ['a broken gzip header', Buffer.from([0x1f, 0x8b, 1, 2, 3]), /^profile is not valid gzip: /],
    ['truncated gzip', fixture('cpu').subarray(0, 100), /^profile is not valid gzip: /],
    ['gzip of text', gzipSync('hello, not a profile'), /^profile is not a pprof protobuf: /],
    ['gzip of nothing', gzipSync(new Uint8Array(0)), /^profile has no sample types$/],
  ];
  for (const [what, data, message] of cases) {
    it(`throws ProfileDecodeError for ${what}`, () => {
      assert.throws(
        () => summarizeProfile(data),
        (err: unknown) => err instanceof ProfileDecodeError && err.name === 'ProfileDecodeError' && message.test(err.message),
      );
    });
  }
});
