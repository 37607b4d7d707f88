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
    varz: { serverId: `id-${url}`, serverName: url, cluster: undefined, tags: [], version: '2.10.27', cpu: 1, mem: 1, cores: 1, gomaxprocs: undefined, gomemlimit: undefined, now: undefined },
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

function setup(o: { intervalMs?: number; onResult?: (r: PollResult) => void; onOverrun?: (key: string) => void } = {}) {
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

  it('after the event loop was blocked, polls once (late, with its lateness) and schedules from now', async () => {
    const t = setup();
    t.poller.setServers([server(A)]);
    t.poller.start();
    await t.clock.advance(0);
    // Time passes with no timer running (a blocked event loop): the 1000 tick is 2500 ms late.
    t.clock.block(3_500);
    await t.clock.advance(2_000);
    assert.deepEqual(t.client.times(), [0, 3_500, 4_500, 5_500]);
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

  it('setServers while running: an added server is polled at once and on its own schedule; a removed one is cancelled and never reported', async () => {
    const t = setup();
    t.poller.setServers([server(A)]);
    t.poller.start();
    await t.clock.advance(1_200);
    t.client.auto = false;
    assert.deepEqual(t.poller.setServers([server(A), server(B)]), { added: [B], removed: [] });
    await t.clock.advance(0);
    assert.deepEqual(t.client.times(B), [1_200]);
    await t.clock.advance(800); // A's poll at 2000 is now in flight
    const inFlight = t.client.calls.at(-1);
    assert.equal(inFlight?.url, A);
    assert.deepEqual(t.poller.setServers([server(B)]), { added: [], removed: [A] });
    assert.equal(inFlight?.cancel.aborted, true, "the removed server's poll in flight is cancelled");
    inFlight?.answer(); // too late: already aborted
    t.client.auto = true;
    t.client.calls.find((c) => c.url === B)?.answer();
    await t.clock.advance(2_000);
    assert.deepEqual(t.client.times(A), [0, 1_000, 2_000]);
    assert.deepEqual(t.client.times(B), [1_200, 2_200, 3_200]);
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
    await t.clock.advance(0);
    assert.equal(t.client.calls.length, 2);
    await t.poller.stop();
    assert.ok(t.client.calls.every((c) => c.cancel.aborted));
    assert.equal(t.clock.pending, 0);
    await t.poller.stop();
    await t.clock.advance(5_000);
    assert.equal(t.client.calls.length, 2);
    assert.deepEqual(t.results, []);
    t.client.auto = true;
    t.poller.start();
    await t.clock.advance(0);
    assert.deepEqual(t.client.calls.slice(2).map((c) => [c.url, c.at]), [[A, 5_000], [B, 5_000]]);
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
    await t.clock.advance(3_000);
    assert.deepEqual(t.client.times(A), [0, 1_000, 2_000, 3_000]);
    assert.deepEqual(t.client.times(B), [0, 1_000, 2_000, 3_000]);
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
