import * as assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ProfileDecodeError, summarizeProfile } from '../../../src/insight/pprof-summary.js';
import { ProfileWorker, ProfileWorkerError } from '../../../src/insight/profile-worker.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, '../../fixtures/profiles');
const NAMES = ['cpu', 'heap', 'allocs', 'goroutine'];
const misbehaving = new URL('./fixtures/misbehaving-thread.ts', import.meta.url);

describe('ProfileWorker', () => {
  const shared = new ProfileWorker();
  after(() => shared.close());

  for (const name of NAMES) {
    it(`${name}: the same summary as summarizeProfile, from bytes and from a file`, async () => {
      const path = join(fixtures, `${name}.pb.gz`);
      const data = readFileSync(path);
      const expected = summarizeProfile(data, 10);
      assert.ok(expected.top.length > 0);
      assert.deepEqual(await shared.summarize(data, 10), expected);
      assert.deepEqual(await shared.summarize({ path }, 10), expected);
      assert.deepEqual(await shared.summarize({ path }, 3), summarizeProfile(data, 3));
      // The caller's bytes stay usable (they are copied, not moved).
      assert.equal(data.byteLength, readFileSync(path).byteLength);
      assert.deepEqual(summarizeProfile(data, 10), expected);
    });
  }

  it('starts its thread on the first job only, and keeps one thread for many jobs', async () => {
    const w = new ProfileWorker();
    try {
      assert.equal(w.threadsStarted, 0);
      const data = readFileSync(join(fixtures, 'heap.pb.gz'));
      const all = await Promise.all(Array.from({ length: 5 }, () => w.summarize(data)));
      assert.equal(all.length, 5);
      assert.equal(w.threadsStarted, 1);
    } finally {
      await w.close();
    }
  });

  it('a corrupt profile fails with a ProfileDecodeError that says why, and the worker goes on', async () => {
    const gz = readFileSync(join(fixtures, 'cpu.pb.gz'));
    await assert.rejects(shared.summarize(gz.subarray(0, 100)), (err: unknown) => {
      assert.ok(err instanceof ProfileDecodeError);
      assert.equal(err.message, 'profile is not valid gzip: unexpected end of file');
      return true;
    });
    await assert.rejects(shared.summarize(new Uint8Array(0)), new ProfileDecodeError('profile is empty (0 bytes)'));
    assert.ok((await shared.summarize(gz)).top.length > 0);
  });

  it('a missing file fails with kind "failed" and the file system code', async () => {
    const path = join(here, 'no-such-profile.pb.gz');
    await assert.rejects(shared.summarize({ path }), (err: unknown) => {
      assert.ok(err instanceof ProfileWorkerError);
      assert.equal(err.kind, 'failed');
      assert.equal(err.code, 'ENOENT');
      assert.equal(err.message, `cannot read ${path}: ENOENT: no such file or directory, open '${path}'`);
      return true;
    });
  });

  it('a crashed thread fails its job, and a new thread serves the jobs behind it', async () => {
    const w = new ProfileWorker({ entry: misbehaving });
    try {
      const path = join(fixtures, 'goroutine.pb.gz');
      const crash = w.summarize({ path: '/crash' });
      const behind = w.summarize({ path });
      await assert.rejects(crash, (err: unknown) => {
        assert.ok(err instanceof ProfileWorkerError);
        assert.equal(err.kind, 'crashed');
        assert.equal(err.message, 'the profile worker stopped (exit code 7) while reading /crash; a new one serves the next job');
        return true;
      });
      assert.deepEqual(await behind, summarizeProfile(readFileSync(path)));
      assert.equal(w.threadsStarted, 2);
    } finally {
      await w.close();
    }
  });

  it('a job over its timeout fails, its thread is stopped, and a new thread serves the next job', async () => {
    // Long enough for a new thread to start under tsx on a loaded machine, short enough for a test.
    const w = new ProfileWorker({ entry: misbehaving, timeoutMs: 3000 });
    try {
      const path = join(fixtures, 'cpu.pb.gz');
      const hang = w.summarize({ path: '/hang' });
      const behind = w.summarize({ path });
      await assert.rejects(hang, new ProfileWorkerError('the profile worker took longer than 3000 ms reading /hang; it was stopped and a new one serves the next job', 'timeout'));
      assert.deepEqual(await behind, summarizeProfile(readFileSync(path)));
      assert.equal(w.threadsStarted, 2);
    } finally {
      await w.close();
    }
  });

  it('a full queue refuses at once with kind "busy"', async () => {
    const w = new ProfileWorker({ entry: misbehaving, maxQueue: 1, timeoutMs: 60_000 });
    const path = join(fixtures, 'cpu.pb.gz');
    const running = w.summarize({ path: '/hang' });
    const queued = w.summarize({ path });
    await assert.rejects(w.summarize({ path }), new ProfileWorkerError('the profile worker is busy: 1 jobs are already waiting', 'busy'));
    const failed = [running, queued].map((p) => assert.rejects(p, new ProfileWorkerError('the profile worker is closed', 'closed')));
    await w.close();
    await Promise.all(failed);
  });

  it('close() is idempotent, ends the thread, and later jobs fail at once', async () => {
    const w = new ProfileWorker();
    assert.ok((await w.summarize({ path: join(fixtures, 'heap.pb.gz') })).top.length > 0);
    const first = w.close();
    assert.equal(w.close(), first);
    await first;
    await w.close();
    await assert.rejects(w.summarize(new Uint8Array(1)), new ProfileWorkerError('the profile worker is closed', 'closed'));
    // Closing one that never started is fine too.
    const never = new ProfileWorker();
    await never.close();
    await never.close();
    assert.equal(never.threadsStarted, 0);
  });
});
