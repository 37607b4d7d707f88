/**
 * Benchmark: what polling costs the watched server. One real nats-server (with a system account); its own
 * CPU (utime + stime from /proc/<pid>/stat) over the same window in four phases of one run:
 *
 *   1. idle: no daemon, nothing connected;
 *   2. the daemon polling its /varz over HTTP every 1 s;
 *   3. the daemon discovering and watching it over the system account (STATSZ) every 1 s;
 *   4. for reference, N back-to-back /varz requests from this process: the server's CPU per /varz answered.
 *
 * Goal: polling adds under 0.1 % of one core to the server. The unit of /proc CPU time is one clock tick
 * (10 ms at CLK_TCK 100), so a 60 s window resolves 0.017 % of a core; a 3 s smoke window resolves 0.33 %.
 *
 *   node --import tsx bench/server-cost.ts [--duration 60] [--n 5000] [--smoke]
 *     --duration: the window of phases 1-3, in seconds; --n: the requests of phase 4
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanupTempDirs, startServer, SYS_PASSWORD, SYS_USER, type NatsServer } from '../test/helpers/nats-server.js';
import { sleep } from './lib/children.js';
import { daemonConfig } from './lib/config.js';
import { BenchDaemon } from './lib/daemon.js';
import { sum } from './lib/prom.js';
import { clockTicks, readProc } from './lib/proc.js';
import { log, row, runAlone, type BenchOptions, type BenchResult } from './lib/report.js';

const BENCH = 'server-cost';

interface Window {
  /** Server CPU seconds used in the window. */
  cpuSec: number;
  wallSec: number;
  /** /varz requests the server counted in the window (its own http_req_stats). */
  varz: number;
}

/** The server's own count of /varz requests answered (read with one more /varz, outside any window). */
async function varzCount(srv: NatsServer): Promise<number> {
  const res = await fetch(`${srv.monitorUrl}/varz`);
  const v = (await res.json()) as { http_req_stats?: Record<string, number> };
  return v.http_req_stats?.['/varz'] ?? 0;
}

async function window(srv: NatsServer, seconds: number): Promise<Window> {
  const pid = srv.pid as number;
  const v0 = await varzCount(srv);
  const p0 = readProc(pid);
  await sleep(seconds * 1000);
  const p1 = readProc(pid);
  const v1 = await varzCount(srv);
  // The count includes the first varzCount's own request, not the second's.
  return { cpuSec: p1.cpuSec - p0.cpuSec, wallSec: (p1.at - p0.at) / 1000, varz: v1 - v0 - 1 };
}

async function until(what: string, timeoutMs: number, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** Runs the daemon with `config` until `ready`, then measures the server over one window. */
async function daemonWindow(
  o: BenchOptions,
  srv: NatsServer,
  name: string,
  config: string,
  ready: (d: BenchDaemon) => Promise<boolean>,
  counter: string,
  warmupS: number,
  durationS: number,
): Promise<Window & { polls: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'nats-autoprof-bench-'));
  const d = await BenchDaemon.start({ dir, config, cpuProfDir: o.cpuProf });
  try {
    await until(`the daemon to ${name}`, 60_000, () => ready(d));
    await sleep(warmupS * 1000);
    const c0 = sum(await d.metrics(), counter);
    const w = await window(srv, durationS);
    const c1 = sum(await d.metrics(), counter);
    return { ...w, polls: c1 - c0 };
  } finally {
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function serverCost(o: BenchOptions): Promise<BenchResult> {
  const durationS = o.duration ?? (o.smoke ? 3 : 60);
  const warmupS = o.smoke ? 1 : 5;
  const requests = o.n?.[0] ?? (o.smoke ? 200 : 5000);
  const tick = 1 / clockTicks();
  const srv = await startServer({ name: 'watched', profPort: false });
  try {
    // Let the server finish starting (its first STATSZ and account set-up) before the idle window.
    await sleep(warmupS * 1000);
    log(o, `${BENCH}: idle server, ${durationS} s`);
    const idle = await window(srv, durationS);

    log(o, `${BENCH}: the daemon polling /varz over HTTP every 1 s, ${durationS} s`);
    const http = await daemonWindow(
      o,
      srv,
      'poll /varz',
      daemonConfig({ servers: [{ url: srv.monitorUrl }], intervalMs: 1000, timeoutMs: 1000 }),
      async (d) => sum(await d.metrics(), 'nats_autoprof_polls_total') >= 2,
      'nats_autoprof_polls_total',
      warmupS,
      durationS,
    );

    log(o, `${BENCH}: the daemon watching it over the system account (STATSZ) every 1 s, ${durationS} s`);
    const sys = await daemonWindow(
      o,
      srv,
      'discover the server',
      daemonConfig({
        servers: [],
        intervalMs: 1000,
        timeoutMs: 1000,
        extra: `system_account:\n  url: ${srv.natsUrl}\n  user: ${SYS_USER}\n  password: ${SYS_PASSWORD}\n  discover: true\n`,
      }),
      async (d) => {
        const m = await d.metrics();
        return sum(m, 'nats_autoprof_discovery_servers') >= 1 && sum(m, 'nats_autoprof_discovery_rounds_total') >= 2;
      },
      'nats_autoprof_discovery_rounds_total',
      warmupS,
      durationS,
    );

    log(o, `${BENCH}: ${requests} back-to-back /varz requests`);
    const pid = srv.pid as number;
    const url = `${srv.monitorUrl}/varz`;
    for (let i = 0; i < Math.min(50, requests); i++) await (await fetch(url)).arrayBuffer(); // warm the connection
    const p0 = readProc(pid);
    for (let i = 0; i < requests; i++) await (await fetch(url)).arrayBuffer();
    const p1 = readProc(pid);
    const burstWall = (p1.at - p0.at) / 1000;
    // Less the idle server's own background CPU over the same wall time.
    const idleShare = idle.cpuSec / idle.wallSec;
    const perVarzUs = ((p1.cpuSec - p0.cpuSec - idleShare * burstWall) / requests) * 1e6;

    const pct = (w: Window): number => (w.cpuSec / w.wallSec) * 100;
    const goal = '< 0.1 % of a core';
    const resolution = (tick / durationS) * 100;
    return {
      bench: BENCH,
      title: 'what polling costs the watched server',
      rows: [
        row(BENCH, 'idle (no daemon)', 'server CPU, share of one core', '%', pct(idle)),
        row(BENCH, 'HTTP /varz @ 1 s', 'server CPU, share of one core', '%', pct(http), pct(idle)),
        row(BENCH, 'HTTP /varz @ 1 s', 'added by polling', '%', pct(http) - pct(idle), null, goal, (v) => v < 0.1),
        row(BENCH, 'system account STATSZ @ 1 s', 'server CPU, share of one core', '%', pct(sys), pct(idle)),
        row(BENCH, 'system account STATSZ @ 1 s', 'added by polling', '%', pct(sys) - pct(idle), null, goal, (v) => v < 0.1),
        row(BENCH, `${requests} back-to-back /varz`, 'server CPU per /varz answered', 'µs', perVarzUs),
      ],
      notes: [
        `windows of ${durationS} s after ${warmupS} s warm-up; server CPU from /proc/<pid>/stat utime+stime in ticks of ${(tick * 1000).toFixed(0)} ms, so one window resolves ${resolution.toFixed(3)} % of a core`,
        `server CPU ticks per window: idle ${Math.round(idle.cpuSec / tick)}, HTTP ${Math.round(http.cpuSec / tick)}, system account ${Math.round(sys.cpuSec / tick)}`,
        `in the windows the server answered /varz ${idle.varz} (idle), ${http.varz} (HTTP), ${sys.varz} (system account) times; the daemon counted ${http.polls} polls and ${sys.polls} discovery rounds`,
        `${requests} /varz in ${burstWall.toFixed(1)} s used ${((p1.cpuSec - p0.cpuSec) / tick).toFixed(0)} ticks (less the idle share); at 1 poll/s that is ${(perVarzUs / 1e4).toFixed(4)} % of a core`,
        'nats-server 2.10.27 with a system account, no prof_port, no clients but the daemon',
      ],
      seconds: 0,
    };
  } finally {
    await srv.stop();
    cleanupTempDirs();
  }
}

runAlone(import.meta.url, serverCost);
