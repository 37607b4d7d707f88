/**
 * Rules on varz fields against a real nats-server (issue 15):
 * - a real slow consumer (a raw TCP subscriber that never reads, 64 KB messages, a small max_pending and
 *   write_deadline) makes varz slow_consumers rise; a `slow_consumers` rule with `rate: 1m, above: 0` captures
 *   a goroutine profile that pprof-format decodes and `go tool pprof` opens, both showing nats-server code;
 * - a connection surge (`connections` above N) captures a goroutine profile;
 * - a discovered server's rule reads STATSZ: `received.msgs` (a STATSZ-only name) with a rate fires on
 *   published messages, captured through the system account.
 * The manifest, the rule-state API and the metrics say which field fired, over which rate window, at which
 * escalation step.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { decodeProfile } from '../../src/insight/pprof-summary.js';
import { removeTempDirs, ROOT, startDaemon, waitFor, type Daemon } from '../helpers/daemon.js';
import { incidents } from '../helpers/incidents.js';
import { APP_PASSWORD, APP_USER, cleanupTempDirs, startServer, SYS_PASSWORD, SYS_USER, type NatsServer } from '../helpers/nats-server.js';

const run = promisify(execFile);
const running: { daemons: Daemon[]; servers: NatsServer[]; sockets: Socket[]; conns: NatsConnection[] } = { daemons: [], servers: [], sockets: [], conns: [] };
after(async () => {
  for (const s of running.sockets) s.destroy();
  await Promise.all(running.conns.map((c) => c.close().catch(() => undefined)));
  await Promise.all(running.daemons.map((d) => d.stop('SIGKILL')));
  await Promise.all(running.servers.map((s) => s.stop('SIGKILL')));
  cleanupTempDirs();
  removeTempDirs();
});

/** A raw client: CONNECT, optional SUB, PING; resolves on the server's PONG (the connection is registered). */
function rawClient(port: number, sub: string | undefined): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = tcpConnect(port, '127.0.0.1');
    running.sockets.push(sock);
    let seen = '';
    const onData = (b: Buffer): void => {
      seen += b.toString('latin1');
      if (seen.includes('PONG\r\n')) {
        sock.off('data', onData);
        // Never read again: the server's writes to it pile up.
        sock.pause();
        resolve(sock);
      } else if (seen.includes('-ERR')) reject(new Error(`server refused the raw client: ${seen}`));
    };
    sock.on('data', onData);
    sock.on('error', () => undefined);
    sock.once('connect', () => {
      const connectJson = JSON.stringify({ verbose: false, user: APP_USER, pass: APP_PASSWORD });
      sock.write(`CONNECT ${connectJson}\r\n${sub === undefined ? '' : `SUB ${sub} 1\r\n`}PING\r\n`);
    });
    sock.once('error', reject);
  });
}

async function varz(s: NatsServer): Promise<Record<string, number>> {
  const res = await fetch(`${s.monitorUrl}/varz`);
  return (await res.json()) as Record<string, number>;
}

async function goTool(): Promise<{ bin: string; goroot: string }> {
  const { stdout } = await run(join(ROOT, 'scripts', 'get-go.sh'), [], { env: process.env, maxBuffer: 1 << 20, timeout: 600_000 });
  const bin = stdout.trim();
  return { bin, goroot: join(bin, '..', '..') };
}

/** nats-server's own code (Debian builds it as github.com/nats-io/nats-server/server, upstream with /v2). */
const SERVER_PKG = /^github\.com\/nats-io\/nats-server\/(v2\/)?server\./;
const hasReadLoop = (names: Set<string>): boolean => [...names].some((n) => SERVER_PKG.test(n) && n.endsWith('.(*client).readLoop'));

function functionNames(file: string): Set<string> {
  const p = decodeProfile(readFileSync(file));
  const names = new Set<string>();
  for (const f of p.function) names.add(String(p.stringTable.strings[Number(f.name)]));
  return names;
}

describe('a real slow consumer', () => {
  it('fires a slow_consumers rate rule, whose goroutine profile pprof-format and go tool pprof both read', async () => {
    const s = await startServer({ name: 'slow', extra: 'max_pending: 262144\nmax_payload: 131072\nwrite_deadline: "500ms"\n' });
    running.servers.push(s);
    const d = await startDaemon({
      config: `
http: { listen: "127.0.0.1:{{PORT}}" }
poll: { interval: 250ms, timeout: 200ms }
servers: [ { url: "${s.monitorUrl}", prof_url: "${s.profUrl}" } ]
triggers:
  - { name: slow-consumers, metric: slow_consumers, rate: 1m, above: 0, profiles: [goroutine], escalate: 25% }
capture: { via: prof_port }
storage: { dir: "{{DIR}}/profiles" }
`,
    });
    running.daemons.push(d);
    // The rule has seen a flat counter (rate 0) before the slow consumer appears.
    await waitFor(async () => {
      const r = await fetch(`${d.url}/api/v1/triggers`);
      const v = ((await r.json()) as { triggers: { value: number | null }[] }).triggers[0];
      return v?.value === 0 ? v : undefined;
    }, { what: 'a rate of 0 slow consumers per second' });

    await rawClient(s.ports.client, 'foo');
    const nc = await connect({ servers: s.natsUrl, user: APP_USER, pass: APP_PASSWORD });
    running.conns.push(nc);
    const payload = new Uint8Array(64 * 1024);
    // Publish until the server counts the slow consumer (bounded by waitFor's timeout).
    await waitFor(async () => {
      for (let i = 0; i < 32; i++) nc.publish('foo', payload);
      await nc.flush();
      const v = await varz(s);
      return v['slow_consumers'] !== undefined && v['slow_consumers'] > 0 ? true : undefined;
    }, { timeoutMs: 20_000, intervalMs: 10, what: 'varz.slow_consumers > 0' });

    const [inc] = await waitFor(() => {
      const f = incidents(`${d.dir}/profiles`);
      return f.length > 0 && f[0]?.manifest.status === 'ok' ? f : undefined;
    }, { timeoutMs: 20_000, what: 'an incident' });
    assert.ok(inc);
    const t = inc.manifest.trigger;
    assert.ok(t);
    assert.equal(t.name, 'slow-consumers');
    assert.equal(t.metric, 'slow_consumers');
    assert.equal(t.rate_ms, 60_000);
    assert.equal(t.escalation_step, 0);
    assert.ok(t.value > 0, `a positive rate, got ${t.value}`);
    assert.ok((t.raw ?? 0) >= 1, `the counter, got ${t.raw}`);
    assert.deepEqual(inc.manifest.files, ['goroutine.pb.gz', 'varz.json']);

    const file = join(inc.dir, 'goroutine.pb.gz');
    const names = functionNames(file);
    assert.ok(hasReadLoop(names), 'client read loops of nats-server in the goroutine profile');

    const go = await goTool();
    const top = await run(go.bin, ['tool', 'pprof', '-top', file], { env: { ...process.env, GOROOT: go.goroot, HOME: d.dir }, maxBuffer: 8 << 20 });
    assert.match(top.stdout, /Type: goroutine/);
    assert.match(top.stdout, /github\.com\/nats-io\/nats-server\/(v2\/)?server\.\(\*client\)\.readLoop/);

    // Why did it fire: the API and the metrics name the field, the window and the escalation step.
    const view = ((await (await fetch(`${d.url}/api/v1/triggers`)).json()) as { triggers: Record<string, unknown>[] }).triggers[0];
    assert.equal(view?.['metric'], 'slow_consumers');
    assert.equal(view?.['rate_ms'], 60_000);
    assert.equal(view?.['escalate_percent'], 25);
    assert.equal(view?.['escalate_max'], 2);
    assert.equal(typeof view?.['escalation_step'], 'number');
    assert.equal(await d.metric('nats_autoprof_trigger_info', { trigger: 'slow-consumers', metric: 'slow_consumers', rate: '60s', escalate: '25%' }), 1);
    assert.equal(await d.metric('nats_autoprof_triggers_fired_total', { server: s.name, trigger: 'slow-consumers' }), 1);
    assert.notEqual(await d.metric('nats_autoprof_trigger_escalation_step', { server: s.name, trigger: 'slow-consumers' }), undefined);
  });
});

describe('a connection surge', () => {
  it('fires a connections rule with a goroutine profile', async () => {
    const s = await startServer({ name: 'surge' });
    running.servers.push(s);
    const base = (await varz(s))['connections'] ?? 0;
    const d = await startDaemon({
      config: `
http: { listen: "127.0.0.1:{{PORT}}" }
poll: { interval: 250ms, timeout: 200ms }
servers: [ { url: "${s.monitorUrl}", prof_url: "${s.profUrl}" } ]
triggers:
  - { name: connection-surge, metric: connections, above: ${base + 40}, profiles: [goroutine] }
capture: { via: prof_port }
storage: { dir: "{{DIR}}/profiles" }
`,
    });
    running.daemons.push(d);
    await waitFor(async () => {
      const r = await fetch(`${d.url}/api/v1/triggers`);
      const v = ((await r.json()) as { triggers: { value: number | null }[] }).triggers[0];
      return v?.value === base ? v : undefined;
    }, { what: 'the rule reading connections' });
    assert.deepEqual(incidents(`${d.dir}/profiles`), [], 'nothing below the level');

    await Promise.all(Array.from({ length: 50 }, () => rawClient(s.ports.client, undefined)));
    const [inc] = await waitFor(() => {
      const f = incidents(`${d.dir}/profiles`);
      return f.length > 0 && f[0]?.manifest.status === 'ok' ? f : undefined;
    }, { timeoutMs: 20_000, what: 'an incident' });
    assert.ok(inc);
    const t = inc.manifest.trigger;
    assert.equal(t?.metric, 'connections');
    assert.equal(t?.rate_ms, null);
    assert.ok((t?.value ?? 0) > base + 40);
    const names = functionNames(join(inc.dir, 'goroutine.pb.gz'));
    assert.ok(hasReadLoop(names), 'client read loops in the goroutine profile');
    const go = await goTool();
    const top = await run(go.bin, ['tool', 'pprof', '-top', join(inc.dir, 'goroutine.pb.gz')], { env: { ...process.env, GOROOT: go.goroot, HOME: d.dir } });
    assert.match(top.stdout, /server\.\(\*client\)\.readLoop/);
  });
});

describe('a rule on a STATSZ field of a discovered server', () => {
  it('fires on received.msgs per second and captures through the system account', async () => {
    const s = await startServer({ name: 'disc' });
    running.servers.push(s);
    const d = await startDaemon({
      config: `
http: { listen: "127.0.0.1:{{PORT}}" }
poll: { interval: 250ms, timeout: 200ms }
system_account:
  url: ${s.natsUrl}
  user: ${SYS_USER}
  password: ${SYS_PASSWORD}
  discover: true
  stall: 200ms
  forget_after: 2s
triggers:
  - { name: msgs-in, metric: received.msgs, rate: 1m, above: 200, profiles: [goroutine] }
capture: { via: system_account }
storage: { dir: "{{DIR}}/profiles" }
`,
    });
    running.daemons.push(d);
    await waitFor(async () => {
      const v = ((await (await fetch(`${d.url}/api/v1/triggers`)).json()) as { triggers: { server: string; value: number | null }[] }).triggers[0];
      return v?.server === 'disc' && v.value !== null && v.value < 200 ? v : undefined;
    }, { what: 'the rule reading a quiet received.msgs rate' });
    assert.deepEqual(incidents(`${d.dir}/profiles`), []);

    const nc = await connect({ servers: s.natsUrl, user: APP_USER, pass: APP_PASSWORD });
    running.conns.push(nc);
    const [inc] = await waitFor(async () => {
      for (let i = 0; i < 5_000; i++) nc.publish('bar', 'x');
      await nc.flush();
      const f = incidents(`${d.dir}/profiles`);
      return f.length > 0 && f[0]?.manifest.status === 'ok' ? f : undefined;
    }, { timeoutMs: 20_000, intervalMs: 100, what: 'an incident' });
    assert.ok(inc);
    assert.equal(inc.manifest.via, 'system_account');
    assert.equal(inc.manifest.trigger?.metric, 'received.msgs');
    assert.equal(inc.manifest.trigger?.rate_ms, 60_000);
    assert.ok((inc.manifest.trigger?.value ?? 0) > 200);
    assert.ok(inc.manifest.files.includes('statsz.json'));
    assert.ok(hasReadLoop(functionNames(join(inc.dir, 'goroutine.pb.gz'))));
  });
});
