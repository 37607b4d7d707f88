/**
 * No server reported down because of the daemon's own start (issue 19): the built daemon starts against
 * 1000 healthy simulated monitoring endpoints (bench/lib/varz-sim.ts, in its own process) and its first
 * round gives zero failed polls and no "server is down" line. The poller keeps at most poll.max_in_flight
 * (here 100) requests in flight; a server waiting for a slot is late, and its timeout only starts with its request, so the
 * timeout below needs to cover one request among 100, not the whole round, even on a loaded 2-core machine.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { VarzFleet } from '../../bench/lib/fleet-sim.js';
import { Daemon, removeTempDirs, startDaemon, waitFor } from '../helpers/daemon.js';

const N = 1000;

function sum(text: string, name: string, result: string): { total: number; series: number } {
  let total = 0;
  let series = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) || !line.includes(`result="${result}"`)) continue;
    total += Number(line.slice(line.lastIndexOf(' ') + 1));
    series++;
  }
  return { total, series };
}

describe(`a start with ${N} healthy servers`, () => {
  let fleet: VarzFleet;
  let daemon: Daemon;

  before(async () => {
    fleet = await VarzFleet.start(N);
    daemon = await startDaemon({
      config: `
http:
  listen: 127.0.0.1:{{PORT}}
poll:
  interval: 2s
  timeout: 1500ms
  max_in_flight: 100                 # not the default 128: proves the key reaches the poller
servers:
${fleet.urls.map((u) => `  - url: ${u}`).join('\n')}
storage:
  dir: {{DIR}}/profiles
`,
    });
  });
  after(async () => {
    await daemon?.stop();
    await fleet?.stop();
    removeTempDirs();
  });

  it('polls every server in the first round with no error and no "server is down" line', async () => {
    const text = await waitFor(
      async () => {
        const t = await daemon.metrics();
        // Every server answered or failed at least once (counted by series: on a loaded machine the first
        // batches' second round can start before the last batch's first poll).
        return sum(t, 'nats_autoprof_polls_total', 'ok').series + sum(t, 'nats_autoprof_polls_total', 'error').series >= N ? t : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500, what: `every one of ${N} servers polled once` },
    );
    assert.deepEqual(sum(text, 'nats_autoprof_polls_total', 'error'), { total: 0, series: 0 });
    assert.equal(sum(text, 'nats_autoprof_polls_total', 'ok').series, N);
    assert.deepEqual(daemon.logsWith('server is down'), []);
    assert.equal((await fetch(`${daemon.url}/readyz`)).status, 200);
    // The bound itself: never more than max_in_flight connections opened and not yet answered (without it, ~1000).
    const [unanswered = 0] = await fleet.maxUnanswered();
    assert.ok(unanswered > 0 && unanswered <= 100, `${unanswered} connections opened at once before an answer`);
  });
});
