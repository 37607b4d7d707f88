/**
 * Faults around real nats-servers: servers killed mid-capture, the system-account connection lost and
 * restored, malformed PROFILEZ replies, a full or unusable disk, SIGTERM during a long capture, and a CPU
 * profiler held by someone else. Nothing crashes, nothing is half-written, every failure is recorded.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { decodeProfile } from '../../src/insight/pprof-summary.js';
import { removeTempDirs, runCli, startDaemon, tempDir, waitFor, type Daemon } from '../helpers/daemon.js';
import { incidents, tree } from '../helpers/incidents.js';
import { cleanupTempDirs, startCluster, startServer, SYS_PASSWORD, SYS_USER, type NatsServer } from '../helpers/nats-server.js';

const daemons: Daemon[] = [];
const servers: NatsServer[] = [];
const cleanups: (() => void | Promise<void>)[] = [];
after(async () => {
  await Promise.all(daemons.map((d) => d.stop('SIGKILL')));
  await Promise.all(servers.map((s) => s.stop('SIGKILL')));
  for (const c of cleanups.reverse()) await c();
  cleanupTempDirs();
  removeTempDirs();
});

async function server(name: string, extra?: string): Promise<NatsServer> {
  const s = await startServer({ name, ...(extra ? { extra } : {}) });
  servers.push(s);
  return s;
}

async function daemon(config: string, dir?: string): Promise<Daemon> {
  const d = await startDaemon({ config, ...(dir ? { dir } : {}) });
  daemons.push(d);
  return d;
}

const base = `
http: { listen: "127.0.0.1:{{PORT}}", auth: { bearer_token: test-token } }
poll: { interval: 250ms, timeout: 200ms }
storage: { dir: "{{DIR}}/profiles" }
`;
const sysOf = (s: NatsServer, more = ''): string => `system_account: { url: "${s.natsUrl}", user: ${SYS_USER}, password: ${SYS_PASSWORD}${more} }\n`;

/**
 * Resolves once the server's Go CPU profiler is running: while it runs, a goroutine dump from its prof_port
 * shows `runtime/pprof.profileWriter`. Asking for the dump does not take the profiler.
 */
async function cpuProfilerRunning(s: NatsServer): Promise<void> {
  await waitFor(async () => {
    const res = await fetch(`${s.profUrl}/debug/pprof/goroutine?debug=1`, { signal: AbortSignal.timeout(2_000) });
    return (await res.text()).includes('runtime/pprof.profileWriter');
  }, { what: `the CPU profiler of ${s.name} to run`, intervalMs: 50 });
}

async function oneIncident(root: string, timeoutMs = 20_000) {
  const [inc] = await waitFor(() => {
    const f = incidents(root);
    return f.length > 0 ? f : undefined;
  }, { timeoutMs, what: 'an incident' });
  assert.ok(inc);
  return inc;
}

describe('a server killed during a CPU capture through the system account', () => {
  it('records the error, leaves no profile file, keeps watching, and sees the server again', async () => {
    const s = await server('killed-sys');
    const d = await daemon(`${base}
servers: [ { url: "${s.monitorUrl}" } ]
${sysOf(s)}
triggers: [ { name: low-mem, metric: mem, above: 1MiB, profiles: [cpu] } ]
capture: { via: system_account, cpu_duration: 5s, timeout: 2s }
`);
    await waitFor(() => d.logsWith('capturing').length > 0, { what: 'the capture to start' });
    await cpuProfilerRunning(s); // the PROFILEZ request is being served: kill the server in the middle of it
    await s.kill();
    const root = join(d.dir, 'profiles');
    const inc = await oneIncident(root);
    const cpu = inc.manifest.profiles[0];
    assert.equal(inc.manifest.status, 'failed');
    assert.equal(cpu?.file, null);
    assert.match(cpu?.error ?? '', /^no reply to \$SYS\.REQ\.SERVER\.N[A-Z0-9]{55}\.PROFILEZ within 7000 ms$|system-account connection is not up/);
    assert.deepEqual(readdirSync(inc.dir).sort(), ['incident.json', 'varz.json']);
    assert.deepEqual(tree(root).filter((p) => p.includes('.tmp-')), []);
    await s.start();
    await waitFor(async () => (await d.metric('nats_autoprof_up', { server: 'killed-sys' })) === 1, { what: 'up again', timeoutMs: 15_000 });
    await waitFor(async () => (await d.metric('nats_autoprof_system_account_connected')) === 1, { what: 'reconnected', timeoutMs: 15_000 });
  });
});

describe('the system-account connection lost and restored', () => {
  it('reconnects, discovery resumes, and the connected gauge follows', async () => {
    const cluster = await startCluster(['re-1', 're-2'], { clusterName: 'recon' });
    servers.push(...cluster);
    const d = await daemon(`${base}
system_account:
  url: [${cluster.map((s) => s.natsUrl).join(', ')}]
  user: ${SYS_USER}
  password: ${SYS_PASSWORD}
  discover: true
  stall: 200ms
  forget_after: 1m
`);
    const upCount = async (): Promise<number> => ((await d.metrics()).match(/^nats_autoprof_up\{server="re-\d"\} 1$/gm) ?? []).length;
    await waitFor(async () => (await upCount()) === 2, { what: 'both servers up', timeoutMs: 15_000 });
    assert.equal(await d.metric('nats_autoprof_system_account_connected'), 1);
    await Promise.all(cluster.map((s) => s.stop()));
    await waitFor(async () => (await d.metric('nats_autoprof_system_account_connected')) === 0, { what: 'disconnected' });
    await waitFor(async () => (await upCount()) === 0, { what: 'both servers down' });
    assert.ok(((await d.metric('nats_autoprof_discovery_rounds_total', { ended: 'not_connected' })) ?? 0) >= 1);
    await Promise.all(cluster.map((s) => s.start()));
    await waitFor(async () => (await d.metric('nats_autoprof_system_account_connected')) === 1, { what: 'reconnected', timeoutMs: 20_000 });
    await waitFor(async () => (await upCount()) === 2, { what: 'discovery to resume', timeoutMs: 20_000 });
    assert.equal(d.proc.exitCode, null);
  });
});

describe('malformed PROFILEZ replies from a fake responder on a real server', () => {
  it('records each one in the manifest with a clear reason', async () => {
    const s = await server('real-host', 'max_payload: 16MB');
    const fakes: Record<string, (nc: NatsConnection) => string | Uint8Array> = {
      'fake-notjson': () => 'this is not json {',
      'fake-nodata': () => JSON.stringify({ server: { name: 'fake-nodata' } }),
      'fake-notbase64': () => JSON.stringify({ data: { profile: '%%%% not base64 %%%%', error: '' } }),
      'fake-notgzip': () => JSON.stringify({ data: { profile: Buffer.from('plain protobuf?').toString('base64'), error: '' } }),
      'fake-toperror': () => JSON.stringify({ error: { code: 400, description: 'bad request' } }),
      'fake-huge': () => JSON.stringify({ data: { profile: Buffer.concat([Buffer.from([0x1f, 0x8b]), randomBytes(11 * 1024 * 1024)]).toString('base64'), error: '' } }),
    };
    const names = Object.keys(fakes);
    const ids = Object.fromEntries(names.map((n, i) => [n, `NFAKE${String(i).padStart(51, '0')}`]));
    const responder = await connect({ servers: s.natsUrl, user: SYS_USER, pass: SYS_PASSWORD });
    cleanups.push(() => responder.close());
    responder.subscribe('$SYS.REQ.SERVER.PING.STATSZ', {
      callback: (_e, msg) => {
        for (const n of names) {
          msg.respond(
            JSON.stringify({
              server: { name: n, host: '127.0.0.1', id: ids[n], cluster: 'fake', ver: '2.10.27', tags: [], time: new Date().toISOString() },
              statsz: { mem: 100 * 1024 * 1024, cores: 2, cpu: 1, active_servers: names.length + 1 },
            }),
          );
        }
      },
    });
    for (const n of names) {
      responder.subscribe(`$SYS.REQ.SERVER.${ids[n]}.PROFILEZ`, {
        callback: (_e, msg) => {
          msg.respond(fakes[n]?.(responder));
        },
      });
    }
    await responder.flush();
    const d = await daemon(`${base}
${sysOf(s, ', discover: true, select: { names: ["fake-*"] }, stall: 300ms')}
triggers: [ { name: low-mem, metric: mem, above: 1MiB, profiles: [allocs] } ]
capture: { via: system_account, max_profile_size: 8MiB }
`);
    const root = join(d.dir, 'profiles');
    const found = await waitFor(() => {
      const f = incidents(root);
      return f.length === names.length ? f : undefined;
    }, { timeoutMs: 20_000, what: 'one incident per fake server' }).catch((err: unknown) => {
      console.log('DEBUG', incidents(root).map((i) => [i.manifest.server.name, i.manifest.profiles[0]?.error]), d.logs.filter((l) => l.level !== 'debug').slice(-30));
      throw err;
    });
    const errors = Object.fromEntries(found.map((i) => [i.manifest.server.name, i.manifest.profiles[0]?.error]));
    assert.match(errors['fake-notjson'] ?? '', /^PROFILEZ reply is not JSON \(\d+ bytes\)$/);
    assert.equal(errors['fake-nodata'], 'PROFILEZ reply has no "data" object');
    assert.equal(errors['fake-notbase64'], 'PROFILEZ "profile" is not base64');
    assert.equal(errors['fake-notgzip'], 'PROFILEZ profile is not gzip-compressed protobuf (debug must be 0)');
    assert.equal(errors['fake-toperror'], 'server refused the request: bad request (code 400)');
    assert.match(errors['fake-huge'] ?? '', /^profile is \d+ bytes, more than capture\.max_profile_size$/);
    for (const i of found) {
      assert.equal(i.manifest.status, 'failed');
      assert.equal(i.manifest.profiles[0]?.file, null);
      assert.ok(!readdirSync(i.dir).some((f) => f.endsWith('.pb.gz')));
    }
    assert.equal(d.proc.exitCode, null);
  });
});

describe('an unusable storage directory', () => {
  it('at start: a clear error and exit 2', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a-file'), 'not a directory');
    writeFileSync(join(dir, 'c.yaml'), `storage: { dir: ${join(dir, 'a-file', 'profiles')} }\nhttp: { listen: "127.0.0.1:0" }\n`);
    const r = await runCli(['run', '--config', join(dir, 'c.yaml')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`${join(dir, 'a-file').replaceAll('/', '\\/')}`));
    assert.match(r.stderr, /not a directory|ENOTDIR|cannot create/i);
  });

  it('becoming full during a run: the incident fails, no partial files remain, the error is counted, and it recovers', { skip: process.getuid?.() !== 0 ? 'needs root to mount a small tmpfs' : false }, async () => {
    const s = await server('disk-full');
    const dir = tempDir();
    const mnt = join(dir, 'profiles');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=128k', 'tmpfs', mnt]);
    cleanups.push(() => {
      execFileSync('umount', ['-l', mnt]);
    });
    const d = await daemon(`${base}
servers: [ { url: "${s.monitorUrl}", prof_url: "${s.profUrl}" } ]
`, dir);
    await waitFor(async () => (await d.metric('nats_autoprof_up', { server: 'disk-full' })) === 1, { what: 'up' });
    // Fill the disk.
    const filler = join(mnt, 'filler');
    try {
      writeFileSync(filler, Buffer.alloc(1024 * 1024));
    } catch {
      // ENOSPC: exactly what we want
    }
    const post = (): Promise<Response> =>
      fetch(`${d.url}/api/v1/captures`, { method: 'POST', headers: { authorization: 'Bearer test-token' }, body: JSON.stringify({ server: 'disk-full', profiles: ['allocs', 'goroutine'] }) });
    assert.equal((await post()).status, 202);
    await waitFor(async () => ((await d.metric('nats_autoprof_storage_errors_total')) ?? 0) >= 1, { what: 'a storage error' });
    assert.equal(await d.metric('nats_autoprof_incidents_total', { status: 'failed' }), 1);
    assert.deepEqual(tree(mnt).filter((p) => p !== 'filler'), ['disk-full'], 'no incident and no temporary files');
    assert.ok(d.logsWith('incident could not be written').length === 1);
    rmSync(filler);
    await waitFor(async () => (await post()).status === 202, { what: 'the next capture to be admitted' });
    const inc = await oneIncident(mnt);
    assert.equal(inc.manifest.status, 'ok');
    assert.deepEqual(inc.manifest.files, ['allocs.pb.gz', 'goroutine.pb.gz', 'varz.json']);
  });
});

describe('SIGTERM during a long CPU capture', () => {
  it('waits for a capture that ends within shutdown_timeout, and exits 0 with it complete', async () => {
    const s = await server('term-wait');
    const d = await daemon(`${base}
shutdown_timeout: 20s
servers: [ { url: "${s.monitorUrl}", prof_url: "${s.profUrl}" } ]
triggers: [ { name: low-mem, metric: mem, above: 1MiB, profiles: [cpu] } ]
capture: { cpu_duration: 3s }
`);
    await waitFor(() => d.logsWith('capturing').length > 0, { what: 'the capture to start' });
    await cpuProfilerRunning(s);
    const from = d.logs.length;
    assert.equal(await d.stop('SIGTERM'), 0);
    const inc = await oneIncident(join(d.dir, 'profiles'), 1_000);
    assert.equal(inc.manifest.status, 'ok');
    // It waited for the capture: in order, the signal, the complete incident, the stop; no abort.
    const order = d.logs.slice(from).map((l) => String(l.msg));
    const written = order.findIndex((m) => m.startsWith('incident written: '));
    assert.ok(order.indexOf('stopping') >= 0 && order.indexOf('stopping') < written, order.join(' | '));
    assert.equal(order.indexOf('nats-autoprof stopped'), order.length - 1);
    assert.equal(d.logsWith('shutdown timeout reached; aborting captures in progress').length, 0);
  });

  it('aborts a 15 s capture at shutdown_timeout, exits 0, and leaves nothing half-written', async () => {
    const s = await server('term-abort');
    const d = await daemon(`${base}
shutdown_timeout: 2s
servers: [ { url: "${s.monitorUrl}", prof_url: "${s.profUrl}" } ]
triggers: [ { name: low-mem, metric: mem, above: 1MiB, profiles: [cpu] } ]
capture: { cpu_duration: 15s }
`);
    await waitFor(() => d.logsWith('capturing').length > 0, { what: 'the capture to start' });
    await cpuProfilerRunning(s);
    const t0 = Date.now();
    assert.equal(await d.stop('SIGTERM'), 0);
    const took = Date.now() - t0;
    // At least shutdown_timeout (a slow machine only adds to it); well before the 15 s capture would end.
    assert.ok(took >= 1_800 && took < 15_000, `stopped after ${took} ms`);
    const root = join(d.dir, 'profiles');
    assert.deepEqual(tree(root).filter((p) => p.includes('.tmp-')), []);
    const inc = await oneIncident(root, 1_000);
    assert.equal(inc.manifest.status, 'failed');
    assert.equal(inc.manifest.profiles[0]?.error, 'aborted: the daemon was stopped (shutdown_timeout reached) before this profile was complete');
    assert.deepEqual(readdirSync(inc.dir).sort(), ['incident.json', 'varz.json']);
    assert.equal(d.logsWith('shutdown timeout reached; aborting captures in progress').length, 1);
  });
});

describe('another client holding the CPU profiler the whole time', () => {
  it('retries with backoff, then records a clear error; no busy loop', async () => {
    const s = await server('held');
    const holder = fetch(`${s.profUrl}/debug/pprof/profile?seconds=8`).then((r) => r.arrayBuffer());
    await cpuProfilerRunning(s);
    const d = await daemon(`${base}
log: { level: debug }
servers: [ { url: "${s.monitorUrl}" } ]
${sysOf(s)}
triggers: [ { name: low-mem, metric: mem, above: 1MiB, profiles: [cpu, allocs] } ]
capture: { via: system_account, cpu_duration: 1s, timeout: 2s }
`);
    const inc = await oneIncident(join(d.dir, 'profiles'));
    const cpu = inc.manifest.profiles.find((p) => p.name === 'cpu');
    const m = /^server could not profile: .*cpu profiling already in use \(gave up after (\d+) attempts: another client holds the CPU profiler\)$/.exec(cpu?.error ?? '');
    assert.ok(m, cpu?.error ?? 'no error');
    const attempts = Number(m[1]);
    assert.ok(attempts >= 2 && attempts <= 6, `${attempts} attempts in 3 s`);
    assert.equal(d.logsWith('cpu profiler busy; retrying').length, attempts - 1);
    const allocs = inc.manifest.profiles.find((p) => p.name === 'allocs');
    assert.equal(allocs?.error, null, 'the other profiles are still taken');
    assert.equal(inc.manifest.status, 'partial');
    decodeProfile(Buffer.from(await holder));
  });
});
