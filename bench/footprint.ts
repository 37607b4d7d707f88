/**
 * Benchmark 5: footprint. An idle daemon watching 10 servers (simulated /varz endpoints, quiet values) every
 * 5 s, scraped like Prometheus would: RSS and CPU over 60 s. Baseline, same run, same endpoints: the
 * minimal undici GET + JSON.parse loop (bench/lib/baseline-poll.mjs) on the same schedule.
 *
 *   node --import tsx bench/footprint.ts [--duration 60] [--smoke]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ask, forkPlain, sleep, stopChild } from './lib/children.js';
import { daemonConfig } from './lib/config.js';
import { BenchDaemon, Scraper } from './lib/daemon.js';
import { VarzFleet } from './lib/fleet-sim.js';
import { readProc, RssWatcher, type ProcSample } from './lib/proc.js';
import { log, row, runAlone, type BenchOptions, type BenchResult } from './lib/report.js';

const BENCH = 'footprint';
const MB = 1024 * 1024;

interface Phase {
  cpuShare: number;
  rssEnd: number;
  rssMax: number;
  hwm: number;
}

async function measure(pid: number, warmupS: number, durationS: number): Promise<Phase> {
  await sleep(warmupS * 1000);
  const w = new RssWatcher(pid, 500);
  const p0: ProcSample = readProc(pid);
  await sleep(durationS * 1000);
  const p1 = readProc(pid);
  w.stop();
  return { cpuShare: (p1.cpuSec - p0.cpuSec) / ((p1.at - p0.at) / 1000), rssEnd: p1.rssBytes, rssMax: w.maxRss, hwm: p1.hwmBytes };
}

export async function footprint(o: BenchOptions): Promise<BenchResult> {
  const n = o.n?.[0] ?? 10;
  const intervalMs = 5000;
  const durationS = o.duration ?? (o.smoke ? 3 : 60);
  const warmupS = o.smoke ? 1 : 10;
  const fleet = await VarzFleet.start(n);
  try {
    log(o, `${BENCH}: baseline loop, ${n} servers every ${intervalMs / 1000} s, ${durationS} s`);
    const b = forkPlain('lib/baseline-poll.mjs');
    let base: Phase;
    try {
      await ask(b, { type: 'start', urls: fleet.urls, intervalMs, timeoutMs: 2000, spread: o.baselineSpread }, 'started');
      base = await measure(b.pid as number, warmupS, durationS);
    } finally {
      await stopChild(b);
    }
    log(o, `${BENCH}: daemon, ${n} servers every ${intervalMs / 1000} s, ${durationS} s`);
    const dir = mkdtempSync(join(tmpdir(), 'nats-autoprof-bench-'));
    const d = await BenchDaemon.start({
      dir,
      cpuProfDir: o.cpuProf,
      config: daemonConfig({ servers: fleet.urls.map((url) => ({ url, profUrl: url })), intervalMs, timeoutMs: 2000 }),
    });
    let dm: Phase;
    const scraper = new Scraper(d, o.scrapeMs);
    try {
      await d.profile(`footprint-n${n}`);
      dm = await measure(d.pid, warmupS, durationS);
      await d.endProfile();
    } finally {
      scraper.stop();
      await d.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    const c = `${n} servers @ 5 s`;
    return {
      bench: BENCH,
      title: 'idle footprint',
      rows: [
        row(BENCH, c, 'RSS (max over the window)', 'MB', dm.rssMax / MB, base.rssMax / MB, '< 80 MB', (v) => v < 80),
        row(BENCH, c, 'peak RSS (VmHWM, incl. start-up)', 'MB', dm.hwm / MB, base.hwm / MB),
        row(BENCH, c, 'CPU, share of one core', '%', dm.cpuShare * 100, base.cpuShare * 100, '< 0.5 %', (v) => v < 0.5),
      ],
      notes: [`${durationS} s measured after ${warmupS} s; /metrics scraped every ${o.scrapeMs / 1000} s; CPU from /proc utime+stime (10 ms ticks)`],
      seconds: 0,
    };
  } finally {
    await fleet.stop();
  }
}

runAlone(import.meta.url, footprint);
