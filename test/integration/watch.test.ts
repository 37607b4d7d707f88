/**
 * The foundation against a real nats-server: the daemon polls /varz and exports metrics, survives the
 * server going away, and follows it when it comes back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createServer, type Server } from 'node:http';
import { Daemon, removeTempDirs, startDaemon, waitFor } from '../helpers/daemon.js';
import { promtoolCheck } from '../helpers/promtool.js';
import { cleanupTempDirs, freePort, startServer, SYS_PASSWORD, SYS_USER, type NatsServer } from '../helpers/nats-server.js';

describe('watching a real nats-server', () => {
  let srv: NatsServer;
  let daemon: Daemon;
  let startedAt = 0;

  before(async () => {
    srv = await startServer({ name: 'watch-a', tags: ['az:eu-1'], clusterName: 'east' });
    startedAt = Date.now();
    daemon = await startDaemon({
      config: `
http:
  listen: 127.0.0.1:{{PORT}}
poll:
  interval: 300ms
  timeout: 250ms
servers:
  - url: ${srv.monitorUrl}
storage:
  dir: {{DIR}}/profiles
`,
    });
  });
  after(async () => {
    await daemon?.stop();
    await srv?.stop();
    cleanupTempDirs();
    removeTempDirs();
  });

  it('exports up, cpu, memory, info and poll counters under the varz server_name', async () => {
    await waitFor(async () => (await daemon.metric('nats_autoprof_up', { server: 'watch-a' })) === 1, { what: 'up 1' });
    const text = await daemon.metrics();
    const mem = await daemon.metric('nats_autoprof_server_memory_bytes', { server: 'watch-a' });
    assert.ok(mem !== undefined && mem > 1_000_000, `memory ${mem}`);
    assert.notEqual(await daemon.metric('nats_autoprof_server_cpu_percent', { server: 'watch-a' }), undefined);
    assert.match(text, /nats_autoprof_server_info\{server="watch-a",server_id="N[A-Z0-9]{55}",cluster="east",version="2\.10\.\d+"\} 1/);
    assert.ok(((await daemon.metric('nats_autoprof_polls_total', { server: 'watch-a', result: 'ok' })) ?? 0) >= 1);
    const last = await daemon.metric('nats_autoprof_last_poll_success_timestamp_seconds', { server: 'watch-a' });
    // Event order, not a tolerance: the poll happened after the daemon was started and before this scrape.
    assert.ok(last !== undefined && last * 1000 >= startedAt && last * 1000 <= Date.now(), `last success ${last}`);
    assert.match(text, /nats_autoprof_poll_duration_seconds_bucket\{le="0\.005"\}/);
    assert.match(text, /nats_autoprof_process_resident_memory_bytes \d+/);
    assert.equal(await daemon.metric('nats_autoprof_config_last_reload_success'), 1);
    // The URL label used before the first answer is gone once the server has a name.
    assert.doesNotMatch(text, new RegExp(`server="${srv.monitorUrl}"`));
  });

  it('passes promtool check metrics', async () => {
    assert.deepEqual(await promtoolCheck(await daemon.metrics()), { code: 0, output: '' });
  });

  it('is ready once every server has been polled', async () => {
    const res = await fetch(`${daemon.url}/readyz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ready' });
  });

  it('turns up to 0 and counts errors while the server is down, and recovers when it restarts', async () => {
    // State changes of watch-a logged from here on, in order. (A poll that times out on a loaded machine
    // before the stop would log a down/up pair earlier: only what follows the stop is asserted.)
    const from = daemon.logs.length;
    const changes = (): string[] =>
      daemon.logs.slice(from).filter((l) => l['server'] === 'watch-a' && (l.msg === 'server is down' || l.msg === 'server is up')).map((l) => String(l.msg));
    await srv.stop();
    await waitFor(async () => (await daemon.metric('nats_autoprof_up', { server: 'watch-a' })) === 0, { what: 'up 0' });
    // A reading that is not current is not exported: no cpu or memory while down, the identity stays.
    const downText = await daemon.metrics();
    assert.match(downText, /^nats_autoprof_up\{server="watch-a"\} 0$/m);
    assert.doesNotMatch(downText, /^nats_autoprof_server_(cpu_percent|memory_bytes)\{/m);
    assert.match(downText, /^nats_autoprof_server_info\{server="watch-a",server_id="N[A-Z0-9]{55}",cluster="east",version="2\.10\.\d+"\} 1$/m);
    const errors1 = (await daemon.metric('nats_autoprof_polls_total', { server: 'watch-a', result: 'error' })) ?? 0;
    await waitFor(async () => ((await daemon.metric('nats_autoprof_polls_total', { server: 'watch-a', result: 'error' })) ?? 0) >= errors1 + 3, {
      what: 'more poll errors',
    });
    assert.equal((await fetch(`${daemon.url}/healthz`)).status, 200);
    // One log line for the state change, not one per failed poll.
    assert.deepEqual(changes(), ['server is down']);
    const down = daemon.logs.slice(from).find((l) => l.msg === 'server is down');
    assert.equal(down?.['server'], 'watch-a');
    assert.equal(down?.['url'], srv.monitorUrl);

    await srv.start();
    await waitFor(async () => (await daemon.metric('nats_autoprof_up', { server: 'watch-a' })) === 1, { what: 'up 1 again', timeoutMs: 15_000 });
    const mem = await daemon.metric('nats_autoprof_server_memory_bytes', { server: 'watch-a' });
    assert.ok(mem !== undefined && mem > 1_000_000, `memory back: ${mem}`);
    assert.notEqual(await daemon.metric('nats_autoprof_server_cpu_percent', { server: 'watch-a' }), undefined, 'cpu back');
    assert.deepEqual(changes().slice(0, 2), ['server is down', 'server is up']);
    assert.equal(daemon.proc.exitCode, null);
  });
});

describe('readiness before the first answer', () => {
  let slow: Server;
  let daemon: Daemon;
  let release: () => void = () => undefined;

  before(async () => {
    const port = await freePort();
    slow = createServer((_req, res) => {
      // Hold the first poll until the test has seen /readyz say 503.
      release = () => res.end('{}');
    });
    await new Promise<void>((r) => slow.listen(port, '127.0.0.1', r));
    daemon = await startDaemon({
      config: `
http: { listen: "127.0.0.1:{{PORT}}" }
poll: { interval: 1m, timeout: 1m }
servers: [ { url: "http://127.0.0.1:${port}", name: slow-one } ]
storage: { dir: "{{DIR}}/profiles" }
`,
    });
  });
  after(async () => {
    release();
    await daemon?.stop();
    slow.closeAllConnections();
    await new Promise((r) => slow.close(r));
    removeTempDirs();
  });

  it('answers 503 with the reason until every server has been polled', async () => {
    const res = await fetch(`${daemon.url}/readyz`);
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { status: 'not ready', reason: 'waiting for the first poll of: slow-one' });
    release();
    await waitFor(async () => (await fetch(`${daemon.url}/readyz`)).status === 200, { what: 'ready' });
    // `{}` is not varz: counted as an error, with up 0. (The next poll is a minute away, however slow the machine.)
    assert.equal(await daemon.metric('nats_autoprof_up', { server: 'slow-one' }), 0);
    assert.equal(await daemon.metric('nats_autoprof_polls_total', { server: 'slow-one', result: 'error' }), 1);
  });
});

describe('readiness when nothing is watched', () => {
  let srv: NatsServer;
  let daemon: Daemon;
  const config = (servers: string): string => `
http: { listen: "127.0.0.1:{{PORT}}" }
poll: { interval: 300ms, timeout: 250ms }
servers: ${servers}
storage: { dir: "{{DIR}}/profiles" }
`;

  before(async () => {
    srv = await startServer({ name: 'watch-later' });
    daemon = await startDaemon({ config: config('[]') });
  });
  after(async () => {
    await daemon?.stop();
    await srv?.stop();
    cleanupTempDirs();
    removeTempDirs();
  });

  it('is not ready while it watches nothing, and ready once a reload gives it a server that answered', async () => {
    const res = await fetch(`${daemon.url}/readyz`);
    assert.equal(res.status, 503);
    assert.deepEqual(await res.json(), { status: 'not ready', reason: 'watching nothing: no servers configured and system_account.discover is off' });
    assert.equal((await fetch(`${daemon.url}/healthz`)).status, 200, 'alive all the same');
    // The same warning as `check`, logged at start.
    const warned = daemon.logs.filter((l) => l.level === 'warn' && String(l.msg).startsWith('this configuration watches no server'));
    assert.equal(warned.length, 1, 'one start-up warning about watching nothing');

    daemon.writeConfig(config(`[ { url: "${srv.monitorUrl}" } ]`));
    daemon.proc.kill('SIGHUP');
    await waitFor(async () => (await fetch(`${daemon.url}/readyz`)).status === 200, { what: 'ready after the reload' });
    assert.equal(await daemon.metric('nats_autoprof_up', { server: 'watch-later' }), 1);

    // A reload back to nothing: not ready again.
    daemon.writeConfig(config('[]'));
    daemon.proc.kill('SIGHUP');
    await waitFor(async () => (await fetch(`${daemon.url}/readyz`)).status === 503, { what: 'not ready after the reload to nothing' });
    await waitFor(async () => daemon.logs.filter((l) => String(l.msg).startsWith('this configuration watches no server')).length === 2, {
      what: 'the warning logged again on the reload to nothing',
    });
  });

  it('with discovery that selects no server: not ready, saying discovery found none', async () => {
    const d = await startDaemon({
      config: `
http: { listen: "127.0.0.1:{{PORT}}" }
poll: { interval: 300ms, timeout: 250ms }
system_account: { url: "${srv.natsUrl}", user: ${SYS_USER}, password: "${SYS_PASSWORD}", discover: true, select: { names: [nobody-here] } }
storage: { dir: "{{DIR}}/profiles" }
`,
    });
    try {
      // Discovery rounds complete (and find nothing selected) while /readyz says why it is not ready.
      await waitFor(async () => ((await d.metric('nats_autoprof_discovery_rounds_total', { ended: 'count' })) ?? 0) >= 2, { what: 'discovery rounds' });
      const res = await fetch(`${d.url}/readyz`);
      assert.equal(res.status, 503);
      assert.deepEqual(await res.json(), { status: 'not ready', reason: 'watching nothing yet: discovery has found no server' });
    } finally {
      await d.stop();
    }
  });
});
