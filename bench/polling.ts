/**
 * Benchmark 1: HTTP fleet polling. A simulator serves N distinct varz documents as N monitoring endpoints
 * on loopback; the daemon (full pipeline: poll, parse, rules, metrics, scraped like Prometheus would)
 * watches all of them at a 1 s interval. Baseline, same run, same endpoints, same schedule: a minimal loop
 * doing only an undici GET and JSON.parse (bench/lib/baseline-poll.mjs).
 *
 *   node --import tsx bench/polling.ts [--n 3,10,100,1000,5000] [--duration 60] [--smoke] [--cpu-prof DIR] [--field-rules]
 * --max-in-flight K: the daemon's poll.max_in_flight.
 * --field-rules: five rules on varz fields per server (two rates, one escalating) instead of the two fleet rules.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ask, forkPlain, sleep, stopChild } from './lib/children.js';
import { daemonConfig, FIELD_RULES } from './lib/config.js';
import { BenchDaemon, Scraper } from './lib/daemon.js';
import { VarzFleet } from './lib/fleet-sim.js';
import { delta, fromCounts, histogram, quantile, type Histogram } from './lib/prom.js';
import { readProc, type ProcSample } from './lib/proc.js';
import { log, row, runAlone, type BenchOptions, type BenchResult, type Row } from './lib/report.js';

const BENCH = 'polling';
const BOUNDS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];
const MB = 1024 * 1024;

interface Phase {
  startupCpuSec: number;
  rssEndBytes: number;
  cpuSec: number;
  wallSec: number;
  polls: number;
  errors: number;
  hwmBytes: number;
  lateness: Histogram;
}

interface Mark {
  polls: number;
  errors: number;
  polledOnce: number;
  buckets: number[];
  count: number;
  sum: number;
}

async function waitFor(what: string, timeoutMs: number, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(500);
  }
}

async function baselinePhase(o: BenchOptions, urls: string[], intervalMs: number, warmupS: number, durationS: number): Promise<Phase> {
  // With --cpu-prof the baseline is profiled too (its whole run: start-up is a few ms of it).
  const b = forkPlain('lib/baseline-poll.mjs', [], o.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProf, '--cpu-prof-name', `baseline-polling-n${urls.length}.cpuprofile`] : []);
  try {
    const pid = b.pid as number;
    await ask(b, { type: 'start', urls, intervalMs, timeoutMs: intervalMs, spread: o.baselineSpread }, 'started');
    const mark = (): Promise<Mark> => ask<Mark>(b, { type: 'mark' }, 'mark');
    await waitFor('the baseline to poll every server', 120_000, async () => (await mark()).polledOnce >= urls.length);
    await sleep(warmupS * 1000);
    const m0 = await mark();
    const p0 = readProc(pid);
    await sleep(durationS * 1000);
    const p1 = readProc(pid);
    const m1 = await mark();
    const h = (m: Mark): Histogram => fromCounts(BOUNDS_MS, m.buckets, m.count, m.sum);
    return {
      startupCpuSec: p0.cpuSec,
      rssEndBytes: p1.rssBytes,
      cpuSec: p1.cpuSec - p0.cpuSec,
      wallSec: (p1.at - p0.at) / 1000,
      polls: m1.polls - m0.polls,
      errors: m1.errors - m0.errors,
      hwmBytes: p1.hwmBytes,
      lateness: delta(h(m0), h(m1)),
    };
  } finally {
    await stopChild(b);
  }
}

async function daemonPhase(
  o: BenchOptions,
  urls: string[],
  intervalMs: number,
  warmupS: number,
  durationS: number,
): Promise<Phase & { steadyAfterS: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'nats-autoprof-bench-'));
  // Servers are listed by URL only (the label comes from varz server_name), unless --named.
  const config = daemonConfig({
    servers: urls.map((url, i) => ({ url, profUrl: url, ...(o.named ? { name: `sim-${i}` } : {}) })),
    intervalMs,
    timeoutMs: intervalMs,
    ...(o.fieldRules ? { triggers: FIELD_RULES } : {}),
    maxInFlight: o.maxInFlight,
  });
  const d = await BenchDaemon.start({ config, dir, cpuProfDir: o.cpuProf, readyTimeoutMs: 120_000 });
  let scraper: Scraper | undefined;
  try {
    const t0 = performance.now();
    const polled = async (): Promise<number> => histogram(await d.metrics(), 'nats_autoprof_poll_duration_seconds').count;
    await waitFor('the daemon to poll every server', 120_000, async () => (await polled()) >= urls.length);
    // Steady state: the daemon keeps its schedule (>= 95 % of the polls due in 5 s) — start-up work
    // (labels taken from varz, first metrics) may take a while with thousands of servers.
    const stepS = o.smoke ? 1 : 5;
    let before = await polled();
    for (let waited = 0; ; waited += stepS) {
      await sleep(stepS * 1000);
      const now = await polled();
      if (now - before >= 0.95 * urls.length * ((stepS * 1000) / intervalMs)) break;
      if (waited > 300) throw new Error('the daemon did not keep its poll schedule within 5 minutes of start');
      before = now;
    }
    const steadyAfterS = (performance.now() - t0) / 1000;
    scraper = new Scraper(d, o.scrapeMs);
    await sleep(warmupS * 1000);
    const e0 = await d.metrics();
    await d.profile(`polling-n${urls.length}`);
    const p0: ProcSample = d.sample();
    await sleep(durationS * 1000);
    const p1 = d.sample();
    const prof = await d.endProfile();
    if (prof) log(o, `CPU profile of the window: ${prof}`);
    const e1 = await d.metrics();
    const polls = (e: typeof e0): number => histogram(e, 'nats_autoprof_poll_duration_seconds').count;
    const errors = (e: typeof e0): number => (e.get('nats_autoprof_polls_total') ?? []).filter((s) => s.labels['result'] === 'error').reduce((a, s) => a + s.value, 0);
    return {
      cpuSec: p1.cpuSec - p0.cpuSec,
      wallSec: (p1.at - p0.at) / 1000,
      polls: polls(e1) - polls(e0),
      errors: errors(e1) - errors(e0),
      hwmBytes: p1.hwmBytes,
      lateness: delta(histogram(e0, 'nats_autoprof_poll_lateness_seconds'), histogram(e1, 'nats_autoprof_poll_lateness_seconds')),
      startupCpuSec: p0.cpuSec,
      steadyAfterS,
      rssEndBytes: p1.rssBytes,
    };
  } finally {
    scraper?.stop();
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function polling(o: BenchOptions): Promise<BenchResult> {
  const ns = o.n ?? (o.smoke ? [5] : [3, 10, 100, 1000, 5000]);
  const durationS = o.duration ?? (o.smoke ? 2 : 60);
  const warmupS = o.smoke ? 1 : 5;
  const intervalMs = 1000;
  const rows: Row[] = [];
  const notes: string[] = [
    `interval 1 s, timeout 1 s, ${durationS} s measured per phase after ${warmupS} s warm-up; /metrics scraped every ${o.scrapeMs / 1000} s; ` +
      `baseline's first polls ${o.baselineSpread ? 'spread over one interval' : 'all at once'}` +
      (o.fieldRules ? '; daemon rules: five on varz fields (--field-rules)' : '') +
      (o.maxInFlight ? `; daemon poll.max_in_flight: ${o.maxInFlight}` : ''),
  ];
  for (const n of ns) {
    const c = `N=${n}`;
    log(o, `${BENCH} ${c}: starting ${n} simulated endpoints`);
    const fleet = await VarzFleet.start(n);
    try {
      log(o, `${BENCH} ${c}: baseline (undici GET + JSON.parse) for ${durationS} s`);
      const b = await baselinePhase(o, fleet.urls, intervalMs, warmupS, durationS);
      log(o, `${BENCH} ${c}: daemon for ${durationS} s`);
      const d = await daemonPhase(o, fleet.urls, intervalMs, warmupS, durationS);
      const perPoll = (p: Phase): number | null => (p.polls > 0 ? (p.cpuSec / p.polls) * 1e6 : null);
      const p = (p: Phase, q: number): number | null => {
        const v = quantile(p.lateness, q);
        return v === null ? null : v * 1000;
      };
      const done = (p: Phase): number => (100 * p.polls) / (n * (p.wallSec * 1000 / intervalMs));
      rows.push(
        row(BENCH, c, 'CPU per server-poll', 'µs', perPoll(d), perPoll(b), '≤ 1.3× baseline', (_v, r) => r !== null && r <= 1.3),
        row(BENCH, c, 'CPU, share of one core', '%', (100 * d.cpuSec) / d.wallSec, (100 * b.cpuSec) / b.wallSec),
        row(BENCH, c, 'peak RSS (VmHWM)', 'MB', d.hwmBytes / MB, b.hwmBytes / MB, n === 5000 ? '< 150 MB' : '', (v) => v < 150),
        row(BENCH, c, 'RSS at the end of the window', 'MB', d.rssEndBytes / MB, b.rssEndBytes / MB),
        row(BENCH, c, 'poll lateness p50', 'ms', p(d, 0.5), p(b, 0.5)),
        row(BENCH, c, 'poll lateness p99', 'ms', p(d, 0.99), p(b, 0.99), n === 1000 ? '< 100 ms' : '', (v) => v < 100),
        row(BENCH, c, 'polls done / scheduled', '%', done(d), done(b)),
      );
      notes.push(
        `${c}: daemon ${d.polls} polls (${d.errors} errors), kept its schedule ${d.steadyAfterS.toFixed(0)} s after start, ` +
          `start-up CPU (until the window) ${d.startupCpuSec.toFixed(1)} s; baseline ${b.polls} polls (${b.errors} errors), start-up CPU ${b.startupCpuSec.toFixed(1)} s`,
      );
    } finally {
      await fleet.stop();
    }
  }
  return { bench: BENCH, title: 'HTTP fleet polling', rows, notes, seconds: 0 };
}

runAlone(import.meta.url, polling);
