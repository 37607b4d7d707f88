/**
 * Benchmark 4: capture memory. A fake prof_port serves a valid 20 MB heap profile; 200 simulated servers
 * cross a `cpu above 50 for 0s` rule at once, so the daemon runs 200 captures (one profile each, through
 * prof_port) with capture.max_concurrent 4. Profiles are streamed to disk, so RSS should grow by at most
 * about the profiles in flight: goal < 4 x one profile + 30 MB. Baseline, same run: the same daemon's RSS
 * while watching the same servers before any capture; the ratio column is the growth in profiles.
 *
 *   node --import tsx bench/capture-memory.ts [--n 200] [--smoke]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ask, forkTs, sleep, stopChild } from './lib/children.js';
import { daemonConfig } from './lib/config.js';
import { BenchDaemon } from './lib/daemon.js';
import { VarzFleet } from './lib/fleet-sim.js';
import { histogram, sum } from './lib/prom.js';
import { RssWatcher } from './lib/proc.js';
import { log, row, runAlone, type BenchOptions, type BenchResult } from './lib/report.js';

const BENCH = 'capture-memory';
const MB = 1024 * 1024;

export async function captureMemory(o: BenchOptions): Promise<BenchResult> {
  const n = o.n?.[0] ?? (o.smoke ? 4 : 200);
  const profileBytes = (o.smoke ? 1 : 20) * MB;
  const concurrent = 4;
  const goalMb = (concurrent * profileBytes) / MB + 30;
  log(o, `${BENCH}: generating a ${profileBytes / MB} MB profile and ${n} simulated servers`);
  const prof = forkTs('lib/prof-server.ts');
  const fleet = await VarzFleet.start(n);
  const dir = mkdtempSync(join(tmpdir(), 'nats-autoprof-bench-'));
  let d: BenchDaemon | undefined;
  try {
    const { port, bytes } = await ask<{ port: number; bytes: number }>(prof, { type: 'start', bytes: profileBytes }, 'ready', 300_000);
    const profUrl = `http://127.0.0.1:${port}`;
    d = await BenchDaemon.start({
      dir,
      config: daemonConfig({
        servers: fleet.urls.map((url, i) => ({ url, name: `cap-${i}`, profUrl })),
        intervalMs: 1000,
        timeoutMs: 1000,
        triggers: 'triggers:\n  - { name: hot, metric: cpu, above: 50, for: 0s, cooldown: 1h, profiles: [heap] }\n',
        extra: `capture: { via: prof_port, max_concurrent: ${concurrent}, timeout: 60s, max_profile_size: 64MiB, limit: { count: 100000, window: 1h } }\n`,
        // Bounded disk use: 200 x 20 MB would be 4 GB; retention keeps 1 GiB.
        storage: 'storage: { dir: "{{DIR}}/profiles", retention: { max_total_size: 1GiB } }',
      }),
    });
    const daemon = d;
    const until = async (what: string, timeoutMs: number, fn: () => Promise<boolean>): Promise<void> => {
      const deadline = Date.now() + timeoutMs;
      while (!(await fn())) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await sleep(500);
      }
    };
    await until('every server to be polled', 60_000, async () => histogram(await daemon.metrics(), 'nats_autoprof_poll_duration_seconds').count >= n);
    await sleep(o.smoke ? 1000 : 5000);
    // Idle RSS: the largest of a few readings over two seconds.
    const idle = new RssWatcher(daemon.pid, 50);
    await sleep(2000);
    idle.stop();
    const rssIdle = idle.maxRss;
    const hwmIdle = idle.last?.hwmBytes ?? 0;
    const watch = new RssWatcher(daemon.pid, 20);
    const t0 = performance.now();
    log(o, `${BENCH}: ${n} servers cross the rule; waiting for ${n} incidents`);
    await fleet.setCpu(99);
    await until(`${n} incidents`, 20 * 60_000, async () => sum(await daemon.metrics(), 'nats_autoprof_incidents_total') >= n);
    const seconds = (performance.now() - t0) / 1000;
    watch.stop();
    const hwmEnd = watch.last?.hwmBytes ?? 0;
    // VmHWM is exact but covers start-up too; when start-up was the peak, use the 20 ms samples.
    const peak = hwmEnd > hwmIdle ? hwmEnd : watch.maxRss;
    const growth = (peak - rssIdle) / MB;
    const e = await daemon.metrics();
    const ok = sum(e, 'nats_autoprof_captures_total', { result: 'ok' });
    const failed = sum(e, 'nats_autoprof_captures_total', { result: 'error' });
    const warnings = daemon.logs.filter((l) => l.msg === 'captured profile could not be summarised').length;
    return {
      bench: BENCH,
      title: 'capture memory',
      rows: [
        row(BENCH, `${n} × ${(bytes / MB).toFixed(0)} MB`, 'peak RSS growth (× one profile)', 'MB', growth, bytes / MB, `< ${goalMb} MB (4 × profile + 30)`, (v) => v < goalMb),
        row(BENCH, `${n} × ${(bytes / MB).toFixed(0)} MB`, 'RSS before captures / peak', 'MB', peak / MB, rssIdle / MB),
        row(BENCH, `${n} × ${(bytes / MB).toFixed(0)} MB`, 'capture throughput', 'MB/s', (ok * bytes) / MB / seconds),
      ],
      notes: [
        `profile ${bytes} bytes (valid gzip heap profile), max_concurrent ${concurrent}; ${ok} profiles ok, ${failed} failed in ${seconds.toFixed(1)} s; ` +
          `${warnings} not summarised; peak from ${hwmEnd > hwmIdle ? 'VmHWM' : '20 ms RSS samples'}`,
      ],
      seconds: 0,
    };
  } finally {
    await d?.stop();
    await fleet.stop();
    await stopChild(prof);
    rmSync(dir, { recursive: true, force: true });
  }
}

runAlone(import.meta.url, captureMemory);
