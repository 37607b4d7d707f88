/**
 * Benchmark 2: whole-fleet watching through the system account. A responder on a real nats-server answers
 * `$SYS.REQ.SERVER.PING.STATSZ` as N simulated servers (real reply format); the daemon discovers and watches
 * all of them (discovery round, parse, rules, metrics) every 1 s. Baseline, same run, same server and
 * responder: a minimal collector that only gathers and JSON.parses the replies (bench/lib/baseline-statsz.mjs).
 *
 *   node --import tsx bench/fleet.ts [--n 100,1000,5000] [--duration 60] [--smoke] [--cpu-prof DIR]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanupTempDirs, startServer, SYS_PASSWORD, SYS_USER, type NatsServer } from '../test/helpers/nats-server.js';
import { ask, forkPlain, forkTs, sleep, stopChild } from './lib/children.js';
import { daemonConfig } from './lib/config.js';
import { BenchDaemon, Scraper } from './lib/daemon.js';
import { delta, histogram, quantile, sum, type Exposition } from './lib/prom.js';
import { readProc } from './lib/proc.js';
import { percentile } from './lib/prom.js';
import { log, row, runAlone, type BenchOptions, type BenchResult, type Row } from './lib/report.js';

const BENCH = 'fleet';
const MB = 1024 * 1024;
const STALL_MS = 250;

interface Phase {
  cpuSec: number;
  wallSec: number;
  rounds: number;
  /** Mean time to collect a round (ms). */
  meanMs: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  byEnd: Record<string, number>;
  hwmBytes: number;
  servers: number;
}

interface Mark {
  rounds: number;
  replies: number;
  maxReplies: number;
  byEnd: Record<string, number>;
  times: number[];
}

async function until(what: string, timeoutMs: number, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(500);
  }
}

async function baselinePhase(o: BenchOptions, srv: NatsServer, n: number, warmupS: number, durationS: number): Promise<Phase> {
  const b = forkPlain('lib/baseline-statsz.mjs', [], o.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProf, '--cpu-prof-name', `baseline-fleet-n${n}.cpuprofile`] : []);
  try {
    await ask(b, { type: 'start', url: srv.natsUrl, user: SYS_USER, pass: SYS_PASSWORD, intervalMs: 1000, timeoutMs: 1000, stallMs: STALL_MS, expected: n + 1 }, 'started');
    const mark = (): Promise<Mark> => ask<Mark>(b, { type: 'mark' }, 'mark');
    await until('the baseline to collect every reply', 60_000, async () => (await mark()).maxReplies >= n + 1);
    await sleep(warmupS * 1000);
    const m0 = await mark();
    const p0 = readProc(b.pid as number);
    await sleep(durationS * 1000);
    const p1 = readProc(b.pid as number);
    const m1 = await mark();
    const times = m1.times.slice(m0.times.length);
    const byEnd: Record<string, number> = {};
    for (const [k, v] of Object.entries(m1.byEnd)) byEnd[k] = v - (m0.byEnd[k] ?? 0);
    return {
      cpuSec: p1.cpuSec - p0.cpuSec,
      wallSec: (p1.at - p0.at) / 1000,
      rounds: m1.rounds - m0.rounds,
      meanMs: times.length ? times.reduce((a, t) => a + t, 0) / times.length : null,
      p50Ms: percentile(times, 0.5),
      p99Ms: percentile(times, 0.99),
      byEnd,
      hwmBytes: p1.hwmBytes,
      servers: m1.maxReplies,
    };
  } finally {
    await stopChild(b);
  }
}

function rounds(e: Exposition): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of e.get('nats_autoprof_discovery_rounds_total') ?? []) out[s.labels['ended'] as string] = s.value;
  return out;
}

async function daemonPhase(o: BenchOptions, srv: NatsServer, n: number, warmupS: number, durationS: number): Promise<Phase> {
  const dir = mkdtempSync(join(tmpdir(), 'nats-autoprof-bench-'));
  const config = daemonConfig({
    servers: [],
    intervalMs: 1000,
    timeoutMs: 1000,
    extra: `system_account:
  url: ${srv.natsUrl}
  user: ${SYS_USER}
  password: ${SYS_PASSWORD}
  discover: true
  stall: ${STALL_MS}ms
  forget_after: 60s
`,
  });
  const d = await BenchDaemon.start({ config, dir, cpuProfDir: o.cpuProf, readyTimeoutMs: 60_000 });
  let scraper: Scraper | undefined;
  try {
    await until('the daemon to discover every server', 120_000, async () => sum(await d.metrics(), 'nats_autoprof_discovery_servers') >= n + 1);
    scraper = new Scraper(d, o.scrapeMs);
    await sleep(warmupS * 1000);
    const e0 = await d.metrics();
    await d.profile(`fleet-n${n}`);
    const p0 = d.sample();
    await sleep(durationS * 1000);
    const p1 = d.sample();
    const prof = await d.endProfile();
    if (prof) log(o, `CPU profile of the window: ${prof}`);
    const e1 = await d.metrics();
    const h = delta(histogram(e0, 'nats_autoprof_discovery_duration_seconds'), histogram(e1, 'nats_autoprof_discovery_duration_seconds'));
    const r0 = rounds(e0);
    const r1 = rounds(e1);
    const byEnd: Record<string, number> = {};
    for (const [k, v] of Object.entries(r1)) if (v - (r0[k] ?? 0) > 0) byEnd[k] = v - (r0[k] ?? 0);
    const q = (x: number): number | null => {
      const v = quantile(h, x);
      return v === null ? null : v * 1000;
    };
    return {
      cpuSec: p1.cpuSec - p0.cpuSec,
      wallSec: (p1.at - p0.at) / 1000,
      rounds: Object.values(byEnd).reduce((a, b) => a + b, 0),
      meanMs: h.count > 0 ? (h.sum / h.count) * 1000 : null,
      p50Ms: q(0.5),
      p99Ms: q(0.99),
      byEnd,
      hwmBytes: p1.hwmBytes,
      servers: sum(e1, 'nats_autoprof_discovery_servers'),
    };
  } finally {
    scraper?.stop();
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function fleet(o: BenchOptions): Promise<BenchResult> {
  const ns = o.n ?? (o.smoke ? [10] : [100, 1000, 5000]);
  const durationS = o.duration ?? (o.smoke ? 2 : 60);
  const warmupS = o.smoke ? 1 : 5;
  const rows: Row[] = [];
  const notes: string[] = [`interval 1 s, round timeout 1 s, stall ${STALL_MS} ms; ${durationS} s measured per phase after ${warmupS} s warm-up; replies sent in one burst by the responder`];
  log(o, `${BENCH}: starting a nats-server`);
  const srv = await startServer({ name: 'bench-sys', profPort: false });
  try {
    for (const n of ns) {
      const c = `N=${n}`;
      const responder = forkTs('lib/statsz-responder.ts');
      try {
        await ask(responder, { type: 'start', url: srv.natsUrl, user: SYS_USER, pass: SYS_PASSWORD, count: n }, 'ready');
        log(o, `${BENCH} ${c}: baseline collector for ${durationS} s`);
        const b = await baselinePhase(o, srv, n, warmupS, durationS);
        log(o, `${BENCH} ${c}: daemon for ${durationS} s`);
        const d = await daemonPhase(o, srv, n, warmupS, durationS);
        const perCycle = (p: Phase): number | null => (p.rounds > 0 ? (p.cpuSec / p.rounds) * 1000 : null);
        rows.push(
          row(BENCH, c, 'time to collect all replies, mean', 'ms', d.meanMs, b.meanMs),
          row(BENCH, c, 'time to collect all replies, p99', 'ms', d.p99Ms, b.p99Ms),
          row(BENCH, c, 'CPU per 1 s cycle', 'ms', perCycle(d), perCycle(b), n === 5000 ? '< 500 ms (half a core)' : '', (v) => v < 500),
          row(BENCH, c, 'CPU, share of one core', '%', (100 * d.cpuSec) / d.wallSec, (100 * b.cpuSec) / b.wallSec),
          row(BENCH, c, 'peak RSS (VmHWM)', 'MB', d.hwmBytes / MB, b.hwmBytes / MB),
        );
        const ends = (x: Record<string, number>): string => Object.entries(x).map(([k, v]) => `${k} ${v}`).join(', ');
        notes.push(`${c}: daemon ${d.rounds} rounds (${ends(d.byEnd)}), ${d.servers} servers watched; baseline ${b.rounds} rounds (${ends(b.byEnd)}), ${b.servers} replies`);
      } finally {
        await stopChild(responder);
      }
    }
  } finally {
    await srv.stop();
    cleanupTempDirs();
  }
  return { bench: BENCH, title: 'system-account fleet', rows, notes, seconds: 0 };
}

runAlone(import.meta.url, fleet);
