/**
 * Admission and concurrency of the capturer, with a fake prof_port client (real gzip bytes) and a fake
 * clock for the rate-limit window.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { Capturer } from '../../../src/capture/capturer.js';
import type { CaptureRequest } from '../../../src/capture/request.js';
import type { Clock } from '../../../src/clock.js';
import type { CaptureConfig, ProfileName } from '../../../src/config/types.js';
import { CaptureError } from '../../../src/errors.js';
import { ProfileWorker } from '../../../src/insight/profile-worker.js';
import { Metrics } from '../../../src/metrics/registry.js';
import { IncidentStore } from '../../../src/store/incident-store.js';

const PROFILE = readFileSync(join(import.meta.dirname, '..', '..', 'fixtures', 'profiles', 'allocs.pb.gz'));
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const profiles = new ProfileWorker();
after(() => profiles.close());

class FakeClock implements Clock {
  t = Date.parse('2026-11-26T15:30:00Z');
  now(): number {
    return this.t;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    // Real (short) sleeps so that retries interleave, but time is ours.
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.t += ms;
        resolve();
      }, Math.min(ms, 5));
      signal?.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(signal.reason);
      });
    });
  }
}

/** A prof_port client whose replies the test releases; it records how many requests overlap. */
class FakePprof {
  inFlight = 0;
  maxInFlight = 0;
  calls: string[] = [];
  busyTimes = 0;
  readonly #gates: (() => void)[] = [];
  readonly #heldWaiters: { n: number; resolve: () => void }[] = [];
  hold = false;

  release(): void {
    this.hold = false;
    this.releaseHeld();
  }

  /** Lets the requests now held through, and keeps holding the next ones; returns how many it let through. */
  releaseHeld(): number {
    const gates = this.#gates.splice(0);
    for (const g of gates) g();
    return gates.length;
  }

  /** Resolves once at least `n` requests are held at the gate (an event, not a delay). */
  held(n = 1): Promise<void> {
    if (this.#gates.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.#heldWaiters.push({ n, resolve }));
  }

  #gate(): Promise<void> {
    return new Promise<void>((r) => {
      this.#gates.push(r);
      for (const w of [...this.#heldWaiters]) {
        if (this.#gates.length >= w.n) {
          this.#heldWaiters.splice(this.#heldWaiters.indexOf(w), 1);
          w.resolve();
        }
      }
    });
  }

  async open(_url: string, profile: ProfileName): Promise<AsyncIterable<Uint8Array>> {
    this.calls.push(profile);
    if (profile === 'cpu' && this.busyTimes > 0) {
      this.busyTimes--;
      throw new CaptureError('cpu profiling already in use', 'busy', {});
    }
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    if (this.hold) await this.#gate();
    this.inFlight--;
    return (async function* () {
      yield new Uint8Array(PROFILE);
    })();
  }
}

const baseConfig: CaptureConfig = {
  via: 'prof_port',
  cpuDurationMs: 1_000,
  timeoutMs: 2_000,
  allocsWindowMs: 1_000,
  maxConcurrent: 2,
  limit: { count: 3, windowMs: 3_600_000 },
  maxProfileBytes: 1024 * 1024,
};

function setup(config: Partial<CaptureConfig> = {}, lines: Record<string, unknown>[] = []) {
  const dir = mkdtempSync(join(tmpdir(), 'capturer-'));
  dirs.push(dir);
  const log = pino({ level: 'warn' }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
  const clock = new FakeClock();
  const metrics = new Metrics();
  const store = new IncidentStore({ dir, log, clock });
  const pprof = new FakePprof();
  const capturer = new Capturer({
    config: { ...baseConfig, ...config },
    retention: { maxIncidentsPerServer: 100, maxTotalSizeBytes: 1e12, maxAgeMs: 1e12 },
    store,
    systemAccount: undefined,
    pprof,
    metrics,
    log,
    clock,
    summarize: (input) => profiles.summarize(input, 10),
  });
  return { dir, clock, metrics, store, pprof, capturer };
}

function request(server: string, profiles: ProfileName[] = ['allocs'], profUrl: string | null = 'http://127.0.0.1:1'): CaptureRequest {
  return {
    target: { key: `http://${server}:8222`, label: server, serverId: `N${server.toUpperCase()}`, version: '2.10.27', cluster: undefined, tags: [], url: `http://${server}:8222`, profUrl: profUrl ?? undefined, snapshot: { kind: 'varz', body: '{"server_id":"N"}' } },
    reason: 'manual',
    profiles,
    cpuDurationMs: 1_000,
  };
}

async function skipped(m: Metrics, server: string, reason: string): Promise<number> {
  const v = (await m.capturesSkipped.get()).values.find((x) => x.labels['server'] === server && x.labels['reason'] === reason);
  return v?.value ?? 0;
}

describe('Capturer admission', () => {
  let t: ReturnType<typeof setup>;
  beforeEach(async () => {
    t = setup();
    await t.store.init();
  });

  it('writes an incident with every requested profile', async () => {
    const r = t.capturer.submit(request('a', ['allocs', 'heap']));
    assert.equal(r.accepted, true);
    if (!r.accepted) return;
    const res = await r.done;
    assert.equal(res.manifest.status, 'ok');
    assert.deepEqual(res.manifest.files, ['allocs.pb.gz', 'heap.pb.gz', 'varz.json']);
    assert.equal(res.id, r.id);
    assert.deepEqual(readFileSync(join(res.path ?? '', 'allocs.pb.gz')), PROFILE);
  });

  it('frees the server once its profiles are taken: a capture asked while the first incident is being written is admitted', async () => {
    // Hold the first incident's commit (its files written, the server no longer asked for anything).
    let reached!: () => void;
    const committing = new Promise<void>((r) => (reached = r));
    let releaseCommit!: () => void;
    const held = new Promise<void>((r) => (releaseCommit = r));
    const begin = t.store.begin.bind(t.store);
    let n = 0;
    t.store.begin = async (...args) => {
      const w = await begin(...args);
      if (n++ === 0) {
        const commit = w.commit.bind(w);
        w.commit = async (m) => {
          reached();
          await held;
          return commit(m);
        };
      }
      return w;
    };
    const first = t.capturer.submit(request('a'));
    assert.equal(first.accepted, true);
    await committing;
    const second = t.capturer.submit(request('a'));
    assert.equal(second.accepted, true, JSON.stringify(second));
    if (!first.accepted || !second.accepted) return;
    assert.equal((await second.done).manifest.status, 'ok');
    releaseCommit();
    const a = await first.done;
    assert.equal(a.manifest.status, 'ok');
    assert.notEqual(a.id, (await second.done).id);
    // Shutdown still waits for an incident being written.
    await t.capturer.stop(1_000);
  });

  it('refuses a second incident for a server that is being captured (busy)', async () => {
    t.pprof.hold = true;
    const first = t.capturer.submit(request('a'));
    const second = t.capturer.submit(request('a'));
    assert.equal(first.accepted, true);
    assert.deepEqual(second, { accepted: false, reason: 'busy', message: 'server a is already being captured' });
    assert.equal(await skipped(t.metrics, 'a', 'busy'), 1);
    t.pprof.release();
    if (first.accepted) await first.done;
    assert.equal(t.capturer.submit(request('a')).accepted, true, 'admitted again once the first is done');
  });

  it('honours capture.limit over a sliding window', async () => {
    const done: Promise<unknown>[] = [];
    for (const s of ['a', 'b', 'c']) {
      const r = t.capturer.submit(request(s));
      assert.equal(r.accepted, true);
      if (r.accepted) done.push(r.done);
    }
    const refused = t.capturer.submit(request('d'));
    assert.deepEqual(refused, { accepted: false, reason: 'limit', message: 'capture.limit reached: 3 incidents in 3600s' });
    assert.equal(await skipped(t.metrics, 'd', 'limit'), 1);
    assert.equal(t.capturer.remaining(), 0);
    await Promise.all(done);
    t.clock.t += 3_600_001;
    assert.equal(t.capturer.remaining(), 3);
    assert.equal(t.capturer.submit(request('d')).accepted, true);
  });

  it('keeps at most max_concurrent profiles in flight across servers', async () => {
    t = setup({ maxConcurrent: 2, limit: { count: 100, windowMs: 1_000 } });
    await t.store.init();
    t.pprof.hold = true;
    const runs = ['a', 'b', 'c', 'd'].map((s) => t.capturer.submit(request(s, ['allocs', 'heap', 'goroutine'])));
    await t.pprof.held(2);
    assert.equal(t.pprof.inFlight, 2);
    // Release in waves, each time the next requests are held, until all 12 profiles went through. Every
    // request is held, so any overlap beyond max_concurrent would show in maxInFlight.
    let released = 0;
    while (released < 12) {
      await t.pprof.held();
      released += t.pprof.releaseHeld();
    }
    assert.equal(released, 12);
    t.pprof.release();
    const results = await Promise.all(runs.map((r) => (r.accepted ? r.done : undefined)));
    assert.equal(t.pprof.maxInFlight, 2);
    assert.ok(results.every((r) => r?.manifest.status === 'ok'));
  });

  it('skips with reason unsupported when no path can serve any profile', async () => {
    const r = t.capturer.submit(request('a', ['cpu'], null));
    assert.deepEqual(r, { accepted: false, reason: 'unsupported', message: 'no way to capture from a: cpu: the server has no prof_url' });
    assert.equal(await skipped(t.metrics, 'a', 'unsupported'), 1);
  });

  it('warns once about a server it cannot capture from, and again after the server was forgotten and came back', () => {
    const lines: Record<string, unknown>[] = [];
    const c = setup({}, lines).capturer;
    const warned = (): number => lines.filter((l) => String(l['msg']).startsWith('cannot capture from this server: ')).length;
    c.submit(request('a', ['cpu'], null));
    c.submit(request('a', ['cpu'], null));
    assert.equal(warned(), 1);
    c.forget('http://a:8222');
    c.submit(request('a', ['cpu'], null));
    assert.equal(warned(), 2);
  });

  it('remembers the last incident admitted per server until the server is forgotten', async () => {
    const c = setup().capturer;
    const r = c.submit({ ...request('a', ['allocs']), reason: 'trigger', trigger: { name: 'hot', metric: 'cpu', value: 90, above: 80, for_ms: 0 } });
    assert.ok(r.accepted);
    assert.deepEqual(c.recentIncident('http://a:8222'), { id: r.id, at: Date.parse('2026-11-26T15:30:00Z'), reason: 'trigger', profiles: ['allocs'], triggers: ['hot'] });
    c.forget('http://a:8222');
    assert.equal(c.recentIncident('http://a:8222'), undefined);
    await r.done;
  });

  it('retries a busy CPU profiler with backoff, then captures', async () => {
    t.pprof.busyTimes = 3;
    const r = t.capturer.submit(request('a', ['cpu']));
    assert.ok(r.accepted);
    const res = await r.done;
    assert.equal(res.manifest.profiles[0]?.error, null);
    assert.deepEqual(t.pprof.calls, ['cpu', 'cpu', 'cpu', 'cpu']);
  });

  it('gives up on a profiler that stays busy, with a clear error and a bounded number of attempts', async () => {
    t.pprof.busyTimes = 1_000;
    const r = t.capturer.submit(request('a', ['cpu']));
    assert.ok(r.accepted);
    const res = await r.done;
    const err = res.manifest.profiles[0]?.error ?? '';
    // cpu 1 s + timeout 2 s of retries, backoff 250 ms doubling to 2 s: 250+500+1000 < 3000, then 2000 is past it.
    assert.equal(err, 'cpu profiling already in use (gave up after 4 attempts: another client holds the CPU profiler)');
    assert.equal(t.pprof.calls.length, 4);
    assert.equal(res.manifest.status, 'failed');
  });
});
