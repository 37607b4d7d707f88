/**
 * Hardening: misbehaving monitoring endpoints. One daemon watches nine fake endpoints that each fail in
 * their own way (error status, HTML, truncated JSON, JSON that is not varz, a 100 MB body with and without
 * content-length, silence, headers then silence, a redirect loop) next to one healthy fake varz. Each bad
 * one must count as an error poll with `up` 0 and one "server is down" line; the healthy one must keep
 * being polled on time; the daemon must stay up with bounded memory.
 *
 * Regression test (this was a bug, now fixed): src/watch/varz.ts VarzClient.fetch destroys an unread undici body in its
 * `finally` without an 'error' listener; undici turns that into RequestAbortedError emitted as 'error', and
 * the daemon dies (uncaught, exit 1) on the first non-200 answer (500, 302, 401…) or oversized
 * content-length (before the fix this file failed in `before` with "daemon exited with 1").
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { metricValue, removeTempDirs, startDaemon, waitFor, type Daemon } from '../helpers/daemon.js';
import { startFakeMonitor, type FakeMonitor, type MonitorMode } from '../helpers/fake-monitor.js';
import { incidents } from '../helpers/incidents.js';
import { cleanupTempDirs, startServer, SYS_PASSWORD, SYS_USER, type NatsServer } from '../helpers/nats-server.js';

/** Peak resident set size (VmHWM) of a process, in bytes. */
function peakRss(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  assert.ok(m, 'VmHWM in /proc/<pid>/status');
  return Number(m[1]) * 1024;
}

const BAD: { mode: Exclude<MonitorMode, 'varz'>; name: string; error: RegExp }[] = [
  { mode: 'status500', name: 'bad-500', error: /\/varz answered HTTP 500$/ },
  { mode: 'html', name: 'bad-html', error: /\/varz: varz is not valid JSON: / },
  { mode: 'truncated', name: 'bad-truncated', error: /\/varz: varz is not valid JSON: / },
  { mode: 'not-varz', name: 'bad-not-varz', error: /\/varz: varz field "version" is missing$/ },
  { mode: 'huge-with-length', name: 'bad-huge-length', error: /\/varz sent 104857600 bytes, more than poll\.max_body_size \(4194304\)$/ },
  { mode: 'huge-chunked', name: 'bad-huge-chunked', error: /\/varz sent more than poll\.max_body_size \(4194304 bytes\)$/ },
  { mode: 'silent', name: 'bad-silent', error: /\/varz did not answer within 400 ms$/ },
  { mode: 'headers-then-silence', name: 'bad-stalled', error: /\/varz did not answer within 400 ms$/ },
  { mode: 'redirect-loop', name: 'bad-redirect', error: /\/varz answered HTTP 302$/ },
];

const fakes: FakeMonitor[] = [];
const daemons: Daemon[] = [];
let real: NatsServer | undefined;

after(async () => {
  await Promise.all(daemons.map((x) => x.stop('SIGKILL')));
  await Promise.all(fakes.map((f) => f.close()));
  await real?.stop();
  cleanupTempDirs();
  removeTempDirs();
});

describe('misbehaving monitoring endpoints', () => {
  let healthy: FakeMonitor;
  let d: Daemon;
  before(async () => {
    healthy = await startFakeMonitor('varz', { name: 'good-fake' });
    fakes.push(healthy);
    const bad: FakeMonitor[] = [];
    for (const b of BAD) bad.push(await startFakeMonitor(b.mode, { name: b.name }));
    fakes.push(...bad);
    const servers = [`  - { name: good, url: "${healthy.url}" }`, ...BAD.map((b, i) => `  - { name: ${b.name}, url: "${(bad[i] as FakeMonitor).url}" }`)].join('\n');
    d = await startDaemon({
      config: `
http: { listen: "127.0.0.1:{{PORT}}" }
poll: { interval: 500ms, timeout: 400ms }
servers:
${servers}
triggers: []
storage: { dir: "{{DIR}}/profiles" }
`,
    });
    daemons.push(d);
  });

  it('each bad endpoint is an error poll with up 0, the healthy one stays on schedule, memory stays bounded', async () => {
    // Every bad server has failed at least three times (so "logged once" is meaningful).
    await waitFor(async () => {
      // "daemon exited…" ends the wait at once (waitFor rethrows it), with the reason.
      if (d.proc.exitCode !== null) throw new Error(`daemon exited with ${d.proc.exitCode}: ${d.stderr.slice(0, 600)}`);
      const text = await d.metrics();
      return BAD.every((b) => (metricValue(text, 'nats_autoprof_polls_total', { server: b.name, result: 'error' }) ?? 0) >= 3);
    }, { timeoutMs: 15_000, what: 'three error polls of every bad server' });

    // A 5 s window: the healthy server is polled about every 500 ms while the others misbehave.
    const okBefore = (await d.metric('nats_autoprof_polls_total', { server: 'good', result: 'ok' })) ?? 0;
    const errBefore = new Map<string, number>();
    for (const b of BAD) errBefore.set(b.name, (await d.metric('nats_autoprof_polls_total', { server: b.name, result: 'error' })) ?? 0);
    const hugeSentBefore = fakes.filter((f) => f.mode.startsWith('huge')).map((f) => f.requests);
    await new Promise((r) => setTimeout(r, 5_000));
    const okAfter = (await d.metric('nats_autoprof_polls_total', { server: 'good', result: 'ok' })) ?? 0;
    assert.ok(okAfter - okBefore >= 8, `healthy server: ${okAfter - okBefore} ok polls in 5 s, expected at least 8 (interval 500ms)`);
    assert.equal(await d.metric('nats_autoprof_up', { server: 'good' }), 1);
    assert.equal(await d.metric('nats_autoprof_polls_total', { server: 'good', result: 'error' }), undefined, 'the healthy server never failed');

    for (const b of BAD) {
      const after = (await d.metric('nats_autoprof_polls_total', { server: b.name, result: 'error' })) ?? 0;
      assert.ok(after - (errBefore.get(b.name) ?? 0) >= 4, `${b.name}: error polls grew by ${after - (errBefore.get(b.name) ?? 0)} in 5 s`);
      assert.equal(await d.metric('nats_autoprof_up', { server: b.name }), 0, `${b.name}: up`);
      assert.equal(await d.metric('nats_autoprof_polls_total', { server: b.name, result: 'ok' }), undefined, `${b.name}: never ok`);
    }
    // The 100 MB endpoints were really asked again and again during the window.
    const hugeNow = fakes.filter((f) => f.mode.startsWith('huge')).map((f) => f.requests);
    hugeNow.forEach((n, i) => assert.ok(n - (hugeSentBefore[i] ?? 0) >= 4, `huge endpoint polled ${n - (hugeSentBefore[i] ?? 0)} times in 5 s`));

    // Each failure says why, through the API.
    const servers = ((await (await fetch(`${d.url}/api/v1/servers`)).json()) as { servers: { server: string; up: boolean; last_error: string | null }[] }).servers;
    for (const b of BAD) {
      const s = servers.find((x) => x.server === b.name);
      assert.ok(s, b.name);
      assert.equal(s.up, false);
      assert.match(s.last_error ?? '', b.error, `${b.name}: last_error`);
    }

    // Logged once per server, not once per poll; never for the healthy one.
    for (const b of BAD) {
      const lines = d.logsWith('server is down').filter((l) => l['server'] === b.name);
      assert.equal(lines.length, 1, `${b.name}: ${lines.length} "server is down" lines`);
    }
    assert.equal(d.logsWith('server is down').filter((l) => l['server'] === 'good').length, 0);
    assert.equal(d.logsWith('server is down').length, BAD.length);

    // Memory: the 100 MB bodies are cut at poll.max_body_size, never buffered whole.
    const hwm = peakRss(d.proc.pid as number);
    console.log(`[measure] daemon peak RSS (VmHWM) with two 100 MB /varz endpoints polled every 500ms: ${(hwm / 1024 / 1024).toFixed(1)} MiB`);
    const chunked = fakes.find((f) => f.mode === 'huge-chunked') as FakeMonitor;
    const withLength = fakes.find((f) => f.mode === 'huge-with-length') as FakeMonitor;
    console.log(`[measure] bytes written before the daemon hung up: chunked ${(chunked.bytesSent / chunked.requests / 1024 / 1024).toFixed(1)} MiB/poll, with content-length ${(withLength.bytesSent / withLength.requests / 1024 / 1024).toFixed(1)} MiB/poll`);
    assert.ok(hwm < 300 * 1024 * 1024, `peak RSS ${hwm} bytes`);

    // Still up and serving.
    assert.equal(d.proc.exitCode, null, `the daemon is still running: ${d.stderr.slice(0, 600)}`);
    assert.equal((await fetch(`${d.url}/healthz`)).status, 200);
    assert.equal(d.logs.filter((l) => l.level === 'error' || l.level === 'fatal').length, 0, 'no error-level log lines');
  });
});

// Regression test (this was a bug, now fixed): src/app.ts #discover de-duplicates discovered servers against
// inventory.httpServerIds(), which only holds servers whose first HTTP poll has already answered. A
// configured server whose monitoring endpoint is slower than the first discovery round is watched twice
// (same label), its rule fires twice (two incidents), and when the duplicate is dropped #forget calls
// metrics.forgetServer(label), deleting the HTTP server's own series (triggers_fired_total vanishes).
describe('a slow monitoring endpoint of a server that discovery also finds', () => {
  it('is watched once: one "server", one firing, one incident, its series kept', async () => {
    real = await startServer({ name: 'slow-real' });
    const varz = (await (await fetch(`${real.monitorUrl}/varz`)).json()) as Record<string, unknown>;
    // The real server's identity, served 300 ms late: slower than a discovery round on loopback.
    const slow = await startFakeMonitor('varz', { name: 'slow-real', varz: { server_id: varz['server_id'], server_name: 'slow-real' }, delayMs: 300 });
    fakes.push(slow);
    const d = await startDaemon({
      config: `
http: { listen: "127.0.0.1:{{PORT}}" }
poll: { interval: 1s, timeout: 900ms }
servers: [ { name: slow-real, url: "${slow.url}" } ]
system_account: { url: "${real.natsUrl}", user: ${SYS_USER}, password: "${SYS_PASSWORD}", discover: true }
triggers: [ { name: low-mem, metric: mem, above: 1MiB, cooldown: 1h, profiles: [goroutine] } ]
storage: { dir: "{{DIR}}/profiles" }
`,
    });
    daemons.push(d);
    const root = join(d.dir, 'profiles');
    await waitFor(() => incidents(root).length >= 1 && slow.served >= 3, { timeoutMs: 10_000, what: 'an incident and three polls' });
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(d.logsWith('discovered server').map((l) => l['server']), [], 'a configured server is not "discovered" again');
    assert.deepEqual(d.logsWith('server no longer watched').map((l) => l['server']), []);
    const found = incidents(root);
    assert.equal(found.length, 1, `incidents: ${JSON.stringify(found.map((i) => i.manifest.files))}`);
    assert.deepEqual(found[0]?.manifest.files, ['goroutine.pb.gz', 'varz.json'], 'the HTTP-watched server captured it');
    assert.equal(await d.metric('nats_autoprof_triggers_fired_total', { server: 'slow-real', trigger: 'low-mem' }), 1);
    const servers = ((await (await fetch(`${d.url}/api/v1/servers`)).json()) as { servers: { server: string; source: string }[] }).servers;
    assert.deepEqual(servers.map((x) => [x.server, x.source]), [['slow-real', 'http']]);
  });
});
