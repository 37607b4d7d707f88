import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { readProfile } from '../../../src/insight/pprof-reader.js';
import { decodeProfile, ProfileDecodeError } from '../../../src/insight/pprof-summary.js';
import { buildFlameGraph } from '../../../src/insight/flamegraph.js';
import { makeProfile } from './make-profile.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/profiles');

/** Protobuf by hand, for what pprof-format never writes (unpacked repeated fields, unknown fields). */
function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}
const field = (f: number, wire: number): number[] => varint(f * 8 + wire);
const bytes = (f: number, payload: number[]): number[] => [...field(f, 2), ...varint(payload.length), ...payload];
const str = (s: string): number[] => [...Buffer.from(s)];

describe('readProfile', () => {
  for (const name of ['cpu', 'allocs', 'heap', 'goroutine']) {
    it(`${name}: the same samples, locations, functions and strings as pprof-format's decoder`, () => {
      const data = readFileSync(join(fixtures, `${name}.pb.gz`));
      const want = decodeProfile(data);
      const got = readProfile(data);
      assert.deepEqual(got.strings, want.stringTable.strings);
      assert.deepEqual(got.sampleTypes, want.sampleType.map((t) => ({ type: Number(t.type), unit: Number(t.unit) })));
      assert.equal(got.defaultSampleType, Number(want.defaultSampleType));
      assert.equal(got.sampleCount, want.sample.length);
      assert.equal(got.locations.size, want.location.length);
      for (const l of want.location) assert.deepEqual(got.locations.get(Number(l.id))?.functionIds, l.line.map((x) => Number(x.functionId)));
      for (const f of want.function) assert.equal(got.functionNames.get(Number(f.id)), Number(f.name));
      const samples: [number[], number[]][] = [];
      got.forEachSample((l, v) => samples.push([[...l], [...v]]));
      assert.deepEqual(samples, want.sample.map((s) => [s.locationId.map(Number), s.value.map(Number)]));
    });
  }

  it('negative values (int64 as 10-byte varints) and large ones stay exact', () => {
    const p = makeProfile({ types: [['space', 'bytes']], samples: [{ stack: ['a'], values: [-5] }, { stack: ['b'], values: [2 ** 40 + 3] }, { stack: ['c'], values: [-(2 ** 33)] }] });
    const got: number[] = [];
    readProfile(p.encode()).forEachSample((_l, v) => got.push(v[0] as number));
    assert.deepEqual(got, [-5, 2 ** 40 + 3, -(2 ** 33)]);
  });

  it('unpacked repeated fields, unknown fields and a function without a name (its system name) are read', () => {
    const raw = new Uint8Array([
      ...bytes(6, []),
      ...bytes(6, str('cpu')),
      ...bytes(6, str('nanoseconds')),
      ...bytes(6, str('main.sys')),
      ...bytes(1, [...field(1, 0), 1, ...field(2, 0), 2]),
      ...field(99, 5), 1, 2, 3, 4, // an unknown fixed32 field
      ...bytes(2, [...field(1, 0), 7, ...field(1, 0), 8, ...field(2, 0), 50, ...field(3, 2), 0]),
      ...bytes(4, [...field(1, 0), 7, ...bytes(4, [...field(1, 0), 1])]),
      ...bytes(4, [...field(1, 0), 8, ...field(3, 0), ...varint(0x4000)]),
      ...bytes(5, [...field(1, 0), 1, ...field(2, 0), 0, ...field(3, 0), 3]),
    ]);
    const p = readProfile(raw);
    const samples: [number[], number[]][] = [];
    p.forEachSample((l, v) => samples.push([[...l], [...v]]));
    assert.deepEqual(samples, [[[7, 8], [50]]]);
    const g = buildFlameGraph(p, { minShare: 0 });
    assert.deepEqual(g.names, ['root', '0x4000', 'main.sys']);
    assert.deepEqual(g.nodes, [[0, 50, 0, -1], [1, 50, 0, 0], [2, 50, 50, 1]]);
  });

  it('refuses what is not a profile with the messages decodeProfile gives', () => {
    const cpu = readFileSync(join(fixtures, 'cpu.pb.gz'));
    const cases: [Uint8Array, string][] = [
      [new Uint8Array(0), 'profile is empty (0 bytes)'],
      [cpu.subarray(0, 100), 'profile is not valid gzip: unexpected end of file'],
      [gzipSync(Buffer.from('hello world, not a profile')), 'profile is not a pprof protobuf: unsupported wire type 4'],
      [new Uint8Array([0x0a, 0x05, 0x08]), 'profile is not a pprof protobuf (and not gzip): field runs past its message'],
      [new Uint8Array(bytes(6, str('x'))), 'profile has no sample types (input is not gzip; is it a profile at all?)'],
      [gzipSync(new Uint8Array([...bytes(6, []), ...bytes(1, [...field(1, 0), 5])])), 'profile has sample types that are not in its string table'],
    ];
    for (const [data, message] of cases) assert.throws(() => readProfile(data), new ProfileDecodeError(message), message);
  });
});
