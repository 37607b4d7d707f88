/**
 * allocs_delta's subtraction on two allocs snapshots recorded 3 s apart from a real nats-server under load
 * (test/fixtures/profiles/README.md). Stacks are keyed here independently of delta.ts: by their locations'
 * addresses and their labels.
 */
import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { after as afterAll, describe, it } from 'node:test';
import { Profile } from 'pprof-format';

import { allocsDelta, subtractProfiles } from '../../../src/insight/delta.js';
import { ProfileWorker } from '../../../src/insight/profile-worker.js';
import { ProfileDecodeError, summarizeProfile } from '../../../src/insight/pprof-summary.js';

const FIXTURES = new URL('../../fixtures/profiles/', import.meta.url);
const BEFORE = readFileSync(new URL('allocs-before.pb.gz', FIXTURES));
const AFTER = readFileSync(new URL('allocs-after.pb.gz', FIXTURES));

function decode(gz: Uint8Array): Profile {
  return Profile.decode(gunzipSync(gz));
}

function int(v: number | bigint): bigint {
  return typeof v === 'bigint' ? BigInt.asIntN(64, v) : BigInt(v);
}

/** stack key (addresses + labels) -> summed values */
function byStack(p: Profile): Map<string, bigint[]> {
  const addr = new Map(p.location.map((l) => [String(l.id), int(l.address).toString(16)]));
  const s = p.stringTable.strings;
  const out = new Map<string, bigint[]>();
  for (const sample of p.sample) {
    const labels = sample.label.map((l) => `${s[Number(l.key)]}=${s[Number(l.str)]}${String(l.num)}`).sort();
    const k = `${sample.locationId.map((id) => addr.get(String(id))).join(',')}|${labels.join(',')}`;
    const prev = out.get(k);
    const values = sample.value.map(int);
    out.set(k, prev ? prev.map((v, i) => v + (values[i] as bigint)) : values);
  }
  return out;
}

function typeNames(p: Profile): string[] {
  return p.sampleType.map((t) => p.stringTable.strings[Number(t.type)] as string);
}

describe('allocs_delta subtraction (recorded snapshots)', () => {
  const before = byStack(decode(BEFORE));
  const after = byStack(decode(AFTER));
  const deltaBytes = allocsDelta(BEFORE, AFTER, 3_000);
  const deltaProfile = decode(deltaBytes);
  const delta = byStack(deltaProfile);

  it('the recording has stacks in both, stacks only in the second, and stacks that did not change', () => {
    const both = [...after.keys()].filter((k) => before.has(k));
    const changed = both.filter((k) => (after.get(k) as bigint[]).some((v, i) => v !== (before.get(k) as bigint[])[i]));
    assert.ok(changed.length > 0, 'no stack grew between the snapshots');
    assert.ok(both.length > changed.length, 'no stack stayed equal');
    assert.ok([...after.keys()].some((k) => !before.has(k)), 'no stack is new in the second snapshot');
  });

  it('a stack present in both gets after - before, and a stack only in after is kept whole', () => {
    let checked = 0;
    for (const [k, a] of after) {
      const b = before.get(k);
      const want = b ? a.map((v, i) => v - (b[i] as bigint)) : a;
      if (want.every((v) => v === 0n)) continue;
      assert.deepEqual(delta.get(k), want, `stack ${k}`);
      checked++;
    }
    assert.equal(delta.size, checked, 'the delta has stacks that are not in the second snapshot');
  });

  it('stacks with the same values in both snapshots drop out', () => {
    for (const [k, a] of after) {
      const b = before.get(k);
      if (b && a.every((v, i) => v === b[i])) assert.equal(delta.has(k), false, `unchanged stack ${k} is in the delta`);
    }
    assert.equal(deltaProfile.sample.every((s) => s.value.some((v) => int(v) !== 0n)), true);
  });

  it('totals are after - before for every sample type', () => {
    const total = (m: Map<string, bigint[]>, i: number): bigint => [...m.values()].reduce((s, v) => s + (v[i] as bigint), 0n);
    // Every stack of the first snapshot is in the second (the runtime's records only grow).
    for (const k of before.keys()) assert.ok(after.has(k), `stack ${k} disappeared`);
    const types = typeNames(deltaProfile);
    assert.deepEqual(types, ['alloc_objects', 'alloc_space', 'inuse_objects', 'inuse_space']);
    for (let i = 0; i < types.length; i++) assert.equal(total(delta, i), total(after, i) - total(before, i), types[i]);
    assert.ok(total(delta, 1) > 0n && total(delta, 1) < total(after, 1));
  });

  it('the window is the time between the snapshots, and alloc_space is the default sample type', () => {
    const b = decode(BEFORE);
    const a = decode(AFTER);
    assert.equal(int(deltaProfile.timeNanos), int(b.timeNanos));
    assert.equal(int(deltaProfile.durationNanos), int(a.timeNanos) - int(b.timeNanos));
    const seconds = Number(int(deltaProfile.durationNanos)) / 1e9;
    assert.ok(seconds > 2.9 && seconds < 3.5, `duration ${seconds}s`);
    assert.equal(deltaProfile.stringTable.strings[Number(deltaProfile.defaultSampleType)], 'alloc_space');
    const summary = summarizeProfile(deltaBytes, 5);
    assert.equal(summary.sampleType, 'alloc_space');
    assert.ok(summary.top.length > 0);
  });

  it("Go's own delta (prof_port) without a default sample type gets alloc_space and a duration", () => {
    const p = decode(AFTER);
    p.defaultSampleType = 0;
    p.durationNanos = 0;
    const fixed = decode(allocsDelta(undefined, p.encode(), 7_000));
    assert.equal(fixed.stringTable.strings[Number(fixed.defaultSampleType)], 'alloc_space');
    assert.equal(int(fixed.durationNanos), 7_000_000_000n);
    assert.equal(fixed.sample.length, p.sample.length);
  });

  it('refuses profiles of different sample types', () => {
    const cpu = readFileSync(new URL('cpu.pb.gz', FIXTURES));
    assert.throws(() => subtractProfiles(decode(cpu), decode(AFTER), 1_000), (e: unknown) => e instanceof ProfileDecodeError && /different sample types/.test(e.message));
  });

  describe('in the profile worker thread', () => {
    const worker = new ProfileWorker();
    afterAll(() => worker.close());
    it('gives the same bytes as the subtraction in process', async () => {
      const got = await worker.allocsDelta(BEFORE, AFTER, 3_000);
      assert.deepEqual(byStack(decode(got)), delta);
      assert.equal(decode(got).stringTable.strings[Number(decode(got).defaultSampleType)], 'alloc_space');
    });
    it('rejects bytes that are not a profile with ProfileDecodeError', async () => {
      await assert.rejects(worker.allocsDelta(new Uint8Array([1, 2, 3]), AFTER, 3_000), ProfileDecodeError);
    });
  });
});
