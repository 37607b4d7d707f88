/**
 * The poller's schedule with a fake clock and a fake varz client: fixed rate, overruns skipped rather than
 * bunched, servers added and removed while running, stop, and exceptions of the flow contained. No sleeps.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { Canceller } from '../../../src/cancel.js';
import type { ServerConfig } from '../../../src/config/types.js';
import { PollError } from '../../../src/errors.js';
import { HttpPoller, type PollResult } from '../../../src/watch/poller.js';
import type { VarzFetchOptions, VarzReading } from '../../../src/watch/varz.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const A = 'http://a:8222';
const B = 'http://b:8222';

function server(url: string, name?: string): ServerConfig {
  return { url, name, profUrl: undefined, headers: {}, basicAuth: undefined, bearerToken: undefined, tls: undefined };
}

function reading(url: string): VarzReading {
  return {
    kind: 'varz',
    body: new Uint8Array(),
    varz: { serverId: `id-${url}`, serverName: url, cluster: undefined, tags: [], version: '2.10.27', cpu: 1, mem: 1, cores: 1, gomaxprocs: undefined, gomemlimit: undefined },
  };
}

interface Call {
  url: string;
  name: string | undefined;
  /** Monotonic time the fetch started. */
  at: number;
  cancel: Canceller;
  answer(): void;
  fail(err: unknown): void;
}

/** Answers at once (`auto`), or holds each fetch until the test answers it. Aborts like the real client. */
class FakeVarz {
  readonly calls: Call[] = [];
  auto = true;
  constructor(readonly clock: FakeClock) {}

  fetch(s: ServerConfig, opts: VarzFetchOptions): Promise<VarzReading> {
    return new Promise((resolve, reject) => {
      const cancel = opts.cancel as Canceller;
      const call: Call = { url: s.url, name: s.name, at: this.clock.mono, cancel, answer: () => resolve(reading(s.url)), fail: reject };
      this.calls.push(call);
      cancel.once('abort', () => reject(new PollError('aborted', 'aborted', { url: s.url })));
      if (this.auto) call.answer();
    });
  }

  times(url = A): number[] {
    return this.calls.filter((c) => c.url === url).map((c) => c.at);
  }
}

/** Batch capacity 1 unless the test asks (`batchCapacity: undefined` for the default): most schedule tests watch how a few servers are spread. */
function setup(o: { intervalMs?: number; batchesPerInterval?: number; batchCapacity?: number | undefined; onResult?: (r: PollResult) => void; onOverrun?: (key: string) => void } = {}) {
  const clock = new FakeClock();
  const client = new FakeVarz(clock);
  const results: PollResult[] = [];
  const overruns: string[] = [];
  const logs: { msg: string; err?: { message: string } }[] = [];
  let errors = 0;
  const log = pino({ level: 'error' }, { write: (line: string) => void logs.push(JSON.parse(line) as (typeof logs)[number]) });
  const poller = new HttpPoller({
    client,
    intervalMs: o.intervalMs ?? 1_000,
    timeoutMs: 500,
    maxBodyBytes: 1 << 20,
    onResult: (r) => {
      results.push(r);
      o.onResult?.(r);
    },
    onOverrun: (key) => {
      overruns.push(key);
      o.onOverrun?.(key);
    },
    log,
    onError: () => errors++,
    clock,
    batchesPerInterval: o.batchesPerInterval,
    batchCapacity: 'batchCapacity' in o ? o.batchCapacity : 1,
  });
  return { clock, client, results, overruns, logs, poller, errors: () => errors };
}

describe('HttpPoller schedule (fake clock)', () => {
  it('polls at once on start, then at a fixed rate, with no lateness', async () => {
    const t = setup();
    t.poller.setServers([server(A)]);
    const wall0 = t.clock.wall;
    t.poller.start();
    await t.clock.advance(3_000);
    assert.deepEqual(t.client.times(), [0, 1_000, 2_000, 3_000]);
    assert.deepEqual(t.results.map((r) => r.at - wall0), [0, 1_000, 2_000, 3_000]);
    assert.deepEqual(t.results.map((r) => r.at - r.scheduledAt), [0, 0, 0, 0]);
    assert.ok(t.results.every((r) => r.ok && r.key === A && r.durationMs === 0));
    await t.poller.stop();
  });

  it('keeps the rate when a poll takes part of the interval (fixed rate, not fixed delay)', async () => {
    const t = setup();
    t.client.auto = false;
    t.poller.setServers([server(A)]);
    t.poller.start();
    for (let i = 0; i < 3; i++) {
      await t.clock.advance(i === 0 ? 0 : 700);
      await t.clock.advance(300);
      t.client.calls[i]?.answer();
    }
    await t.clock.advance(0);
    assert.deepEqual(t.client.times(), [0, 1_000, 2_000]);
    assert.deepEqual(t.results.map((r) => r.durationMs), [300, 300, 300]);
    await t.poller.stop();
  });

  it('skips the ticks a slow poll overran, reports each overrun, and does not bunch polls afterwards', async () => {
    const t = setup();
    t.client.auto = false;
    t.poller.setServers([server(A)]);
    t.poller.start();
    await t.clock.advance(2_500);
    assert.deepEqual(t.overruns, [A, A], 'ticks at 1000 and 2000 found the poll still running');
    t.client.calls[0]?.answer();
    await t.clock.advance(0);
    assert.equal(t.results.length, 1);
    assert.equal(t.results[0]?.durationMs, 2_500);
    assert.deepEqual(t.client.times(), [0], 'no catch-up poll when the slow one ends');
    await t.clock.advance(500);
    assert.deepEqual(t.client.times(), [0, 3_000], 'the next poll keeps the schedule');
    await t.poller.stop();
  });

  it('after the event loop was blocked, polls once (late, with its lateness), then keeps its phase', async () => {
    const t = setup();
    t.poller.setServers([server(A)]);
    t.poller.start();
    await t.clock.advance(0);
    // Time passes with no timer running (a blocked event loop): the 1000 tick is 2500 ms late, the 2000 and
    // 3000 ticks are skipped (no catch-up burst), and the schedule goes on at its own phase (4000, 5000), so the
    // batches stay spread over the interval after a block.
    t.clock.block(3_500);
    await t.clock.advance(2_000);
    assert.deepEqual(t.client.times(), [0, 3_500, 4_000, 5_000]);
    assert.deepEqual(t.results.map((r) => r.at - r.scheduledAt), [0, 2_500, 0, 0]);
    await t.poller.stop();
  });

  it('a wall-clock step (backwards by an hour) neither stalls nor bunches polls', async () => {
    const t = setup();
    t.poller.setServers([server(A)]);
    t.poller.start();
    await t.clock.advance(500);
    t.clock.stepWall(-3_600_000);
    await t.clock.advance(1_500);
    t.clock.stepWall(+7_200_000);
    await t.clock.advance(1_000);
    assert.deepEqual(t.client.times(), [0, 1_000, 2_000, 3_000]);
    assert.deepEqual(t.results.map((r) => r.at - r.scheduledAt), [0, 0, 0, 0]);
    await t.poller.stop();
  });

  it('setServers while running: an added server joins the least-loaded batch and is first polled at its next wake-up; a removed one is cancelled and never reported', async () => {
    const t = setup();
    t.poller.setServers([server(A)]);
    t.poller.start();
    await t.clock.advance(1_200);
    t.client.auto = false;
    assert.deepEqual(t.poller.setServers([server(A), server(B)]), { added: [B], removed: [] });
    await t.clock.advance(0);
    assert.deepEqual(t.client.times(B), [], 'B is in the batch half an interval after A: first polled at 1500');
    await t.clock.advance(300);
    assert.deepEqual(t.client.times(B), [1_500]);
    await t.clock.advance(500); // A's poll at 2000 is now in flight
    const inFlight = t.client.calls.at(-1);
    assert.equal(inFlight?.url, A);
    assert.deepEqual(t.poller.setServers([server(B)]), { added: [], removed: [A] });
    assert.equal(inFlight?.cancel.aborted, true, "the removed server's poll in flight is cancelled");
    inFlight?.answer(); // too late: already aborted
    t.client.auto = true;
    t.client.calls.find((c) => c.url === B)?.answer();
    await t.clock.advance(2_000);
    assert.deepEqual(t.client.times(A), [0, 1_000, 2_000]);
    assert.deepEqual(t.client.times(B), [1_500, 2_500, 3_500]);
    assert.deepEqual(t.results.filter((r) => r.key === A).length, 2, 'nothing reported for A after its removal');
    assert.deepEqual(t.poller.keys, [B]);
    await t.poller.stop();
  });

  it('setServers with a changed server of the same URL keeps its schedule and uses the new settings', async () => {
    const t = setup();
    t.poller.setServers([server(A, 'old')]);
    t.poller.start();
    await t.clock.advance(500);
    assert.deepEqual(t.poller.setServers([server(A, 'new')]), { added: [], removed: [] });
    await t.clock.advance(500);
    assert.deepEqual(t.client.calls.map((c) => [c.at, c.name]), [[0, 'old'], [1_000, 'new']]);
    await t.poller.stop();
  });

  it('stop() cancels polls in flight, reports nothing more, leaves no timer, and is idempotent; start() resumes', async () => {
    const t = setup();
    t.client.auto = false;
    t.poller.setServers([server(A), server(B)]);
    t.poller.start();
    await t.clock.advance(500);
    assert.deepEqual(t.client.calls.map((c) => [c.url, c.at]), [[A, 0], [B, 500]]);
    await t.poller.stop();
    assert.ok(t.client.calls.every((c) => c.cancel.aborted));
    assert.equal(t.clock.pending, 0);
    await t.poller.stop();
    await t.clock.advance(5_000);
    assert.equal(t.client.calls.length, 2);
    assert.deepEqual(t.results, []);
    t.client.auto = true;
    t.poller.start();
    await t.clock.advance(500);
    assert.deepEqual(t.client.calls.slice(2).map((c) => [c.url, c.at]), [[A, 5_500], [B, 6_000]]);
    assert.equal(t.results.length, 2);
    await t.poller.stop();
  });

  it('reports failed polls; an error that is not a PollError becomes a network PollError', async () => {
    const t = setup();
    t.client.auto = false;
    t.poller.setServers([server(A)]);
    t.poller.start();
    await t.clock.advance(0);
    t.client.calls[0]?.fail(new PollError('no answer within 500 ms', 'timeout', { url: A }));
    await t.clock.advance(1_000);
    t.client.calls[1]?.fail(new Error('boom'));
    await t.clock.advance(0);
    const [r0, r1] = t.results;
    assert.ok(r0 && !r0.ok && r0.error.kind === 'timeout' && r0.error.message === 'no answer within 500 ms');
    assert.ok(r1 && !r1.ok && r1.error.kind === 'network' && r1.error.message === 'Error: boom');
    await t.poller.stop();
  });
});

describe('HttpPoller contains exceptions of the flow', () => {
  it('onResult throwing on every poll: polling goes on, each throw is counted, the error is logged once', async () => {
    const t = setup({
      onResult: () => {
        throw new TypeError('flow bug');
      },
    });
    t.poller.setServers([server(A), server(B)]);
    t.poller.start();
    await t.clock.advance(3_500);
    assert.deepEqual(t.client.times(A), [0, 1_000, 2_000, 3_000]);
    assert.deepEqual(t.client.times(B), [500, 1_500, 2_500, 3_500]);
    assert.equal(t.errors(), 8);
    assert.equal(t.logs.length, 1);
    assert.equal(
      t.logs[0]?.msg,
      'internal error while handling a poll result (a bug; logged once per kind, counted in nats_autoprof_internal_errors_total); watching continues',
    );
    assert.equal(t.logs[0]?.err?.message, 'flow bug');
    await t.poller.stop();
  });

  it('logs each kind of error once, and stops logging new kinds after 32', async () => {
    let n = 0;
    const t = setup({
      onResult: () => {
        throw new Error(`kind ${n++ % 40}`);
      },
    });
    t.poller.setServers([server(A)]);
    t.poller.start();
    await t.clock.advance(79_000);
    assert.equal(t.errors(), 80);
    assert.equal(t.logs.length, 33);
    assert.deepEqual(new Set(t.logs.slice(0, 32).map((l) => l.err?.message)).size, 32);
    assert.equal(t.logs[32]?.msg, 'more than 32 kinds of error while handling a poll result; further kinds are only counted');
    await t.poller.stop();
  });

  it('onOverrun throwing is contained the same way', async () => {
    const t = setup({
      onOverrun: () => {
        throw new Error('overrun bug');
      },
    });
    t.client.auto = false;
    t.poller.setServers([server(A)]);
    t.poller.start();
    await t.clock.advance(2_000);
    t.client.calls[0]?.answer();
    await t.clock.advance(1_000);
    assert.deepEqual(t.client.times(), [0, 3_000]);
    assert.equal(t.errors(), 2);
    assert.equal(t.logs.length, 1);
    await t.poller.stop();
  });
});

const urls = (n: number, from = 0): string[] => Array.from({ length: n }, (_, i) => `http://s${from + i}:8222`);

/** Polls per monotonic start time. */
function byTime(client: FakeVarz): Map<number, number> {
  const m = new Map<number, number>();
  for (const c of client.calls) m.set(c.at, (m.get(c.at) ?? 0) + 1);
  return m;
}

describe('HttpPoller batches: servers spread over a few wake-ups per interval', () => {
  it('spreads N servers evenly over the interval, one timer wake-up per batch, each server at a fixed rate', async () => {
    const t = setup({ intervalMs: 1_600 });
    t.poller.setServers(urls(64).map((u) => server(u)));
    assert.deepEqual(t.poller.batchSizes, Array<number>(16).fill(4));
    t.poller.start();
    await t.clock.advance(10 * 1_600 - 1);
    // 16 batches 100 ms apart, 4 polls each, in every interval: no burst of 64, no gap.
    const starts = byTime(t.client);
    assert.deepEqual([...starts.keys()], Array.from({ length: 160 }, (_, i) => i * 100));
    assert.ok([...starts.values()].every((n) => n === 4));
    // One timer per batch wake-up (160 wake-ups, plus the 16 armed for the next interval), not one per poll (640).
    assert.equal(t.client.calls.length, 640);
    assert.equal(t.clock.armed, 160 + 16);
    for (const u of urls(64)) {
      const times = t.client.times(u);
      assert.equal(times.length, 10);
      assert.ok(times.every((x, i) => i === 0 || x - (times[i - 1] as number) === 1_600), `${u} at a fixed rate: ${times.join(',')}`);
    }
    assert.ok(t.results.every((r) => r.at === r.scheduledAt), 'no lateness');
    await t.poller.stop();
    assert.equal(t.clock.pending, 0);
  });

  it('spreads a few servers evenly too (each added batch halves the largest gap), with timers only for batches in use', async () => {
    const t = setup();
    t.poller.setServers(urls(4).map((u) => server(u)));
    t.poller.start();
    assert.equal(t.clock.pending, 4);
    await t.clock.advance(999);
    assert.deepEqual(t.client.calls.map((c) => c.at), [0, 250, 500, 750]);
    assert.deepEqual(urls(4).map((u) => t.client.times(u)), [[0], [500], [250], [750]]);
    await t.poller.stop();
  });

  it('skip-not-bunch per server: a slow server in a batch is skipped at its ticks while the others of its batch are polled on time', async () => {
    const t = setup({ batchesPerInterval: 1 });
    const [slow, fast] = urls(2);
    t.poller.setServers([server(slow as string), server(fast as string)]);
    t.poller.start();
    t.client.auto = false;
    await t.clock.advance(0);
    t.client.calls.find((c) => c.url === fast)?.answer();
    t.client.auto = true;
    await t.clock.advance(2_500);
    assert.deepEqual(t.client.times(fast), [0, 1_000, 2_000]);
    assert.deepEqual(t.client.times(slow), [0]);
    assert.deepEqual(t.overruns, [slow, slow]);
    t.client.calls.find((c) => c.url === slow)?.answer();
    await t.clock.advance(0);
    assert.deepEqual(t.client.times(slow), [0], 'no catch-up poll when the slow one ends');
    await t.clock.advance(500);
    assert.deepEqual(t.client.times(slow), [0, 3_000]);
    await t.poller.stop();
  });

  it('a late batch wake-up polls each member once, with the batch lateness', async () => {
    const t = setup({ intervalMs: 1_600 });
    t.poller.setServers(urls(32).map((u) => server(u)));
    t.poller.start();
    await t.clock.advance(0);
    t.clock.block(1_650); // the batches due at 100..1600 are overdue
    await t.clock.advance(0);
    // Each overdue batch polled its 2 members once; none was polled twice for the intervals it missed.
    assert.equal(t.client.calls.length, 2 + 32);
    const late = t.results.slice(2).map((r) => r.at - r.scheduledAt);
    assert.deepEqual(late.slice(0, 2), [1_550, 1_550], 'the batch due at 100');
    assert.deepEqual(late.slice(-4), [150, 150, 50, 50], 'the batch due at 1500, then the batch at 0 again, due at 1600');
    await t.clock.advance(1_600 - 50);
    assert.equal(t.client.calls.length, 2 + 32 + 32, 'then one poll per server per interval again');
    await t.poller.stop();
  });

  it('a new server joins the least-loaded batch; removing servers frees their places, and an emptied batch disarms its timer', async () => {
    const t = setup({ intervalMs: 1_600 });
    const all = urls(32);
    t.poller.setServers(all.map((u) => server(u)));
    t.poller.start();
    await t.clock.advance(0);
    assert.deepEqual(t.poller.batchSizes, Array<number>(16).fill(2));
    // Remove both members of the batch at 800 (s1 and s17: the second server added went to the batch half way).
    const gone = [all[1], all[17]] as string[];
    const kept = all.filter((u) => !gone.includes(u));
    assert.deepEqual(t.poller.setServers(kept.map((u) => server(u))).removed, gone);
    assert.equal(t.poller.batchSizes[8], 0);
    assert.equal(t.clock.pending, 15, 'no timer for the emptied batch');
    await t.clock.advance(1_599);
    assert.equal(byTime(t.client).get(800), undefined);
    // Three new servers: the emptied batch (at 800) is the least loaded until it holds 2 again; the third goes
    // to the first batch in fill order among the equally loaded ones (the batch at 0), at its next wake-up.
    const fresh = urls(3, 100);
    t.poller.setServers([...kept, ...fresh].map((u) => server(u)));
    assert.deepEqual(t.poller.batchSizes, [3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
    await t.clock.advance(1_600);
    assert.deepEqual(fresh.map((u) => t.client.times(u)), [[1_600 + 800], [1_600 + 800], [1_600]]);
    assert.ok(gone.every((u) => t.client.times(u).length === 0), 'removed before their batch woke: never polled');
    await t.poller.stop();
  });

  it('rejects a batch count that is not a power of two, and a capacity below 1', () => {
    assert.throws(() => setup({ batchesPerInterval: 12 }), { name: 'RangeError', message: 'batchesPerInterval must be a power of two, not 12' });
    assert.throws(() => setup({ batchCapacity: 0 }), { name: 'RangeError', message: 'batchCapacity must be a positive integer, not 0' });
  });

  it('a small fleet fills one batch before opening the next (default capacity 32): 10 servers are one wake-up per interval', async () => {
    const t = setup({ batchCapacity: undefined });
    t.poller.setServers(urls(10).map((u) => server(u)));
    assert.deepEqual(t.poller.batchSizes, [10, ...Array<number>(15).fill(0)]);
    t.poller.start();
    assert.equal(t.clock.pending, 1, 'one timer');
    await t.clock.advance(5_000 - 1);
    assert.deepEqual([...byTime(t.client).entries()], [0, 1_000, 2_000, 3_000, 4_000].map((at) => [at, 10]));
    assert.equal(t.clock.armed, 5 + 1, 'one timer per interval, not one per poll');
    for (const u of urls(10)) assert.deepEqual(t.client.times(u), [0, 1_000, 2_000, 3_000, 4_000]);
    await t.poller.stop();
  });

  it('past 32 servers the next batch opens half an interval later; past 16 × 32 every server joins the least-loaded batch', async () => {
    const t = setup({ batchCapacity: undefined });
    t.poller.setServers(urls(40).map((u) => server(u)));
    assert.deepEqual(t.poller.batchSizes, [32, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0]);
    t.poller.start();
    await t.clock.advance(999);
    assert.deepEqual([...byTime(t.client).entries()], [[0, 32], [500, 8]]);
    await t.poller.stop();
    // Removing a server of the full batch reopens it; the new server fills that gap first.
    const kept = urls(40).slice(1);
    t.poller.setServers(kept.map((u) => server(u)));
    t.poller.setServers([...kept, ...urls(1, 500)].map((u) => server(u)));
    assert.deepEqual(t.poller.batchSizes, [32, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0]);

    const big = setup({ batchCapacity: undefined });
    big.poller.setServers(urls(5_000).map((u) => server(u)));
    const sizes = big.poller.batchSizes;
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `5000 servers spread evenly: ${sizes.join(',')}`);
  });
});
