/**
 * `nats-autoprof demo` end to end, as a new user runs it: the built CLI gets a nats-server, starts it and
 * the daemon, loads the server, prints plain lines, writes incidents whose profiles decode, and leaves no
 * process behind. Also: config/demo.yaml is a valid configuration once the demo's variables are set.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { decodeProfile, sampleTypes } from '../../src/insight/pprof-summary.js';
import { MAIN, ROOT, removeTempDirs, runCli, tempDir } from '../helpers/daemon.js';
import { incidents, tree } from '../helpers/incidents.js';

const DEMO_CONFIG = join(ROOT, 'config', 'demo.yaml');

/** Pids the demo reported, killed in `after` should a failing test leave them running. */
const reported: number[] = [];
after(() => {
  for (const pid of reported) {
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
  removeTempDirs();
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Runs the CLI with a hard limit: a demo that hangs is killed and the test fails instead of hanging. */
function runDemo(args: string[], cwd: string, limitMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MAIN, 'demo', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      const m = /pids: server=(\d+) daemon=(\d+)/.exec(stdout);
      if (m && reported.length === 0) reported.push(Number(m[1]), Number(m[2]));
    });
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), limitMs);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('nats-autoprof demo', () => {
  it('runs a server, the daemon and load for 40s, writes incidents that decode, and stops everything', { timeout: 120_000 }, async () => {
    const cwd = tempDir('nats-autoprof-demo-test-');
    const r = await runDemo(['--duration', '40s', '--dir', 'incidents'], cwd, 100_000);
    const out = r.stdout;
    assert.equal(r.code, 0, `exit code 0\n--- stdout\n${out}\n--- stderr\n${r.stderr}`);

    // Plain lines for people, not the daemon's JSON.
    assert.deepEqual(out.split('\n').filter((l) => l.trimStart().startsWith('{')), [], 'no JSON lines on stdout');
    assert.match(out, /▶ nats-server \d+\.\d+\.\d+ on 127\.0\.0\.1:\d+ \(monitoring :\d+, prof_port :\d+\)/);
    assert.match(out, /▶ watching demo-nats every 1s; rules: demo-high-cpu \(cpu > 25% for 3s, then cpu 5s \+ allocs\), demo-memory \(mem > \d+MiB for 1s, then heap \+ allocs\)/);
    assert.match(out, /▶ load wave 1: busy for 10s/);
    assert.match(out, /rule demo-\S+ pending on demo-nats \(/);
    assert.match(out, /rule demo-\S+ fired on demo-nats \(/);
    assert.match(out, /capturing (cpu 5s \+ allocs|heap \+ allocs) from demo-nats/);
    assert.match(out, /incident written: incidents\/demo-nats\/\d{8}T\d{6}\.\d{3}Z-demo-\S+ {2}\(ok, via system_account\)/);
    assert.match(out, /top (cpu|heap|allocs) \[\w+\]: /);
    assert.match(out, /▶ stopping \(ran for 40s\)/);
    assert.match(out, /▶ stopped: nats-server \(pid \d+\), the daemon \(pid \d+\); connections closed/);
    assert.match(out, /go tool pprof -top incidents\/demo-nats\/\S+\/(cpu|heap)\.pb\.gz/);
    assert.match(out, /go tool pprof -http=: incidents\/demo-nats\/\S+\.pb\.gz/);

    // Incidents: triggered by the demo's rules, every profile decodes.
    const dir = join(cwd, 'incidents');
    const found = incidents(dir);
    assert.ok(found.length >= 1, `at least one incident in ${dir}: ${tree(dir).join(', ')}`);
    for (const inc of found) {
      const m = inc.manifest;
      assert.equal(m.reason, 'trigger');
      assert.equal(m.server.name, 'demo-nats');
      assert.ok(['demo-high-cpu', 'demo-memory'].includes(m.trigger?.name ?? ''), `trigger ${m.trigger?.name}`);
      assert.equal(m.status, 'ok', JSON.stringify(m.profiles.map((p) => p.error)));
      for (const p of m.profiles) {
        assert.ok(p.file, `${p.name} has a file`);
        const data = readFileSync(join(inc.dir, p.file));
        decodeProfile(data);
        const types = sampleTypes(data).map((t) => t.type);
        if (p.name === 'cpu') assert.deepEqual(types, ['samples', 'cpu']);
        else assert.deepEqual(types, ['alloc_objects', 'alloc_space', 'inuse_objects', 'inuse_space']);
      }
      assert.ok(out.includes(`incident written: incidents/demo-nats/${inc.dir.split('/').pop()}`), `${inc.dir} was announced`);
    }
    assert.deepEqual(tree(dir).filter((p) => p.includes('.tmp-')), [], 'no half-written incident');

    // Nothing it started outlives it.
    const pids = /pids: server=(\d+) daemon=(\d+)/.exec(out);
    assert.ok(pids, 'the demo prints the pids it started');
    for (const pid of [Number(pids[1]), Number(pids[2])]) assert.equal(alive(pid), false, `pid ${pid} is gone`);
  });

  it('refuses a bad --duration with exit code 2', async () => {
    const r = await runCli(['demo', '--duration', '40']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--duration: "40" has no unit/);
    assert.equal(r.stdout, '');
  });
});

describe('config/demo.yaml', () => {
  const env = {
    DEMO_NATS_PORT: '41222',
    DEMO_MONITOR_PORT: '48222',
    DEMO_PROF_PORT: '46543',
    DEMO_HTTP_PORT: '49745',
    DEMO_SYS_PASSWORD: 'demo-secret-pw',
    DEMO_MEM_ABOVE: '48MiB',
    DEMO_CAPTURE_VIA: 'auto',
    DEMO_PROFILES_DIR: '/tmp/nats-autoprof-demo-check',
  };

  it('passes check with the variables the demo sets', async () => {
    const r = await runCli(['check', '--config', DEMO_CONFIG], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /listen: 127\.0\.0\.1:49745/);
    assert.match(r.stdout, /url: http:\/\/127\.0\.0\.1:48222\n {4}name: demo-nats\n {4}prof_url: http:\/\/127\.0\.0\.1:46543/);
    assert.match(r.stdout, /url: nats:\/\/127\.0\.0\.1:41222\n {2}user: sys\n {2}password: "\[redacted\]"/);
    assert.match(r.stdout, /name: demo-memory\n {4}metric: mem\n {4}above: 48MiB/);
    assert.match(r.stdout, /dir: \/tmp\/nats-autoprof-demo-check/);
    assert.ok(!r.stdout.includes('demo-secret-pw'), 'the password is redacted');
  });

  it('passes check with via prof_port too', async () => {
    const r = await runCli(['check', '--config', DEMO_CONFIG], { ...env, DEMO_CAPTURE_VIA: 'prof_port' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /via: prof_port/);
  });

  it('names the missing password variable', async () => {
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const clean = Object.fromEntries(Object.entries({ ...process.env, ...env }).filter(([k]) => k !== 'DEMO_SYS_PASSWORD'));
      const p = spawn(process.execPath, [MAIN, 'check', '--config', DEMO_CONFIG], { env: clean, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      p.on('close', (code) => resolve({ code, stderr }));
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /system_account\.password: environment variable DEMO_SYS_PASSWORD is not set/);
  });
});
