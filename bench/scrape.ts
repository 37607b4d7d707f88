/**
 * Benchmark: the daemon's CPU per /metrics scrape at N servers, identity vs `Accept-Encoding: gzip` (as
 * Prometheus asks). The daemon polls N simulated endpoints once (poll interval 10 min, so polling adds
 * nothing to the window), then K scrapes of each kind are made back to back; CPU is the daemon's
 * utime + stime over each burst, divided by K. Baseline: the identity scrape. Then, as Prometheus scrapes, K gzip
 * scrapes one second apart on one keep-alive connection: the daemon's CPU over that window less its CPU over
 * an equal window without scrapes, divided by K (a lone scrape costs more than one in a burst: cold caches,
 * a wake-up; BENCHMARKS.md, issue 19).
 *
 *   node --import tsx bench/scrape.ts [--n 1000] [--trials 50]
 */
import { Agent, request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from './lib/children.js';
import { daemonConfig } from './lib/config.js';
import { BenchDaemon } from './lib/daemon.js';
import { VarzFleet } from './lib/fleet-sim.js';
import { histogram } from './lib/prom.js';
import { log, row, runAlone, type BenchOptions, type BenchResult, type Row } from './lib/report.js';

const BENCH = 'scrape';

/** One scrape with raw node:http (no transparent decompression); resolves with the bytes on the wire. */
export function scrapeBytes(url: string, gzip: boolean, agent?: Agent): Promise<{ bytes: number; encoding: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/metrics`, { headers: gzip ? { 'accept-encoding': 'gzip' } : {}, ...(agent ? { agent } : {}) }, (res) => {
      let bytes = 0;
      res.on('data', (b: Buffer) => (bytes += b.length));
      res.on('end', () => resolve({ bytes, encoding: res.headers['content-encoding'] }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export async function scrape(o: BenchOptions): Promise<BenchResult> {
  const ns = o.n ?? (o.smoke ? [5] : [1000]);
  const k = o.trials ?? (o.smoke ? 3 : 50);
  const rows: Row[] = [];
  const notes: string[] = [`${k} scrapes of each kind back to back, after every server was polled once (poll interval 10 min)`];
  for (const n of ns) {
    const c = `N=${n}`;
    const fleet = await VarzFleet.start(n);
    const dir = mkdtempSync(join(tmpdir(), 'nats-autoprof-bench-'));
    const d = await BenchDaemon.start({
      config: daemonConfig({ servers: fleet.urls.map((url) => ({ url })), intervalMs: 600_000, timeoutMs: 10_000 }),
      dir,
      readyTimeoutMs: 120_000,
    });
    try {
      const deadline = Date.now() + 120_000;
      while (histogram(await d.metrics(), 'nats_autoprof_poll_duration_seconds').count < n) {
        if (Date.now() > deadline) throw new Error('timed out waiting for the daemon to poll every server');
        await sleep(500);
      }
      const burst = async (gzip: boolean): Promise<{ cpuMs: number; bytes: number }> => {
        for (let i = 0; i < 3; i++) await scrapeBytes(d.url, gzip); // warm-up
        const p0 = d.sample();
        let bytes = 0;
        for (let i = 0; i < k; i++) {
          const r = await scrapeBytes(d.url, gzip);
          if ((r.encoding === 'gzip') !== gzip) throw new Error(`asked ${gzip ? 'gzip' : 'identity'}, got ${r.encoding ?? 'identity'}`);
          bytes = r.bytes;
        }
        const p1 = d.sample();
        return { cpuMs: ((p1.cpuSec - p0.cpuSec) * 1000) / k, bytes };
      };
      log(o, `${BENCH} ${c}: ${k} identity and ${k} gzip scrapes`);
      const id = await burst(false);
      const gz = await burst(true);
      // One a second, as Prometheus at a 1 s scrape interval: CPU less the same daemon's idle CPU.
      log(o, `${BENCH} ${c}: ${k} s idle, ${k} gzip scrapes one second apart, ${k} s idle`);
      const i0 = d.sample();
      await sleep(k * 1000);
      const i1 = d.sample();
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      await scrapeBytes(d.url, true, agent);
      const s0 = d.sample();
      for (let i = 0; i < k; i++) {
        await sleep(1000);
        await scrapeBytes(d.url, true, agent);
      }
      const s1 = d.sample();
      agent.destroy();
      await sleep(k * 1000);
      const i2 = d.sample();
      // Idle on both sides of the scrapes (the daemon's own timers and GC), per second.
      const idleMsPerS = ((i1.cpuSec - i0.cpuSec + (i2.cpuSec - s1.cpuSec)) * 1000) / ((i1.at - i0.at + (i2.at - s1.at)) / 1000);
      const pacedMs = ((s1.cpuSec - s0.cpuSec) * 1000 - (idleMsPerS * (s1.at - s0.at)) / 1000) / k;
      rows.push(
        row(BENCH, c, 'daemon CPU per gzip scrape, one a second (less idle)', 'ms', pacedMs, gz.cpuMs),
        row(BENCH, c, 'daemon CPU per scrape, gzip vs identity', 'ms', gz.cpuMs, id.cpuMs),
        row(BENCH, c, 'bytes per scrape, gzip vs identity', 'KB', gz.bytes / 1024, id.bytes / 1024),
      );
    } finally {
      await d.stop();
      await fleet.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return { bench: BENCH, title: '/metrics scrape cost', rows, notes, seconds: 0 };
}

runAlone(import.meta.url, scrape);
