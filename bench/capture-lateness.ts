/**
 * Benchmark 6: polling while profiles are decoded. The daemon watches N simulated servers at a 1 s interval
 * (each second N polls are due, plus their answers to handle); a fake prof_port serves a
 * valid 4 MB heap profile. Quiet windows (the baseline, same run, same daemon): no capture. Busy windows:
 * manual captures of that profile from one server, back to back, each summarised (top functions) after it
 * is written. The two alternate (--trials rounds of one quiet and one busy window each), so that load
 * from other work on a shared machine drifts into both alike. Figure: the daemon's own poll lateness
 * (nats_autoprof_poll_lateness_seconds) over all busy windows against all quiet ones. Goal: p99 grows by
 * less than 20 ms. With --before PATH, the build at PATH/dist/main.js (e.g. the code that summarised on the
 * event loop) is measured the same way in the same run.
 *
 *   node --import tsx bench/capture-lateness.ts [--n 200] [--duration 20] [--trials 3] [--before /tmp/before] [--smoke] [--cpu-prof DIR]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ask, forkTs, sleep, stopChild } from './lib/children.js';
import { daemonConfig } from './lib/config.js';
import { BenchDaemon, MAIN, useDaemonMain, type LogLine } from './lib/daemon.js';
import { VarzFleet } from './lib/fleet-sim.js';
import { delta, histogram, quantile, type Exposition, type Histogram } from './lib/prom.js';
import { log, row, runAlone, type BenchOptions, type BenchResult, type Row } from './lib/report.js';

const BENCH = 'capture-lateness';
const MB = 1024 * 1024;
const GOAL_MS = 20;
const TOKEN = 'bench-capture-lateness';

interface Window {
  p50: number | null;
  p99: number | null;
  polls: number;
  captures: number;
  summarised: number;
}

/** Two histograms of the same buckets, summed. */
function add(a: Histogram, b: Histogram): Histogram {
  return { le: a.le, cumulative: a.cumulative.map((c, i) => c + (b.cumulative[i] ?? 0)), count: a.count + b.count, sum: a.sum + b.sum };
}

async function measure(
  o: BenchOptions,
  label: string,
  main: string,
  urls: string[],
  profUrl: string,
  durationS: number,
  rounds: number,
): Promise<{ quiet: Window; busy: Window }> {
  const dir = mkdtempSync(join(tmpdir(), 'nats-autoprof-bench-'));
  useDaemonMain(main);
  let d: BenchDaemon | undefined;
  const written: (() => void)[] = [];
  try {
    d = await BenchDaemon.start({
      dir,
      // Captures through the API need a token; /metrics stays open.
      config: daemonConfig({
        servers: urls.map((url, i) => ({ url, name: `lat-${i}`, profUrl })),
        intervalMs: 1000,
        timeoutMs: 1000,
        triggers: 'triggers: []\n',
        extra: 'capture: { via: prof_port, timeout: 60s, max_profile_size: 64MiB, limit: { count: 100000, window: 1h } }\n',
        storage: 'storage: { dir: "{{DIR}}/profiles", retention: { max_incidents_per_server: 3 } }',
      }).replace('http: { listen: "127.0.0.1:{{PORT}}" }', `http: { listen: "127.0.0.1:{{PORT}}", auth: { bearer_token: "${TOKEN}" } }`),
      onLog: (l: LogLine) => {
        if (typeof l.msg === 'string' && l.msg.startsWith('incident written')) written.shift()?.();
      },
      readyTimeoutMs: 120_000,
      cpuProfDir: o.cpuProf,
    });
    const daemon = d;
    const polls = (e: Exposition): number => histogram(e, 'nats_autoprof_poll_duration_seconds').count;
    const deadline = Date.now() + 120_000;
    while (polls(await daemon.metrics()) < urls.length * 3) {
      if (Date.now() > deadline) throw new Error('the daemon did not poll every server in time');
      await sleep(500);
    }
    await sleep(o.smoke ? 500 : 5000);
    const window = async (busy: boolean): Promise<{ h: Histogram; captures: number }> => {
      const e0 = await daemon.metrics();
      const until = performance.now() + durationS * 1000;
      let captures = 0;
      if (busy) {
        while (performance.now() < until) {
          const done = new Promise<void>((r) => written.push(r));
          const res = await fetch(`${daemon.url}/api/v1/captures`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
            body: JSON.stringify({ server: 'lat-0', profiles: ['heap'] }),
          });
          const body = await res.text();
          if (res.status !== 202 && res.status !== 200) throw new Error(`capture refused: ${res.status} ${body}`);
          await done;
          captures++;
        }
      } else {
        await sleep(durationS * 1000);
      }
      const e1 = await daemon.metrics();
      return { h: delta(histogram(e0, 'nats_autoprof_poll_lateness_seconds'), histogram(e1, 'nats_autoprof_poll_lateness_seconds')), captures };
    };
    const quietH: Histogram[] = [];
    const busyH: Histogram[] = [];
    let captures = 0;
    for (let r = 1; r <= rounds; r++) {
      log(o, `${BENCH} ${label}: round ${r}/${rounds}: ${durationS} s without captures`);
      quietH.push((await window(false)).h);
      log(o, `${BENCH} ${label}: round ${r}/${rounds}: ${durationS} s of back-to-back captures`);
      await daemon.profile(`${BENCH}-${label.replaceAll(' ', '-')}-round${r}`);
      const w = await window(true);
      const prof = await daemon.endProfile();
      if (prof) log(o, `CPU profile of the busy window: ${prof}`);
      busyH.push(w.h);
      captures += w.captures;
    }
    const summary = (hs: Histogram[], n: number): Window => {
      const h = hs.reduce(add);
      const ms = (q: number): number | null => {
        const v = quantile(h, q);
        return v === null ? null : v * 1000;
      };
      return { p50: ms(0.5), p99: ms(0.99), polls: h.count, captures: n, summarised: 0 };
    };
    const quiet = summary(quietH, 0);
    const busy = summary(busyH, captures);
    busy.summarised = daemon.logs.filter((l) => Array.isArray(l.profiles) && (l.profiles as { top?: unknown }[]).some((p) => typeof p.top === 'string')).length;
    return { quiet, busy };
  } finally {
    await d?.stop();
    useDaemonMain(MAIN);
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function captureLateness(o: BenchOptions): Promise<BenchResult> {
  const n = o.n?.[0] ?? (o.smoke ? 5 : 200);
  const durationS = o.duration ?? (o.smoke ? 2 : 20);
  const rounds = o.trials ?? (o.smoke ? 1 : 3);
  const profileBytes = (o.smoke ? 0.25 : 4) * MB;
  log(o, `${BENCH}: generating a ${profileBytes / MB} MB profile and ${n} simulated servers`);
  const prof = forkTs('lib/prof-server.ts');
  const fleet = await VarzFleet.start(n);
  try {
    const { port, bytes } = await ask<{ port: number; bytes: number }>(prof, { type: 'start', bytes: profileBytes }, 'ready', 300_000);
    const profUrl = `http://127.0.0.1:${port}`;
    const variants: [string, string][] = [['this tree', MAIN]];
    if (o.before) variants.unshift(['before', join(o.before, 'dist', 'main.js')]);
    const rows: Row[] = [];
    const notes: string[] = [
      `${n} servers at 1 s, one ${(bytes / MB).toFixed(1)} MB heap profile (${bytes} bytes) per capture through prof_port; ` +
        `${rounds} rounds of a ${durationS} s window without and one with captures; lateness from the daemon's histogram (buckets 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000 ms; quantiles interpolated)`,
    ];
    for (const [label, main] of variants) {
      const { quiet, busy } = await measure(o, label, main, fleet.urls, profUrl, durationS, rounds);
      const c = `${label}: N=${n}, ${(bytes / MB).toFixed(1)} MB`;
      const goal = quiet.p99 === null ? null : quiet.p99 + GOAL_MS;
      rows.push(
        row(BENCH, c, 'poll lateness p99 during captures', 'ms', busy.p99, quiet.p99, `< no-capture p99 + ${GOAL_MS} ms`, (v) => goal !== null && v < goal),
        row(BENCH, c, 'poll lateness p50 during captures', 'ms', busy.p50, quiet.p50),
        row(BENCH, c, 'captures in the window', 'count', busy.captures),
      );
      notes.push(
        `${label} (${main}): ${quiet.polls} polls without captures, ${busy.polls} polls during ${busy.captures} captures (${busy.summarised} summarised)`,
      );
    }
    return { bench: BENCH, title: 'polling lateness while profiles are decoded', rows, notes, seconds: 0 };
  } finally {
    await fleet.stop();
    await stopChild(prof);
  }
}

runAlone(import.meta.url, captureLateness);
