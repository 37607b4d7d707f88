/**
 * Benchmark: flame graphs of the 20 MB heap profile through the real daemon (issue 14). bench/lib/prof-server.ts
 * serves a Go-shaped heap profile of 20 MB uncompressed (--smoke: 1 MB); the daemon (dist/main.js) polls N
 * simulated servers at 1 s (bench/lib/varz-sim.ts) and captures the profile through prof_port when one of them
 * crosses a rule (the capture API needs a token this config does not set). Then, against the daemon's HTTP API:
 *
 *  1. cold: GET .../profiles/heap/flamegraph (the worker reads, builds, stringifies): time, and the daemon's
 *     RSS before and its peak during (sampled every 10 ms, plus VmHWM), as a ratio to the profile's size;
 *  2. polling while flame graphs are built: windows of --duration seconds, alternately with nothing asked
 *     (the baseline, same run) and with flame graphs asked back to back, each a cache miss (min_share varies),
 *     --trials times each. Figures: the daemon's own poll lateness (nats_autoprof_poll_lateness_seconds,
 *     p99 by histogram_quantile) and its event-loop lag gauge, read every 250 ms (one setImmediate per read).
 *
 *   node --import tsx bench/flamegraph-daemon.ts [--n 200] [--duration 30] [--trials 2] [--smoke]
 * needs `npm run build` (the daemon runs from dist/).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ask, forkTs, sleep, stopChild } from './lib/children.js';
import { daemonConfig } from './lib/config.js';
import { BenchDaemon } from './lib/daemon.js';
import { VarzFleet } from './lib/fleet-sim.js';
import { delta, histogram, percentile, quantile, type Histogram } from './lib/prom.js';
import { readProc, RssWatcher } from './lib/proc.js';
import { log, row, runAlone, type BenchOptions, type BenchResult, type Row } from './lib/report.js';

const BENCH = 'flamegraph-daemon';
const MB = 1e6;

async function until(what: string, timeoutMs: number, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

interface Window {
  lateness: Histogram;
  lagMs: number[];
  requests: number;
  requestMs: number[];
  polls: number;
}

export async function flamegraphDaemon(o: BenchOptions): Promise<BenchResult> {
  const n = o.n?.[0] ?? (o.smoke ? 5 : 200);
  const durationS = o.duration ?? (o.smoke ? 3 : 30);
  const trials = o.trials ?? (o.smoke ? 1 : 2);
  const rawTarget = (o.smoke ? 1 : 20) * MB;
  log(o, `${BENCH}: a Go-shaped heap profile of ${rawTarget / MB} MB and ${n} simulated servers`);
  const prof = forkTs('lib/prof-server.ts');
  const fleet = await VarzFleet.start(n);
  const dir = mkdtempSync(join(tmpdir(), 'nats-autoprof-bench-'));
  let d: BenchDaemon | undefined;
  try {
    const { port, bytes: gzBytes, rawBytes } = await ask<{ port: number; bytes: number; rawBytes: number }>(prof, { type: 'start', bytes: rawTarget, shape: 'go' }, 'ready', 300_000);
    const profUrl = `http://127.0.0.1:${port}`;
    d = await BenchDaemon.start({
      dir,
      cpuProfDir: o.cpuProf,
      readyTimeoutMs: 120_000,
      config: daemonConfig({
        servers: fleet.urls.map((url, i) => ({ url, name: `sim-${i}`, profUrl })),
        intervalMs: 1000,
        timeoutMs: 1000,
        triggers: 'triggers:\n  - { name: hot, metric: cpu, above: 50, for: 0s, cooldown: 1h, profiles: [heap] }\n',
        extra: 'capture: { via: prof_port, timeout: 60s, max_profile_size: 64MiB }\n',
      }),
    });
    const daemon = d;
    const api = (path: string, init?: RequestInit): Promise<Response> => fetch(`${daemon.url}${path}`, init);
    await until('every server to be polled', 120_000, async () => histogram(await daemon.metrics(), 'nats_autoprof_poll_duration_seconds').count >= n);
    await sleep(o.smoke ? 1000 : 5000);

    // The capture is a rule firing on sim-0 (the API's capture endpoint needs a token this config lacks).
    log(o, `${BENCH}: sim-0 crosses the rule; the daemon captures the heap profile`);
    await fleet.setCpu(99, [0]);
    let id = '';
    await until('the capture to finish', 180_000, async () => {
      const r = await api('/api/v1/incidents?server=sim-0');
      const list = (await r.json()) as { incidents?: { id: string; status?: string }[] };
      const done = list.incidents?.find((x) => x.status === 'ok');
      if (done) id = done.id;
      return done !== undefined;
    });
    await fleet.setCpu(null, [0]);
    const fg = `/api/v1/incidents/${encodeURIComponent(id)}/profiles/heap/flamegraph`;
    await sleep(2000);

    // 1. Cold tree: RSS before (largest of 2 s of readings), peak during (10 ms readings and VmHWM).
    const idle = new RssWatcher(daemon.pid, 20);
    await sleep(2000);
    idle.stop();
    const rssBefore = idle.maxRss;
    const hwmBefore = idle.last?.hwmBytes ?? 0;
    const watch = new RssWatcher(daemon.pid, 10);
    let t = performance.now();
    const coldRes = await api(`${fg}?sample_type=inuse_space`);
    const coldText = await coldRes.text();
    const coldMs = performance.now() - t;
    watch.stop();
    if (coldRes.status !== 200) throw new Error(`flamegraph: ${coldRes.status} ${coldText.slice(0, 300)}`);
    const hwmAfter = readProc(daemon.pid).hwmBytes;
    const peak = hwmAfter > hwmBefore ? hwmAfter : watch.maxRss;
    const growth = peak - rssBefore;
    const tree = JSON.parse(coldText) as { nodes: unknown[]; names: unknown[] };
    // Same profile, another sample type: the thread keeps the file it read.
    t = performance.now();
    await (await api(`${fg}?sample_type=alloc_space`)).text();
    const otherTypeMs = performance.now() - t;
    t = performance.now();
    await (await api(`${fg}?sample_type=inuse_space`)).text();
    const hitMs = performance.now() - t;

    // 2. Poll lateness and event-loop lag, with and without flame graphs being built.
    let k = 0;
    const measure = async (busy: boolean): Promise<Window> => {
      const lagMs: number[] = [];
      const requestMs: number[] = [];
      let stop = false;
      const e0 = await daemon.metrics();
      const lagLoop = (async () => {
        while (!stop) {
          await sleep(250);
          const e = await daemon.metrics();
          const v = e.get('nats_autoprof_nodejs_eventloop_lag_seconds')?.[0]?.value ?? e.get('nodejs_eventloop_lag_seconds')?.[0]?.value;
          if (v !== undefined) lagMs.push(v * 1000);
        }
      })();
      const work = (async () => {
        while (busy && !stop) {
          // A cache miss every time: another min_share, and the sample type alternates.
          k++;
          const q = `sample_type=${k % 2 ? 'alloc_space' : 'inuse_objects'}&min_share=${(0.001 + k * 1e-6).toFixed(6)}`;
          const t0 = performance.now();
          const r = await api(`${fg}?${q}`);
          await r.text();
          if (r.status !== 200) throw new Error(`flamegraph ${q}: ${r.status}`);
          requestMs.push(performance.now() - t0);
        }
      })();
      await sleep(durationS * 1000);
      stop = true;
      await Promise.all([lagLoop, work]);
      const e1 = await daemon.metrics();
      const polls = (e: typeof e0): number => histogram(e, 'nats_autoprof_poll_duration_seconds').count;
      return { lateness: delta(histogram(e0, 'nats_autoprof_poll_lateness_seconds'), histogram(e1, 'nats_autoprof_poll_lateness_seconds')), lagMs, requests: requestMs.length, requestMs, polls: polls(e1) - polls(e0) };
    };
    const quiet: Window[] = [];
    const busy: Window[] = [];
    for (let i = 0; i < trials; i++) {
      log(o, `${BENCH}: trial ${i + 1}/${trials}: ${durationS} s without, then ${durationS} s with flame graphs`);
      quiet.push(await measure(false));
      await daemon.profile(`flamegraph-daemon-busy-${i}`);
      busy.push(await measure(true));
      const p = await daemon.endProfile();
      if (p) log(o, `CPU profile of the busy window: ${p}`);
    }

    const ms = (v: number | null): number | null => (v === null ? null : v * 1000);
    const c = `${(rawBytes / MB).toFixed(1)} MB heap, N=${n}`;
    const rows: Row[] = [
      row(BENCH, c, 'cold flame graph (GET, worker reads + builds + JSON)', 'ms', coldMs),
      row(BENCH, c, 'daemon RSS before / peak during the cold tree', 'MB', peak / MB, rssBefore / MB),
      row(BENCH, c, 'peak RSS growth / uncompressed profile', '×', growth / rawBytes, null, '< 3×', (v) => v < 3),
      row(BENCH, c, 'peak RSS growth / compressed profile', '×', growth / gzBytes),
      row(BENCH, c, 'another sample type of the same file', 'ms', otherTypeMs),
      row(BENCH, c, 'answer cache hit (GET)', 'ms', hitMs),
    ];
    for (let i = 0; i < trials; i++) {
      const b = busy[i] as Window;
      const q = quiet[i] as Window;
      const tc = `${c}, trial ${i + 1}`;
      const p99b = ms(quantile(b.lateness, 0.99));
      const p99q = ms(quantile(q.lateness, 0.99));
      rows.push(
        row(BENCH, tc, 'poll lateness p99 (busy / quiet)', 'ms', p99b, p99q),
        row(BENCH, tc, 'p99 poll lateness added by flame graphs', 'ms', Math.max(0, (p99b ?? 0) - (p99q ?? 0)), null, '< 20 ms', (v) => v < 20),
        row(BENCH, tc, 'poll lateness mean (busy / quiet)', 'ms', b.lateness.count ? (b.lateness.sum / b.lateness.count) * 1000 : null, q.lateness.count ? (q.lateness.sum / q.lateness.count) * 1000 : null),
        row(BENCH, tc, 'event-loop lag p99 of 250 ms reads (busy / quiet)', 'ms', percentile(b.lagMs, 0.99), percentile(q.lagMs, 0.99)),
        row(BENCH, tc, 'event-loop lag max (busy / quiet)', 'ms', Math.max(0, ...b.lagMs), Math.max(0, ...q.lagMs)),
        row(BENCH, tc, 'polls done (busy / quiet)', '', b.polls, q.polls),
        row(BENCH, tc, 'flame graphs built (cache misses), median time', 'ms', percentile(b.requestMs, 0.5)),
      );
    }
    return {
      bench: BENCH,
      title: 'flame graphs of the 20 MB heap profile through the daemon, and polling meanwhile',
      rows,
      notes: [
        `profile (bench/lib/prof-server.ts shape go): ${(rawBytes / MB).toFixed(2)} MB uncompressed, ${(gzBytes / MB).toFixed(2)} MB gzipped; tree at the default min_share: ${tree.nodes.length} nodes, ${tree.names.length} names, ${(coldText.length / MB).toFixed(2)} MB JSON`,
        `RSS growth ${(growth / MB).toFixed(0)} MB (peak ${(peak / MB).toFixed(0)} MB - before ${(rssBefore / MB).toFixed(0)} MB; VmHWM ${hwmAfter > hwmBefore ? 'rose' : 'did not rise, 10 ms readings used'})`,
        `busy windows: ${busy.map((b) => b.requests).join('/')} flame graphs in ${durationS} s each; quiet windows: none; ${n} servers at 1 s`,
      ],
      seconds: 0,
    };
  } finally {
    await d?.stop();
    await stopChild(prof);
    await fleet.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

runAlone(import.meta.url, flamegraphDaemon);
