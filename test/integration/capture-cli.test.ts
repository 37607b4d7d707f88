/**
 * `nats-autoprof capture`, the built CLI against a real 3-server cluster (n1, n10, n2): exact selection,
 * one incident per server in the daemon's layout, CPU length, text profiles, and the ways it must fail
 * clearly and quickly (nothing matched, bad usage, wrong password, a user outside the system account).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeProfile, profileDurationNs, sampleTypes } from '../../src/insight/pprof-summary.js';
import type { ProfileResult } from '../../src/store/manifest.js';
import { MAIN, removeTempDirs, runCli, tempDir } from '../helpers/daemon.js';
import { incidents, tree, type FoundIncident } from '../helpers/incidents.js';
import { APP_PASSWORD, APP_USER, cleanupTempDirs, startFleetCluster, SYS_PASSWORD, SYS_USER, type NatsServer } from '../helpers/nats-server.js';

let cluster: NatsServer[] = [];

before(async () => {
  cluster = await startFleetCluster();
});
after(async () => {
  await Promise.all(cluster.map((s) => s.stop('SIGKILL')));
  cleanupTempDirs();
  removeTempDirs();
});

function url(): string {
  return (cluster[0] as NatsServer).natsUrl;
}

function sys(): string[] {
  return ['--server', url(), '--user', SYS_USER, '--password', SYS_PASSWORD];
}

async function timed(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const t = performance.now();
  const r = await runCli(args, env);
  return { ...r, ms: performance.now() - t };
}

/**
 * Runs a command that must fail "at once": without waiting for a timeout (connect: 5 s, discovery: 3 s).
 * Node's own start-up is not part of that and swings by seconds on a loaded machine (+3 s from one run to
 * the next with every core busy), so each attempt is timed against a CLI run that starts and exits at
 * argument checking, taken just before it; `check` asserts the outcome of every attempt. Up to three
 * attempts: one within AT_ONCE_MS of its start-up passes. A command that waits for a timeout never is.
 */
const AT_ONCE_MS = 2_500;
async function failsAtOnce(args: string[], check: (r: Awaited<ReturnType<typeof timed>>) => void): Promise<void> {
  const seen: string[] = [];
  for (let attempt = 1; attempt <= 3; attempt++) {
    const startUp = await timed(['capture']);
    assert.equal(startUp.code, 2, startUp.stderr);
    const r = await timed(args);
    check(r);
    if (r.ms < startUp.ms + AT_ONCE_MS) return;
    seen.push(`${Math.round(r.ms)} ms (start-up ${Math.round(startUp.ms)} ms)`);
  }
  assert.fail(`never within ${AT_ONCE_MS} ms of the start-up: ${seen.join(', ')}`);
}

function profileOf(inc: FoundIncident, name: string): ProfileResult {
  const p = inc.manifest.profiles.find((x) => x.name === name);
  assert.ok(p, `${name} in ${inc.dir}`);
  return p;
}

/** The file exists, matches the manifest's size and sha256, and is returned. */
function fileOf(inc: FoundIncident, p: ProfileResult): Buffer {
  assert.equal(p.error, null);
  assert.ok(p.file);
  const data = readFileSync(join(inc.dir, p.file));
  assert.equal(data.length, p.bytes);
  assert.equal(createHash('sha256').update(data).digest('hex'), p.sha256);
  return data;
}

describe('capture: selection and incidents', () => {
  it('captures allocs from the servers carrying a tag, one incident each', async () => {
    const dir = tempDir();
    const r = await timed(['capture', 'allocs', '--tags', 'az:eu-1', '--dir', dir, ...sys()]);
    assert.equal(r.code, 0, r.stderr);
    const found = incidents(dir);
    assert.deepEqual(found.map((i) => i.manifest.server.name).sort(), ['n1', 'n2']);
    assert.deepEqual(tree(dir).filter((p) => p.includes('.tmp-')), []);
    for (const inc of found) {
      const m = inc.manifest;
      const name = m.server.name;
      assert.equal(m.reason, 'manual');
      assert.equal(m.note, 'nats-autoprof capture');
      assert.equal(m.status, 'ok');
      assert.equal(m.via, 'system_account');
      assert.equal(m.trigger, null);
      assert.equal(m.server.cluster, 'fleet');
      assert.equal(m.server.url, null);
      assert.match(m.server.id ?? '', /^N[A-Z0-9]{55}$/);
      assert.match(m.server.version ?? '', /^2\.\d+\.\d+/);
      assert.ok(m.server.tags.includes('az:eu-1'));
      assert.deepEqual(m.files, ['allocs.pb.gz', 'statsz.json']);
      assert.match(inc.dir, new RegExp(`/${name}/\\d{8}T\\d{6}\\.\\d{3}Z-manual$`));
      assert.equal(m.id, `${name}~${inc.dir.split('/').pop()}`);
      const allocs = profileOf(inc, 'allocs');
      assert.equal(allocs.via, 'system_account');
      const data = fileOf(inc, allocs);
      assert.equal(data[0], 0x1f, 'gzip as the server wrote it');
      decodeProfile(data);
      assert.equal(allocs.sample_type, 'alloc_space');
      assert.ok(allocs.top.length > 0);
      const statsz = JSON.parse(readFileSync(join(inc.dir, 'statsz.json'), 'utf8')) as { server: { name: string; id: string } };
      assert.equal(statsz.server.name, name);
      assert.equal(statsz.server.id, m.server.id);
      // One line per server and profile: the file as saved, and its top function.
      const file = join(inc.dir, 'allocs.pb.gz');
      const line = r.stdout.split('\n').find((l) => l.startsWith(`${name} `));
      assert.ok(line, r.stdout);
      assert.equal(line, `${name} allocs  ${file}  top: ${allocs.top[0]?.function} (${((allocs.top[0]?.share ?? 0) * 100).toFixed(1)}%)`);
    }
    assert.match(r.stdout, /go tool pprof -http=: \S+\.pb\.gz/);
    assert.equal(r.stderr, '', 'nothing on stderr when it is not a terminal');
  });

  it('takes a CPU profile as long as --timeout, from the one server named (password from $NATS_PASSWORD)', async () => {
    const dir = tempDir();
    const r = await timed(['capture', 'cpu', '--timeout', '2s', '--name', 'n10', '--dir', dir, '--server', url(), '--user', SYS_USER], {
      NATS_PASSWORD: SYS_PASSWORD,
    });
    assert.equal(r.code, 0, r.stderr);
    const found = incidents(dir);
    assert.deepEqual(found.map((i) => i.manifest.server.name), ['n10']);
    const inc = found[0] as FoundIncident;
    const cpu = profileOf(inc, 'cpu');
    const data = fileOf(inc, cpu);
    assert.deepEqual(sampleTypes(data).map((t) => t.type), ['samples', 'cpu']);
    const ns = profileDurationNs(data) ?? 0;
    assert.ok(ns >= 1.8e9 && ns <= 3e9, `cpu profile lasted ${ns / 1e9}s, asked for 2s`);
    assert.ok(cpu.duration_ms >= 1_900, `capture took ${cpu.duration_ms} ms`);
    assert.equal(cpu.sample_type, 'cpu');
    assert.match(r.stdout, /^n10 cpu {2}\S+\/cpu\.pb\.gz {2}top: /m);
    assert.ok(!r.stdout.includes(SYS_PASSWORD) && !r.stderr.includes(SYS_PASSWORD));
  });

  it('--name n1 selects n1 only, never n10; a glob selects both', async () => {
    const dir = tempDir();
    const r = await timed(['capture', 'heap', '--name', 'n1', '--dir', dir, ...sys()]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(incidents(dir).map((i) => i.manifest.server.name), ['n1']);
    assert.equal(r.stdout.split('\n').filter((l) => /^n1\S* heap/.test(l)).length, 1);

    const globDir = tempDir();
    const g = await timed(['capture', 'heap', '--name', 'n1*', '--dir', globDir, ...sys()]);
    assert.equal(g.code, 0, g.stderr);
    assert.deepEqual(incidents(globDir).map((i) => i.manifest.server.name).sort(), ['n1', 'n10']);
  });

  it('--level 1 saves a text profile without a summary', async () => {
    const dir = tempDir();
    const r = await timed(['capture', 'goroutine', '--level', '1', '--name', 'n2', '--dir', dir, ...sys()]);
    assert.equal(r.code, 0, r.stderr);
    const [inc] = incidents(dir);
    assert.ok(inc);
    const g = profileOf(inc, 'goroutine');
    assert.equal(g.file, 'goroutine.txt');
    assert.deepEqual(g.top, []);
    assert.equal(g.sample_type, null);
    const text = fileOf(inc, g).toString('utf8');
    assert.match(text, /^goroutine profile: total \d+/);
    assert.deepEqual(inc.manifest.files, ['goroutine.txt', 'statsz.json']);
    assert.equal(r.stdout.trim(), `n2 goroutine  ${join(inc.dir, 'goroutine.txt')}`);
  });

  it('--config uses the file\'s system_account and ignores its select', async () => {
    const dir = tempDir();
    const config = join(dir, 'autoprof.yaml');
    writeFileSync(
      config,
      `system_account:\n  url: [${cluster.map((s) => s.natsUrl).join(', ')}]\n  user: ${SYS_USER}\n  password: \${SYS_PW}\n  select: { names: [n2] }\n`,
    );
    const out = join(dir, 'out');
    const r = await timed(['capture', 'allocs', 'goroutine', '--config', config, '--cluster', 'fleet', '--name', 'n1', '--dir', out], { SYS_PW: SYS_PASSWORD });
    assert.equal(r.code, 0, r.stderr);
    const found = incidents(out);
    assert.deepEqual(found.map((i) => i.manifest.server.name), ['n1']);
    assert.deepEqual(found[0]?.manifest.files, ['allocs.pb.gz', 'goroutine.pb.gz', 'statsz.json']);
    assert.deepEqual(r.stdout.split('\n').filter((l) => l.startsWith('n1 ')).map((l) => l.split(/\s+/)[1]), ['allocs', 'goroutine']);
  });

  it('a profile that fails is reported, the rest kept (partial incident, exit 1)', async () => {
    const busyDir = tempDir();
    // Holds n1's CPU profiler for 4s, so that a second CPU profile is refused by the Go runtime.
    const holder = spawn(process.execPath, [MAIN, 'capture', 'cpu', '--timeout', '4s', '--name', 'n1', '--dir', busyDir, ...sys()], { stdio: 'ignore' });
    const held = new Promise<number | null>((r) => holder.once('exit', r));
    try {
      await new Promise((r) => setTimeout(r, 1_500));
      const dir = tempDir();
      const r = await timed(['capture', 'cpu', 'allocs', '--timeout', '1s', '--name', 'n1', '--dir', dir, ...sys()]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /^n1 cpu {5}FAILED: server could not profile: .*cpu profiling already in use$/m);
      assert.match(r.stdout, /^n1 allocs {2}\S+\/allocs\.pb\.gz {2}top: /m);
      const [inc] = incidents(dir);
      assert.ok(inc);
      assert.equal(inc.manifest.status, 'partial');
      assert.equal(profileOf(inc, 'cpu').file, null);
      assert.match(profileOf(inc, 'cpu').error ?? '', /already in use/);
      assert.deepEqual(inc.manifest.files, ['allocs.pb.gz', 'statsz.json']);
    } finally {
      assert.equal(await held, 0);
    }
  });
});

describe('capture: clear failures', () => {
  it('a selector that matches nothing exits 1 and lists who answered', async () => {
    const dir = tempDir();
    const r = await timed(['capture', 'heap', '--cluster', 'flee', '--dir', dir, ...sys()]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^nats-autoprof: no server matched cluster flee; 3 servers answered:$/m);
    for (const n of ['n1', 'n10', 'n2']) assert.match(r.stderr, new RegExp(`^  ${n} +cluster fleet  tags `, 'm'));
    assert.equal(r.stdout, '');
    assert.equal(existsSync(dir) ? tree(dir).length : 0, 0, 'nothing written');
  });

  const usage: [string, string[], RegExp][] = [
    ['an unknown profile', ['capture', 'cpu', 'bogus'], /^nats-autoprof: unknown profile "bogus"; valid profiles: cpu allocs heap goroutine block mutex threadcreate allocs_delta$/m],
    ['a 20s CPU profile', ['capture', 'cpu', '--timeout', '20s'], /--timeout 20s: for cpu, --timeout is the profile's length and must be between 1s and 15s/],
    ['no profile', ['capture'], /name at least one profile/],
  ];
  for (const [what, args, message] of usage) {
    it(`${what} is a usage error (exit 2)`, async () => {
      const r = await timed([...args, ...sys()]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, message);
      assert.equal(r.stdout, '');
    });
  }

  it('needs exactly one of --server and --config', async () => {
    const none = await timed(['capture', 'heap']);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /say where to connect: --server URL/);
    const both = await timed(['capture', 'heap', '--config', 'x.yaml', ...sys()]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /use either --config or --server, not both/);
  });

  it('a wrong password exits 1 at once with an authorization message', async () => {
    const dir = tempDir();
    await failsAtOnce(['capture', 'heap', '--dir', dir, '--server', url(), '--user', SYS_USER, '--password', 'not-the-password'], (r) => {
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^nats-autoprof: cannot connect to nats:\/\/127\.0\.0\.1:\d+: authorization violation: the server refused the credentials; check --user and --password$/m);
      assert.ok(!r.stderr.includes('not-the-password'));
      assert.equal(tree(dir).length, 0);
    });
  });

  it('a user outside the system account exits 1 at once, saying so', async () => {
    const dir = tempDir();
    await failsAtOnce(['capture', 'heap', '--dir', dir, '--server', url(), '--user', APP_USER, '--password', APP_PASSWORD], (r) => {
      assert.equal(r.code, 1);
      assert.match(r.stderr, /no responders for \$SYS\.REQ\.SERVER\.PING\.STATSZ: not connected as a system-account user \(user "app" is in an account/);
      assert.equal(tree(dir).length, 0);
    });
  });
});
