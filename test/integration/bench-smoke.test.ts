/**
 * CI smoke of the benchmarks in bench/: each one runs alone with --smoke (tiny N, a few seconds) against the
 * built daemon, and must complete and report its expected figures. Times are never asserted: these
 * machines are shared and noisy; the real numbers live in BENCHMARKS.md.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ROOT } from '../helpers/daemon.js';
import type { Row } from '../../bench/lib/report.js';

interface Report {
  machine: string;
  date: string;
  results: { bench: string; title: string; rows: Row[]; notes: string[] }[];
  failures?: string[];
}

const dir = mkdtempSync(join(tmpdir(), 'nats-autoprof-bench-smoke-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(file: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', file), '--smoke', '--quiet', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
  });
}

/** Runs bench/<name>.ts --smoke and checks that every expected figure is there with a number. */
async function smoke(name: string, figures: string[], baselines: string[]): Promise<Report> {
  const json = join(dir, `${name}.json`);
  const r = await run(`${name}.ts`, ['--json', json]);
  assert.equal(r.code, 0, `bench/${name}.ts --smoke failed:\n${r.stderr}\n${r.stdout}`);
  const report = JSON.parse(readFileSync(json, 'utf8')) as Report;
  assert.match(report.machine, /Node v\d+/);
  assert.equal(report.results.length, 1);
  const result = report.results[0] as Report['results'][number];
  assert.equal(result.bench, name);
  assert.deepEqual([...new Set(result.rows.map((x) => x.figure))], figures);
  for (const row of result.rows) {
    assert.equal(row.bench, name);
    assert.ok(typeof row.value === 'number' && Number.isFinite(row.value), `${name} ${row.case} "${row.figure}" has no value`);
    if (baselines.includes(row.figure)) assert.ok(typeof row.baseline === 'number' && Number.isFinite(row.baseline), `${name} "${row.figure}" has no baseline`);
    if (row.goal) assert.ok(row.met === true || row.met === false, `${name} "${row.figure}" has a goal but no verdict`);
  }
  assert.ok(result.notes.length > 0);
  // The table printed for a human has the same rows.
  for (const f of figures) assert.ok(r.stdout.includes(`| ${f} |`), `the table lacks "${f}"`);
  return report;
}

describe('benchmarks (smoke: complete and report, never timed)', () => {
  it('polling: HTTP fleet polling against simulated endpoints, with the undici GET + JSON.parse baseline', async () => {
    await smoke(
      'polling',
      ['CPU per server-poll', 'CPU, share of one core', 'peak RSS (VmHWM)', 'RSS at the end of the window', 'poll lateness p50', 'poll lateness p99', 'polls done / scheduled'],
      ['CPU per server-poll', 'peak RSS (VmHWM)', 'poll lateness p99'],
    );
  });

  it('fleet: STATSZ discovery of simulated servers on a real nats-server, with the minimal collector baseline', async () => {
    await smoke(
      'fleet',
      ['time to collect all replies, mean', 'time to collect all replies, p99', 'CPU per 1 s cycle', 'CPU, share of one core', 'peak RSS (VmHWM)'],
      ['time to collect all replies, mean', 'CPU per 1 s cycle', 'peak RSS (VmHWM)'],
    );
  });

  it('detection: load on a real nats-server until the daemon decides to capture', async () => {
    const report = await smoke(
      'detection',
      ['daemon added latency p50', 'daemon added latency p99', 'end to end p50 (vs floor)', 'end to end p99 (vs floor)'],
      ['end to end p50 (vs floor)', 'end to end p99 (vs floor)'],
    );
    assert.match(report.results[0]?.notes.join(' ') ?? '', /server lag/);
  });

  it('capture-memory: captures of large profiles from a fake prof_port', async () => {
    await smoke('capture-memory', ['peak RSS growth (× one profile)', 'RSS before captures / peak', 'capture throughput'], ['peak RSS growth (× one profile)']);
  });

  it('footprint: an idle daemon watching 10 servers', async () => {
    await smoke('footprint', ['RSS (max over the window)', 'peak RSS (VmHWM, incl. start-up)', 'CPU, share of one core'], ['RSS (max over the window)', 'CPU, share of one core']);
  });

  it('capture-lateness: poll lateness during captures, against the same daemon without captures', async () => {
    const report = await smoke('capture-lateness', ['poll lateness p99 during captures', 'poll lateness p50 during captures', 'captures in the window'], ['poll lateness p99 during captures', 'poll lateness p50 during captures']);
    const rows = report.results[0]?.rows ?? [];
    assert.ok(rows.some((x) => x.figure === 'captures in the window' && (x.value ?? 0) >= 1), 'no capture was made in the window');
  });

  it('store-index: a page and a write on a store with many incidents, before and after (here: this tree twice)', async () => {
    await smoke('store-index', ['list one page (50), median', 'write one incident + retention pass, median', 'open the store (init)'], ['list one page (50), median', 'write one incident + retention pass, median', 'open the store (init)']);
  });

  it('object-store: uploads, pages and reads through a JetStream object store, against the local store', async () => {
    await smoke(
      'object-store',
      ['upload one incident (3 objects), median', "B's first page (its manifests read)", 'first page (50): from the bucket / from the local index', 'list the bucket (every object info)', "first read of another replica's file / local open", "follow the bucket's retention (markers + listing)"],
      ['first page (50): from the bucket / from the local index', "first read of another replica's file / local open"],
    );
  });

  it('http-client: the poller\'s HTTP client against undici, each in its own process', async () => {
    await smoke('http-client', ['CPU per GET (http1 vs undici)', 'peak RSS (VmHWM)', 'JS heap after a full GC', 'RSS at the end of the window'], ['CPU per GET (http1 vs undici)', 'peak RSS (VmHWM)']);
  });

  it('server-cost: a real nats-server\'s own CPU idle, polled over HTTP and over the system account, and per /varz', async () => {
    const report = await smoke('server-cost', ['server CPU, share of one core', 'added by polling', 'server CPU per /varz answered'], []);
    const result = report.results[0];
    assert.deepEqual(result?.rows.map((x) => x.case), [
      'idle (no daemon)',
      'HTTP /varz @ 1 s',
      'HTTP /varz @ 1 s',
      'system account STATSZ @ 1 s',
      'system account STATSZ @ 1 s',
      '200 back-to-back /varz',
    ]);
    // The server itself counted the daemon's /varz requests in the HTTP window, and none in the others.
    assert.match(result?.notes.join(' ') ?? '', /the server answered \/varz 0 \(idle\), [1-9]\d* \(HTTP\), 0 \(system account\) times; the daemon counted [1-9]\d* polls and [1-9]\d* discovery rounds/);
  });

  it('--help prints the shared flags with their defaults and exits 0; an unknown flag exits 2 and points to --help', async () => {
    const help = await run('server-cost.ts', ['--help']);
    assert.equal(help.code, 0, help.stderr);
    assert.equal(help.stderr, '');
    assert.match(help.stdout, /^Benchmark: what polling costs the watched server\./);
    assert.match(help.stdout, /^Usage: node --import tsx bench\/server-cost\.ts \[options\]$/m);
    for (const flag of ['-h, --help', '--smoke', '--duration S', '--n N[,N...]', '--trials K', '--scrape S', '--named', '--baseline-spread', '--cpu-prof DIR', '--main PATH', '--node-args "..."', '--before PATH', '--only A,B', '--json FILE', '--quiet']) {
      assert.match(help.stdout, new RegExp(`^  ${flag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} +\\S`, 'm'), flag);
    }
    assert.match(help.stdout, /^  --scrape S +.*\(default: 15\)$/m);
    const bad = await run('footprint.ts', ['--bogus']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^Unknown option '--bogus'/);
    assert.match(bad.stderr, /^--help lists the options$/m);
    assert.equal(bad.stdout, '');
  });

  it('run.ts prints one table for the benchmarks it ran', async () => {
    const json = join(dir, 'run.json');
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => {
      const p = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'run.ts'), '--smoke', '--quiet', '--only', 'footprint', '--duration', '1', '--json', json], { cwd: ROOT });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      p.on('exit', (code) => res({ code, stdout, stderr }));
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\| benchmark \| case \| figure \| daemon \| baseline \| ratio \| goal \| met \|$/m);
    assert.match(r.stdout, /^\| footprint \| 10 servers @ 5 s \| CPU, share of one core \|/m);
    const report = JSON.parse(readFileSync(json, 'utf8')) as Report;
    assert.deepEqual(report.failures, []);
    assert.deepEqual(report.results.map((x) => x.bench), ['footprint']);
  });
});
