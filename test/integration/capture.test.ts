/**
 * Threshold-triggered capture against real nats-servers: a rule fires, profiles come through the system
 * account or prof_port, and an incident that decodes lands on disk; failures are recorded, not fatal.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { decodeProfile, profileDurationNs, sampleTypes } from '../../src/insight/pprof-summary.js';
import { promtoolCheck } from '../helpers/promtool.js';
import { removeTempDirs, startDaemon, tempDir, waitFor, type Daemon } from '../helpers/daemon.js';
import { incidents, tree } from '../helpers/incidents.js';
import { APP_PASSWORD, APP_USER, cleanupTempDirs, freePort, startServer, SYS_PASSWORD, SYS_USER, type NatsServer } from '../helpers/nats-server.js';

const running: { daemons: Daemon[]; servers: NatsServer[] } = { daemons: [], servers: [] };
after(async () => {
  await Promise.all(running.daemons.map((d) => d.stop('SIGKILL')));
  await Promise.all(running.servers.map((s) => s.stop('SIGKILL')));
  cleanupTempDirs();
  removeTempDirs();
});

async function server(name: string): Promise<NatsServer> {
  const s = await startServer({ name, tags: ['az:eu-1'], clusterName: 'east' });
  running.servers.push(s);
  return s;
}

async function daemon(config: string, dir?: string): Promise<Daemon> {
  const d = await startDaemon({ config, ...(dir ? { dir } : {}) });
  running.daemons.push(d);
  return d;
}

function sysAccount(s: NatsServer): string {
  return `system_account:\n  url: ${s.natsUrl}\n  user: ${SYS_USER}\n  password: \${SYS_PW}\n`;
}

function memRuleConfig(s: NatsServer, via: string, extra = ''): string {
  return `
log: { level: debug }
http: { listen: "127.0.0.1:{{PORT}}" }
poll: { interval: 250ms, timeout: 200ms }
servers:
  - url: ${s.monitorUrl}
    prof_url: ${s.profUrl}
${sysAccount(s).replace('${SYS_PW}', SYS_PASSWORD)}
triggers:
  - name: low-mem
    metric: mem
    above: 1MiB
    profiles: [cpu, allocs]
capture: { via: ${via}, cpu_duration: 2s }
storage: { dir: "{{DIR}}/profiles" }
${extra}`;
}

/** Whether a TCP connection to 127.0.0.1:`port` is established (read from /proc/net/tcp: state, not time). */
function tcpEstablished(port: number): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is f[1] (ADDR:PORT), st is f[3]; 01 is ESTABLISHED. The server's side of the connection.
      if (f[1]?.endsWith(`:${hexPort}`) && f[3] === '01') return true;
    }
  }
  return false;
}

function assertDecodes(dir: string, m: { file: string | null; sha256: string | null; bytes: number }): Buffer {
  assert.ok(m.file, 'a file');
  const data = readFileSync(join(dir, m.file));
  assert.equal(data.length, m.bytes);
  assert.equal(createHash('sha256').update(data).digest('hex'), m.sha256);
  assert.equal(data[0], 0x1f, 'gzip magic as the server wrote it');
  assert.equal(data[1], 0x8b);
  decodeProfile(data);
  return data;
}

for (const via of ['system_account', 'prof_port'] as const) {
  describe(`a memory rule captures cpu and allocs via ${via}`, () => {
    it('writes a complete incident that decodes, and counts it', async () => {
      const s = await server(`mem-${via.replace('_', '-')}`);
      const d = await daemon(memRuleConfig(s, via));
      const root = join(d.dir, 'profiles');
      const [inc] = await waitFor(() => {
        const found = incidents(root);
        return found.length > 0 ? found : undefined;
      }, { timeoutMs: 30_000, what: 'an incident' });
      assert.ok(inc);
      const m = inc.manifest;
      assert.equal(m.reason, 'trigger');
      assert.equal(m.status, 'ok');
      assert.equal(m.via, via);
      assert.equal(m.server.name, s.name);
      assert.equal(m.server.cluster, 'east');
      assert.deepEqual(m.server.tags, ['az:eu-1']);
      assert.match(m.server.id ?? '', /^N[A-Z0-9]{55}$/);
      assert.equal(m.trigger?.name, 'low-mem');
      assert.equal(m.trigger?.metric, 'mem');
      assert.equal(m.trigger?.above, 1024 * 1024);
      assert.ok((m.trigger?.value ?? 0) > 1024 * 1024);
      assert.deepEqual(m.files, ['allocs.pb.gz', 'cpu.pb.gz', 'varz.json']);
      assert.equal(m.id, `${s.name}~${inc.dir.split('/').pop()}`);
      assert.match(inc.dir.split('/').pop() ?? '', /^\d{8}T\d{6}\.\d{3}Z-low-mem$/);

      const varz = JSON.parse(readFileSync(join(inc.dir, 'varz.json'), 'utf8')) as { server_id: string; mem: number };
      assert.equal(varz.server_id, m.server.id);
      assert.equal(varz.mem, m.trigger?.value);

      const cpu = m.profiles.find((p) => p.name === 'cpu');
      const allocs = m.profiles.find((p) => p.name === 'allocs');
      assert.ok(cpu && allocs);
      assert.equal(cpu.error, null);
      assert.equal(cpu.via, via);
      const cpuData = assertDecodes(inc.dir, cpu);
      assert.deepEqual(sampleTypes(cpuData), [{ type: 'samples', unit: 'count' }, { type: 'cpu', unit: 'nanoseconds' }]);
      const ns = profileDurationNs(cpuData) ?? 0;
      assert.ok(ns > 1.8e9 && ns < 3e9, `cpu profile lasted ${ns / 1e9}s, asked for 2s`);
      assert.ok(cpu.duration_ms >= 1_900, `capture took ${cpu.duration_ms} ms`);
      assert.equal(cpu.sample_type, 'cpu');
      const allocData = assertDecodes(inc.dir, allocs);
      assert.deepEqual(sampleTypes(allocData).map((t) => t.type), ['alloc_objects', 'alloc_space', 'inuse_objects', 'inuse_space']);
      assert.equal(allocs.sample_type, 'alloc_space');
      assert.ok(allocs.top.length > 0 && allocs.top.length <= 10);
      for (const t of allocs.top) assert.ok(t.share > 0 && t.share <= 1 && t.function.length > 0);

      assert.deepEqual(tree(root).filter((p) => p.includes('.tmp-')), []);
      // The line follows the commit through the daemon's stdout pipe: it may arrive just after the files.
      const logLine = await waitFor(() => d.logsWith(/^incident written: /)[0], { timeoutMs: 10_000, what: 'the "incident written" line' });
      assert.equal(logLine['server'], s.name);
      assert.equal(logLine['trigger'], 'low-mem');

      await waitFor(async () => (await d.metric('nats_autoprof_storage_incidents')) === 1, { what: 'storage gauge' });
      assert.equal(await d.metric('nats_autoprof_triggers_fired_total', { server: s.name, trigger: 'low-mem' }), 1);
      assert.equal(await d.metric('nats_autoprof_captures_total', { server: s.name, profile: 'cpu', via, result: 'ok' }), 1);
      assert.equal(await d.metric('nats_autoprof_captures_total', { server: s.name, profile: 'allocs', via, result: 'ok' }), 1);
      assert.ok(((await d.metric('nats_autoprof_storage_bytes')) ?? 0) > cpu.bytes + allocs.bytes);
      assert.ok(((await d.metric('nats_autoprof_last_capture_timestamp_seconds', { server: s.name, profile: 'cpu' })) ?? 0) > 0);
      assert.equal(await d.metric('nats_autoprof_trigger_firing', { server: s.name, trigger: 'low-mem' }), 1);
      assert.equal(await d.metric('nats_autoprof_system_account_connected'), 1);
      assert.deepEqual(await promtoolCheck(await d.metrics()), { code: 0, output: '' }, 'capture metrics pass promtool');
      // The rule stays disarmed while memory stays above: no second incident over the next polls (each
      // one a chance to fire again), counted by the daemon rather than waited for by the clock.
      const polled = (await d.metric('nats_autoprof_polls_total', { server: s.name, result: 'ok' })) ?? 0;
      await waitFor(async () => ((await d.metric('nats_autoprof_polls_total', { server: s.name, result: 'ok' })) ?? 0) >= polled + 4, { what: 'four more polls' });
      assert.equal(await d.metric('nats_autoprof_trigger_firing', { server: s.name, trigger: 'low-mem' }), 1, 'still above: still fired');
      assert.equal(await d.metric('nats_autoprof_triggers_fired_total', { server: s.name, trigger: 'low-mem' }), 1);
      assert.equal(d.logsWith('capturing').length, 1, 'no second capture started');
      assert.equal(incidents(root).length, 1);
      await d.stop();
      await s.stop();
    });
  });
}

describe('a CPU rule fires under load', () => {
  it('captures while a publisher keeps the server busy', async () => {
    const s = await server('cpu-load');
    const d = await daemon(`
http: { listen: "127.0.0.1:{{PORT}}" }
poll: { interval: 250ms, timeout: 200ms }
servers: [ { url: "${s.monitorUrl}", prof_url: "${s.profUrl}" } ]
triggers:
  - { name: busy-cpu, metric: cpu, above: 15, for: 1s, profiles: [cpu] }
capture: { cpu_duration: 1s }
storage: { dir: "{{DIR}}/profiles" }
`);
    const nc = await connect({ servers: s.natsUrl, user: APP_USER, pass: APP_PASSWORD });
    const sub = nc.subscribe('load.>', { callback: () => undefined });
    let stop = false;
    const payload = new Uint8Array(256);
    const publisher = (async () => {
      while (!stop) {
        for (let i = 0; i < 2_000; i++) nc.publish(`load.${i % 16}`, payload);
        await nc.flush();
      }
    })();
    try {
      const root = join(d.dir, 'profiles');
      const [inc] = await waitFor(() => {
        const f = incidents(root);
        return f.length > 0 ? f : undefined;
      }, { timeoutMs: 30_000, what: 'a CPU incident' });
      assert.ok(inc);
      assert.equal(inc.manifest.trigger?.metric, 'cpu');
      assert.ok((inc.manifest.trigger?.value ?? 0) > 15);
      assert.equal(inc.manifest.profiles[0]?.error, null);
      const data = assertDecodes(inc.dir, inc.manifest.profiles[0] as { file: string; sha256: string; bytes: number });
      assert.ok(decodeProfile(data).sample.length > 0, 'a busy server has CPU samples');
    } finally {
      stop = true;
      await publisher;
      sub.unsubscribe();
      await nc.close();
    }
  });
});

describe('capture failures are recorded, and watching goes on', () => {
  it('an unreachable prof_port gives a failed incident with the reason', async () => {
    const s = await server('no-prof');
    const closed = await freePort();
    const d = await daemon(`
http: { listen: "127.0.0.1:{{PORT}}" }
poll: { interval: 250ms, timeout: 200ms }
servers: [ { url: "${s.monitorUrl}", prof_url: "http://127.0.0.1:${closed}" } ]
triggers: [ { name: low-mem, metric: mem, above: 1MiB, profiles: [allocs, goroutine] } ]
storage: { dir: "{{DIR}}/profiles" }
`);
    const root = join(d.dir, 'profiles');
    const [inc] = await waitFor(() => {
      const f = incidents(root);
      return f.length > 0 ? f : undefined;
    }, { timeoutMs: 15_000, what: 'a failed incident' });
    assert.ok(inc);
    assert.equal(inc.manifest.status, 'failed');
    for (const p of inc.manifest.profiles) {
      assert.equal(p.file, null);
      assert.equal(p.error, `http://127.0.0.1:${closed}/debug/pprof/${p.name} could not be reached: ECONNREFUSED`);
    }
    assert.deepEqual(inc.manifest.files, ['varz.json']);
    assert.equal(await d.metric('nats_autoprof_captures_total', { server: s.name, profile: 'allocs', via: 'prof_port', result: 'error' }), 1);
    const polls = (await d.metric('nats_autoprof_polls_total', { server: s.name, result: 'ok' })) ?? 0;
    await waitFor(async () => ((await d.metric('nats_autoprof_polls_total', { server: s.name, result: 'ok' })) ?? 0) > polls + 2, { what: 'more polls' });
  });

  it('a server killed during a CPU capture leaves an incident with the error and no profile file', async () => {
    const s = await server('killed');
    const d = await daemon(`
http: { listen: "127.0.0.1:{{PORT}}" }
poll: { interval: 250ms, timeout: 200ms }
servers: [ { url: "${s.monitorUrl}", prof_url: "${s.profUrl}" } ]
triggers: [ { name: low-mem, metric: mem, above: 1MiB, profiles: [cpu] } ]
capture: { cpu_duration: 4s }
storage: { dir: "{{DIR}}/profiles" }
`);
    await waitFor(() => d.logsWith('capturing').length > 0, { what: 'the capture to start' });
    // The CPU profile request is at the server (its prof_port has a connection) before the server dies.
    await waitFor(() => tcpEstablished(s.ports.prof), { what: 'the profile request at the prof_port' });
    await s.kill();
    const root = join(d.dir, 'profiles');
    const [inc] = await waitFor(() => {
      const f = incidents(root);
      return f.length > 0 ? f : undefined;
    }, { timeoutMs: 15_000, what: 'the incident' });
    assert.ok(inc);
    const cpu = inc.manifest.profiles[0];
    assert.equal(inc.manifest.status, 'failed');
    assert.equal(cpu?.file, null);
    assert.match(cpu?.error ?? '', /debug\/pprof\/profile\?seconds=4 could not be reached|other side closed|socket/i);
    assert.equal(existsSync(join(inc.dir, 'cpu.pb.gz')), false);
    assert.deepEqual(tree(root).filter((p) => p.includes('.tmp-')), []);
    await waitFor(async () => (await d.metric('nats_autoprof_up', { server: s.name })) === 0, { what: 'up 0' });
    await s.start();
    await waitFor(async () => (await d.metric('nats_autoprof_up', { server: s.name })) === 1, { what: 'up 1 after restart', timeoutMs: 15_000 });
  });

  it('a CPU profile held by another client is retried, then captured', async () => {
    const s = await server('busy-prof');
    // Another client holds the profiler for 5 s (long enough for the daemon to start on a loaded machine)...
    const holder = fetch(`${s.profUrl}/debug/pprof/profile?seconds=5`).then((r) => r.arrayBuffer());
    // ...from the moment its request is at the server (the daemon, a process still to start, comes later).
    await waitFor(() => tcpEstablished(s.ports.prof), { what: "the other client's request at the prof_port" });
    const d = await daemon(memRuleConfig(s, 'system_account').replace('cpu_duration: 2s', 'cpu_duration: 1s'));
    const root = join(d.dir, 'profiles');
    const [inc] = await waitFor(() => {
      const f = incidents(root);
      return f.length > 0 ? f : undefined;
    }, { timeoutMs: 20_000, what: 'the incident' });
    await holder;
    assert.ok(inc);
    const cpu = inc.manifest.profiles.find((p) => p.name === 'cpu');
    assert.equal(cpu?.error, null);
    assertDecodes(inc.dir, cpu as { file: string; sha256: string; bytes: number });
    // It met the other client's profile (refused as busy, retried), then captured once that one was over.
    assert.ok(d.logsWith('cpu profiler busy; retrying').length >= 1, 'the capture met the held profiler');
    assert.ok((cpu?.duration_ms ?? 0) >= 1_000, `a 1 s CPU profile took ${cpu?.duration_ms} ms`);
  });
});

describe('a daemon killed while writing an incident', () => {
  it('leaves no visible incident, and the next start removes the leftover', async () => {
    const s = await server('sigkill');
    const dir = tempDir();
    const config = `
http: { listen: "127.0.0.1:{{PORT}}" }
poll: { interval: 250ms, timeout: 200ms }
servers: [ { url: "${s.monitorUrl}", prof_url: "${s.profUrl}" } ]
triggers: [ { name: low-mem, metric: mem, above: 1MiB, profiles: [allocs, cpu] } ]
capture: { cpu_duration: 5s }
storage: { dir: "{{DIR}}/profiles" }
`;
    const d1 = await daemon(config, dir);
    await waitFor(() => d1.logsWith('capturing').length > 0, { what: 'the capture to start' });
    const root = join(dir, 'profiles');
    await waitFor(() => tree(root).some((p) => /\.tmp-.*\/allocs\.pb\.gz$/.test(p)), { what: 'a file in the hidden incident' });
    await d1.stop('SIGKILL');
    assert.deepEqual(incidents(root), [], 'no visible incident');
    const leftover = tree(root).filter((p) => /^sigkill\/\.tmp-[^/]+$/.test(p));
    assert.equal(leftover.length, 1);

    const d2 = await daemon(config.replace(/triggers:.*\n/, ''), dir);
    await waitFor(() => d2.logsWith(/half-written incident/).length > 0, { what: 'the cleanup log line' });
    assert.deepEqual(tree(root).filter((p) => p.includes('.tmp-')), []);
    await d2.stop();
  });
});
