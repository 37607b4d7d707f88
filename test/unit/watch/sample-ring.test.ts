/**
 * The per-server sample rings (src/watch/sample-ring.ts) with a fake clock: bucketing by max, wrap-around,
 * gaps, a clock stepped back, a history change on reload, and (through the flow) a ring made for HTTP and
 * discovered servers alike and freed when its server is no longer watched.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfigText } from '../../../src/config/load.js';
import { PollError } from '../../../src/errors.js';
import { SAMPLE_BUCKETS, SampleRing, SampleRings } from '../../../src/watch/sample-ring.js';
import type { Varz } from '../../../src/watch/varz.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { flowRig } from '../../helpers/flow.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;

/** A fake clock whose time starts on a bucket boundary (5s buckets), so that tests can say which bucket a sample is in. */
function clockAtBoundary(): FakeClock {
  const c = new FakeClock();
  c.wall -= c.wall % (5 * SECOND);
  return c;
}

describe('SampleRing', () => {
  it('keeps the highest cpu and mem of each bucket and the time of its latest sample', async () => {
    const clock = clockAtBoundary();
    const ring = new SampleRing(5 * SECOND, 4);
    const t0 = clock.now();
    ring.record(clock.now(), 10, 300);
    await clock.advance(1 * SECOND);
    ring.record(clock.now(), 50, 100);
    await clock.advance(2 * SECOND);
    ring.record(clock.now(), 20, 200);
    await clock.advance(2 * SECOND); // the next bucket
    ring.record(clock.now(), 5, 50);
    assert.deepEqual(ring.points(), [
      { at: t0 + 3 * SECOND, cpu: 50, mem: 300 },
      { at: t0 + 5 * SECOND, cpu: 5, mem: 50 },
    ]);
  });

  it('wraps around: after more buckets than it has, only the newest remain, oldest first', async () => {
    const clock = clockAtBoundary();
    const ring = new SampleRing(5 * SECOND);
    const start = clock.now();
    for (let i = 0; i < 300; i++) {
      ring.record(clock.now(), i, i * 1000);
      await clock.advance(5 * SECOND);
    }
    const points = ring.points();
    assert.equal(points.length, SAMPLE_BUCKETS);
    assert.deepEqual(points[0], { at: start + 180 * 5 * SECOND, cpu: 180, mem: 180_000 });
    assert.deepEqual(points.at(-1), { at: start + 299 * 5 * SECOND, cpu: 299, mem: 299_000 });
    assert.deepEqual(
      points.map((p) => p.cpu),
      Array.from({ length: SAMPLE_BUCKETS }, (_, i) => 180 + i),
    );
  });

  it('a gap leaves no stale bucket from the previous turn of the ring', async () => {
    const clock = clockAtBoundary();
    const ring = new SampleRing(5 * SECOND, 10);
    for (let i = 0; i < 10; i++) {
      ring.record(clock.now(), 1, 1);
      await clock.advance(5 * SECOND);
    }
    // Four polls missed (server down): the slots of those buckets held the samples of 10 buckets ago.
    await clock.advance(4 * 5 * SECOND);
    ring.record(clock.now(), 99, 99);
    const points = ring.points();
    assert.equal(points.length, 10 - 4 - 1 + 1, 'the 5 newest of the old samples and the new one');
    assert.deepEqual(points.at(-1), { at: clock.now(), cpu: 99, mem: 99 });
    // A gap longer than the whole ring empties it.
    await clock.advance(60 * SECOND);
    ring.record(clock.now(), 7, 7);
    assert.deepEqual(ring.points(), [{ at: clock.now(), cpu: 7, mem: 7 }]);
  });

  it('a late sample goes into its own bucket; a clock stepped back by more than the ring starts it over', async () => {
    const clock = clockAtBoundary();
    const ring = new SampleRing(5 * SECOND, 10);
    const t0 = clock.now();
    ring.record(t0, 1, 1);
    ring.record(t0 + 10 * SECOND, 3, 3);
    ring.record(t0 + 5 * SECOND, 2, 2); // out of order, within the ring
    assert.deepEqual(
      ring.points().map((p) => p.cpu),
      [1, 2, 3],
    );
    clock.stepWall(-10 * MINUTE);
    ring.record(clock.now(), 4, 4);
    assert.deepEqual(ring.points(), [{ at: clock.now(), cpu: 4, mem: 4 }]);
  });

  it('rebucketing to coarser buckets keeps the highest values; to finer ones keeps the points the ring still spans', () => {
    const ring = new SampleRing(5 * SECOND, 12);
    const t0 = 1_800_000_000_000; // a multiple of 20s
    for (let i = 0; i < 12; i++) ring.record(t0 + i * 5 * SECOND, i, 100 - i);
    ring.rebucket(20 * SECOND);
    assert.deepEqual(ring.points(), [
      { at: t0 + 15 * SECOND, cpu: 3, mem: 100 },
      { at: t0 + 35 * SECOND, cpu: 7, mem: 96 },
      { at: t0 + 55 * SECOND, cpu: 11, mem: 92 },
    ]);
    // Back to finer buckets: each point lands in its own; the ring spans 12 of them, so all three fit.
    ring.rebucket(5 * SECOND);
    assert.deepEqual(
      ring.points().map((p) => p.at),
      [t0 + 15 * SECOND, t0 + 35 * SECOND, t0 + 55 * SECOND],
    );
    // Finer still: the ring spans 12s, so only what the last 12s hold is kept (SampleRings shrinks the history with it).
    ring.rebucket(1 * SECOND);
    assert.deepEqual(ring.points(), [{ at: t0 + 55 * SECOND, cpu: 11, mem: 92 }]);
  });

  it('holds 120 buckets of three float32 numbers: 1,440 bytes of data per server', () => {
    assert.equal(new SampleRing(5 * SECOND).dataBytes, SAMPLE_BUCKETS * 3 * 4);
    assert.equal(SAMPLE_BUCKETS * 3 * 4, 1440);
  });

  it('reads back what a chart needs from float32: times to the ms, cpu to 7 significant digits, mem as stored', () => {
    // A bucket width that is not a whole number of ms (10s of history in 120 buckets), at today's epoch ms.
    const ring = new SampleRing(10_000 / 120);
    const at = Date.UTC(2026, 11, 4, 5, 30, 0, 123);
    ring.record(at, 12.34, 123_456_789);
    ring.record(at + 100, 1234.56, 8 * 1024 ** 3);
    assert.deepEqual(ring.points(), [
      // 123,456,789 is not a float32: the nearest one is 123,456,792; 8 GiB is.
      { at, cpu: 12.34, mem: 123_456_792 },
      { at: at + 100, cpu: 1234.56, mem: 8 * 1024 ** 3 },
    ]);
  });
});

describe('SampleRings', () => {
  it('buckets span history / 120 and a read returns the last history only', async () => {
    const clock = clockAtBoundary();
    const rings = new SampleRings({ historyMs: 10 * MINUTE });
    assert.equal(rings.bucketMs, 5 * SECOND);
    rings.record('a', clock.now(), 12.5, 1024);
    assert.deepEqual(rings.samples('a', clock.now()), [{ at: clock.now(), cpu: 12.5, mem: 1024 }]);
    assert.deepEqual(rings.samples('unknown', clock.now()), []);
    // The server stopped answering: its samples age out of the answer, though the ring still holds them.
    await clock.advance(10 * MINUTE + 1);
    assert.deepEqual(rings.samples('a', clock.now()), []);
  });

  it('a history change re-buckets every ring (reload)', async () => {
    const clock = clockAtBoundary();
    const rings = new SampleRings({ historyMs: 10 * MINUTE });
    for (let i = 0; i < 120; i++) {
      rings.record('a', clock.now(), i, i);
      rings.record('b', clock.now(), 2 * i, 2 * i);
      await clock.advance(5 * SECOND);
    }
    assert.equal(rings.samples('a', clock.now()).length, 120);
    rings.setHistory(20 * MINUTE);
    assert.equal(rings.historyMs, 20 * MINUTE);
    assert.equal(rings.bucketMs, 10 * SECOND);
    const a = rings.samples('a', clock.now());
    assert.equal(a.length, 60);
    assert.deepEqual(
      a.map((p) => p.cpu),
      Array.from({ length: 60 }, (_, i) => 2 * i + 1),
    );
    assert.equal(rings.samples('b', clock.now()).at(-1)?.cpu, 238);
    // Shorter: the answer is bounded by the new history.
    rings.setHistory(1 * MINUTE);
    assert.ok(rings.samples('a', clock.now()).every((p) => p.at >= clock.now() - MINUTE));
    assert.ok(rings.samples('a', clock.now()).length <= 6);
  });
});

describe('the flow feeds the rings', () => {
  const URL_A = 'http://127.0.0.1:8222';
  const varz = (name: string, cpu: number, mem: number): Varz => ({
    serverId: `N${name}`,
    serverName: name,
    cluster: undefined,
    tags: [],
    version: '2.10.27',
    cpu,
    mem,
    cores: 2,
    gomaxprocs: 2,
    gomemlimit: undefined,
  });

  function setup() {
    const config = parseConfigText(`servers: [ { name: a, url: "${URL_A}" } ]\nsystem_account: { url: "nats://127.0.0.1:4222", discover: true }\n`, 'test.yaml', {});
    const clock = clockAtBoundary();
    const samples = new SampleRings({ historyMs: config.ui.historyMs });
    const { flow, inventory } = flowRig(config, { clock, submit: () => ({ accepted: false, reason: 'limit', message: 'no' }), samples });
    inventory.setServers(config.servers);
    return { flow, inventory, samples, clock, config };
  }

  it('an HTTP poll and a discovery round each record a sample; a failed poll records none; a forgotten server frees its ring', async () => {
    const { flow, inventory, samples, clock, config } = setup();
    const at = clock.now();
    flow.onPoll({ key: URL_A, scheduledAt: at, at, durationMs: 1, ok: true, reading: { varz: varz('a', 12.5, 4096), body: new Uint8Array(2), kind: 'varz' } });
    flow.onDiscovery({
      ended: 'count',
      expected: 1,
      durationMs: 5,
      invalid: 0,
      selected: [{ varz: varz('d', 3, 2048), body: '{}', activeServers: undefined, host: undefined }],
    });
    assert.equal(samples.size, 2);
    assert.deepEqual(samples.samples(URL_A, clock.now()), [{ at, cpu: 12.5, mem: 4096 }]);
    assert.deepEqual(samples.samples('system_account:d', clock.now()), [{ at, cpu: 3, mem: 2048 }]);
    await clock.advance(5 * SECOND);
    flow.onPoll({ key: URL_A, scheduledAt: clock.now(), at: clock.now(), durationMs: 1, ok: false, error: new PollError('connection refused', 'network', { url: URL_A }) });
    assert.equal(samples.samples(URL_A, clock.now()).length, 1);
    // Removed from the config (a reload): the app hands the removed entries to flow.forget.
    for (const s of inventory.setServers([])) flow.forget(s);
    assert.equal(samples.size, 1);
    assert.deepEqual(samples.samples(URL_A, clock.now()), []);
    // A discovered server missing for forget_after is forgotten by the flow itself.
    flow.onDiscovery({ ended: 'stall', expected: 0, durationMs: 5, invalid: 0, selected: [] });
    assert.equal(samples.size, 1, 'missing from one round: still watched, its ring kept');
    await clock.advance(config.systemAccount?.forgetAfterMs ?? 0);
    flow.onDiscovery({ ended: 'stall', expected: 0, durationMs: 5, invalid: 0, selected: [] });
    assert.equal(inventory.size, 0);
    assert.equal(samples.size, 0);
  });
});
