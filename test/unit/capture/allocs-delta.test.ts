/** allocs_delta's requests and its two-snapshot path (the subtraction itself: test/unit/insight/delta.test.ts). */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { readWhole, snapshotDelta } from '../../../src/capture/allocs-delta.js';
import { pprofPath } from '../../../src/capture/http-pprof.js';
import { profilezRequest } from '../../../src/capture/profilez.js';
import { systemClock } from '../../../src/clock.js';
import { CaptureError } from '../../../src/errors.js';

describe('allocs_delta requests', () => {
  it("asks prof_port for Go's delta over the window in whole seconds, and PROFILEZ for an allocs snapshot", () => {
    assert.equal(pprofPath('allocs_delta', 10_000), '/debug/pprof/allocs?seconds=10');
    assert.equal(pprofPath('allocs_delta', 400), '/debug/pprof/allocs?seconds=1');
    assert.equal(pprofPath('allocs', 10_000), '/debug/pprof/allocs');
    assert.deepEqual(JSON.parse(profilezRequest('allocs_delta', 5_000)), { name: 'allocs', debug: 0 });
  });

  it('reads a reply whole, and refuses one over max_profile_size', async () => {
    async function* chunks(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array([1, 2]);
      yield new Uint8Array([3]);
    }
    assert.deepEqual([...(await readWhole(chunks(), 3))], [1, 2, 3]);
    await assert.rejects(readWhole(chunks(), 2), (e: unknown) => e instanceof CaptureError && e.kind === 'too_large');
  });

  it('takes two snapshots the window apart and subtracts them', async () => {
    const taken: number[] = [];
    const out = await snapshotDelta({
      snapshot: async () => {
        taken.push(performance.now());
        return new Uint8Array([taken.length]);
      },
      windowMs: 200,
      clock: systemClock,
      signal: new AbortController().signal,
      subtract: async (b, a, w) => new Uint8Array([b?.[0] ?? 0, a[0] ?? 0, w]),
    });
    assert.deepEqual([...out], [1, 2, 200]);
    assert.ok((taken[1] as number) - (taken[0] as number) >= 190);
  });

  it('an abort during the window rejects at once, with no second snapshot and no subtraction', async () => {
    const ac = new AbortController();
    let snapshots = 0;
    let subtracted = false;
    const p = snapshotDelta({
      snapshot: async () => {
        snapshots++;
        return new Uint8Array([1]);
      },
      windowMs: 60_000,
      clock: systemClock,
      signal: ac.signal,
      subtract: async (_b, a) => {
        subtracted = true;
        return a;
      },
    });
    setTimeout(() => ac.abort(new CaptureError('stopping', 'aborted', {})), 50);
    const started = performance.now();
    await assert.rejects(p, (e: unknown) => e instanceof CaptureError && e.kind === 'aborted');
    assert.ok(performance.now() - started < 5_000);
    assert.equal(snapshots, 1);
    assert.equal(subtracted, false);
  });
});
