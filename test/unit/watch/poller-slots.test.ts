import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Canceller } from '../../../src/cancel.js';
import type { ServerConfig } from '../../../src/config/types.js';
import { HttpPoller, Slots, type PollResult } from '../../../src/watch/poller.js';
import type { VarzFetchOptions, VarzReading } from '../../../src/watch/varz.js';
import { pino } from 'pino';

const silent = pino({ level: 'silent' });

const server = (i: number): ServerConfig => ({ url: `http://127.0.0.1:${10_000 + i}`, name: undefined, profUrl: undefined, headers: {}, basicAuth: undefined, bearerToken: undefined, tls: undefined });

describe('Slots', () => {
  it('grants at most max at once, then in FIFO order as slots are released', async () => {
    const s = new Slots(2);
    const c = new Canceller();
    assert.equal(await s.acquire(c), true);
    assert.equal(await s.acquire(c), true);
    const order: number[] = [];
    const third = s.acquire(c).then((ok) => order.push(3) && ok);
    const fourth = s.acquire(c).then((ok) => order.push(4) && ok);
    assert.equal(s.waiting, 2);
    s.release();
    assert.equal(await third, true);
    assert.deepEqual(order, [3]);
    s.release();
    assert.equal(await fourth, true);
    assert.deepEqual(order, [3, 4]);
    assert.equal(s.waiting, 0);
  });

  it('a cancelled wait resolves false, leaves the queue and takes no slot', async () => {
    const s = new Slots(1);
    assert.equal(await s.acquire(new Canceller()), true);
    const c = new Canceller();
    const waiting = s.acquire(c);
    c.cancel();
    assert.equal(await waiting, false);
    assert.equal(s.waiting, 0);
    assert.equal(c.listenerCount('abort'), 0);
    s.release();
    assert.equal(await s.acquire(new Canceller()), true);
    const aborted = new Canceller();
    aborted.cancel();
    assert.equal(await s.acquire(aborted), false);
  });

  it('rejects a bound below 1', () => {
    assert.throws(() => new Slots(0), { name: 'RangeError', message: 'maxInFlight must be a positive integer, not 0' });
  });
});

describe('HttpPoller with maxInFlight', () => {
  it('never has more than maxInFlight requests out, and a server waiting for a slot is polled (late), not failed', async () => {
    const n = 10;
    const max = 3;
    let inFlight = 0;
    let peak = 0;
    const pending: (() => void)[] = [];
    const timeouts: number[] = [];
    const results: PollResult[] = [];
    let allDone!: () => void;
    const done = new Promise<void>((r) => (allDone = r));
    const poller = new HttpPoller({
      client: {
        fetch: (_s: ServerConfig, o: VarzFetchOptions): Promise<VarzReading> => {
          timeouts.push(o.timeoutMs);
          inFlight++;
          peak = Math.max(peak, inFlight);
          return new Promise((resolve) => {
            pending.push(() => {
              inFlight--;
              resolve({ kind: 'varz', body: new Uint8Array(), varz: {} as VarzReading['varz'] });
            });
          });
        },
      },
      intervalMs: 60_000,
      timeoutMs: 1_000,
      maxBodyBytes: 1024,
      maxInFlight: max,
      // One batch: every server is due at the same instant, the worst case for the bound.
      batchesPerInterval: 1,
      log: silent,
      onResult: (r) => {
        results.push(r);
        if (results.length === n) allDone();
      },
    });
    poller.setServers(Array.from({ length: n }, (_, i) => server(i)));
    poller.start();
    // Answer the requests one at a time as they arrive; the limiter lets the next one through each time.
    while (results.length < n) {
      await new Promise<void>((r) => setImmediate(r));
      assert.ok(inFlight <= max, `in flight ${inFlight}`);
      pending.shift()?.();
    }
    await done;
    await poller.stop();
    assert.equal(peak, max);
    assert.equal(results.length, n);
    assert.ok(results.every((r) => r.ok));
    assert.deepEqual(new Set(results.map((r) => r.key)).size, n);
    assert.ok(timeouts.every((t) => t === 1_000));
  });

  it('stop() withdraws the polls still waiting for a slot', async () => {
    const results: PollResult[] = [];
    let started = 0;
    let release!: () => void;
    const first = new Promise<void>((r) => (release = r));
    const poller = new HttpPoller({
      client: {
        fetch: (_s: ServerConfig, o: VarzFetchOptions): Promise<VarzReading> => {
          started++;
          return new Promise((_resolve, reject) => o.cancel?.once('abort', () => reject(new Error('aborted'))));
        },
      },
      intervalMs: 60_000,
      timeoutMs: 1_000,
      maxBodyBytes: 1024,
      maxInFlight: 1,
      batchesPerInterval: 1,
      log: silent,
      onResult: (r) => results.push(r),
    });
    poller.setServers([server(1), server(2), server(3)]);
    poller.start();
    const wait = async (): Promise<void> => {
      while (started === 0) await new Promise<void>((r) => setImmediate(r));
      release();
    };
    await Promise.all([wait(), first]);
    await poller.stop();
    assert.equal(started, 1);
    assert.deepEqual(results, []);
  });
});
