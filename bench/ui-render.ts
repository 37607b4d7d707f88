/**
 * Benchmark: the incident page of a 5 MB profile in headless Chromium on loopback (issue 14; goal: first
 * paint to rendered flame graph under 1 s). bench/lib/prof-server.ts serves a heap profile (shape go: 5 MB
 * uncompressed, Go-like stacks; --shape random: 5 MB gzipped of random stacks, the worst case); the daemon
 * (dist/main.js) captures it once from a simulated server crossing a rule. Then, --trials times:
 *
 *  - cold: a fresh daemon on the same storage, 3 s after it started (empty answer cache, no worker thread
 *    yet, as after the thread's idle end), a fresh browser context opens /ui/#/incidents/<id>;
 *  - warm: a fresh browser context opens the same page again (the daemon's answer cache holds the answers).
 *
 * Once, before the trials: the page opened 5 s after the daemon wrote the incident, as from the link in the
 * alert or the log line (the daemon builds the page's first answers when it writes an incident).
 *
 * Figure: the time from the page's first paint (PerformancePaintTiming) to the frame in which the profile's
 * canvas carries data-frames (the flame graph drawn), polled every animation frame; also navigation start to
 * rendered, and the flamegraph answer's size. --cpu-prof DIR profiles the daemon's main thread meanwhile.
 *
 * --before PATH: a built checkout of the earlier code (PATH/dist/main.js, its page assets included), measured
 * in the same run, trial by trial interleaved with this tree (the baseline of the ratios).
 *
 *   node --import tsx bench/ui-render.ts [--trials 3] [--shape go|random] [--mb 5] [--before PATH] [--smoke]
 * needs `npm run build`; Chromium from $CHROMIUM_BIN, else /usr/bin/chromium.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { ask, forkTs, sleep, stopChild } from './lib/children.js';
import { daemonConfig } from './lib/config.js';
import { BenchDaemon, MAIN, useDaemonMain } from './lib/daemon.js';
import { VarzFleet } from './lib/fleet-sim.js';
import { percentile } from './lib/prom.js';
import { log, row, runAlone, type BenchOptions, type BenchResult } from './lib/report.js';

const BENCH = 'ui-render';

// The few page globals the evaluated functions use (this file is compiled without the DOM's types).
declare const document: { querySelector(selector: string): unknown };
declare const location: { origin: string };
interface PageEntry {
  name: string;
  startTime: number;
  responseEnd?: number;
  transferSize?: number;
}
const MB = 1e6;

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && process.argv[i + 1]) {
    const v = process.argv[i + 1] as string;
    process.argv.splice(i, 2);
    return v;
  }
  return fallback;
}
// Flags of this benchmark only (taken out before the shared parser sees them).
const SHAPE = flag('shape', 'go') as 'go' | 'random';
const SIZE_MB = Number(flag('mb', '5'));

async function until(what: string, timeoutMs: number, fn: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

interface Render {
  paintToFlameMs: number;
  navToFlameMs: number;
  firstPaintMs: number;
  frames: number;
  /** Every request of the page: path, start, end (ms after navigation), bytes. */
  resources: [string, number, number, number][];
}

async function render(browser: Browser, url: string, profile: string): Promise<Render> {
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 900 }, deviceScaleFactor: 1 });
  try {
    const page = await ctx.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    const sel = `section[data-profile="${profile}"] canvas.flame[data-frames]`;
    // Functions, not strings: the page's CSP forbids eval.
    const h = await page.waitForFunction((s) => (document.querySelector(s) ? performance.now() : 0), sel, { polling: 'raf', timeout: 120_000 });
    const drawnAt = (await h.jsonValue()) as number;
    const fp = await page.evaluate(() => {
      const e = (performance.getEntriesByType as (t: string) => PageEntry[])('paint');
      return (e.find((x) => x.name === 'first-paint') ?? e.find((x) => x.name === 'first-contentful-paint'))?.startTime ?? 0;
    });
    const resources = await page.evaluate(() =>
      (performance.getEntriesByType as (t: string) => PageEntry[])('resource').map(
        (r): [string, number, number, number] => [r.name.replace(location.origin, '').slice(0, 90), Math.round(r.startTime), Math.round(r.responseEnd ?? 0), r.transferSize ?? 0],
      ),
    );
    const frames = Number(await page.locator(sel).getAttribute('data-frames'));
    if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
    return { paintToFlameMs: drawnAt - fp, navToFlameMs: drawnAt, firstPaintMs: fp, frames, resources };
  } finally {
    await ctx.close();
  }
}

export async function uiRender(o: BenchOptions): Promise<BenchResult> {
  const trials = o.trials ?? (o.smoke ? 1 : 3);
  const bytes = (o.smoke ? 0.5 : SIZE_MB) * MB;
  log(o, `${BENCH}: a ${SHAPE} heap profile of ${bytes / MB} MB ${SHAPE === 'go' ? 'uncompressed' : 'gzipped'}`);
  const prof = forkTs('lib/prof-server.ts');
  const fleet = await VarzFleet.start(1);
  const dir = mkdtempSync(join(tmpdir(), 'nats-autoprof-bench-ui-'));
  const browser = await chromium.launch({
    executablePath: process.env['CHROMIUM_BIN'] ?? '/usr/bin/chromium',
    headless: true,
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
  let d: BenchDaemon | undefined;
  try {
    const { port, bytes: gzBytes, rawBytes } = await ask<{ port: number; bytes: number; rawBytes?: number }>(prof, { type: 'start', bytes, shape: SHAPE }, 'ready', 300_000);
    const config = daemonConfig({
      servers: [{ url: fleet.urls[0] as string, name: 'sim-0', profUrl: `http://127.0.0.1:${port}` }],
      intervalMs: 1000,
      timeoutMs: 1000,
      triggers: 'triggers:\n  - { name: hot, metric: cpu, above: 50, for: 0s, cooldown: 1h, profiles: [heap] }\n',
      extra: 'capture: { via: prof_port, timeout: 60s, max_profile_size: 64MiB }\n',
    });
    const start = (main = MAIN): Promise<BenchDaemon> => {
      useDaemonMain(main);
      return BenchDaemon.start({ dir, config, cpuProfDir: o.cpuProf, readyTimeoutMs: 120_000 });
    };
    d = await start();
    const first = d;
    await fleet.setCpu(99, [0]);
    let id = '';
    await until('the capture', 180_000, async () => {
      const list = (await (await fetch(`${first.url}/api/v1/incidents`)).json()) as { incidents?: { id: string; status?: string }[] };
      const done = list.incidents?.find((x) => x.status === 'ok');
      if (done) id = done.id;
      return done !== undefined;
    });
    // Quiet again, so that the restarted daemons capture nothing more.
    await fleet.setCpu(10, [0]);
    // The page opened from the alert or the log line, a little after the capture: the daemon built the
    // page's answers in its worker thread when it wrote the incident (5 s is ample for a 5 MB profile).
    await sleep(5000);
    const captured = await render(browser, `${first.url}/ui/#/incidents/${encodeURIComponent(id)}`, 'heap');
    log(o, `${BENCH}: just captured: ${captured.paintToFlameMs.toFixed(0)} ms`);
    await d.stop();
    d = undefined;

    const variants: [string, string][] = [['after', MAIN]];
    if (o.before) variants.unshift(['before', join(o.before, 'dist', 'main.js')]);
    const cold: Record<string, Render[]> = { before: [], after: [] };
    const warm: Record<string, Render[]> = { before: [], after: [] };
    let jsonBytes = 0;
    for (let i = 0; i < trials; i++) {
      for (const [v, main] of variants) {
        d = await start(main);
        // A running daemon (its start-up done), whose worker thread has not started yet or has ended after
        // its idle time, and whose answer cache does not hold this profile: what the first view meets.
        await sleep(3000);
        const url = `${d.url}/ui/#/incidents/${encodeURIComponent(id)}`;
        await d.profile(`ui-render-${v}-cold-${i}`);
        const c = await render(browser, url, 'heap');
        const p = await d.endProfile();
        if (p) log(o, `CPU profile of the cold load: ${p}`);
        const w = await render(browser, url, 'heap');
        (cold[v] as Render[]).push(c);
        (warm[v] as Render[]).push(w);
        if (i === 0) {
          const r = await fetch(`${d.url}/api/v1/incidents/${encodeURIComponent(id)}/profiles/heap/flamegraph`);
          jsonBytes = (await r.text()).length;
          for (const [k, x] of [['cold', c], ['warm', w]] as const) log(o, `${v} ${k}: first paint ${x.firstPaintMs.toFixed(0)} ms, drawn ${x.navToFlameMs.toFixed(0)} ms; requests ${JSON.stringify(x.resources.filter((r) => r[0].startsWith('/api')))}`);
        }
        log(o, `${BENCH}: trial ${i + 1} ${v}: cold ${c.paintToFlameMs.toFixed(0)} ms, warm ${w.paintToFlameMs.toFixed(0)} ms`);
        await d.stop();
        d = undefined;
      }
    }
    useDaemonMain(MAIN);
    const med = (v: number[]): number | null => percentile(v, 0.5);
    const c = `${SHAPE} heap ${((rawBytes ?? gzBytes) / MB).toFixed(1)} MB`;
    const has = o.before !== undefined;
    const m = (set: Record<string, Render[]>, v: string, f: (r: Render) => number): number | null => (v === 'before' && !has ? null : med((set[v] as Render[]).map(f)));
    const paint = (r: Render): number => r.paintToFlameMs;
    const nav = (r: Render): number => r.navToFlameMs;
    const list = (set: Record<string, Render[]>, v: string): string => (set[v] as Render[]).map((r) => r.paintToFlameMs.toFixed(0)).join('/');
    return {
      bench: BENCH,
      title: 'incident page of a 5 MB profile in headless Chromium: first paint to rendered flame graph',
      rows: [
        row(BENCH, c, `cold: first paint to flame graph, median${has ? ' (vs before)' : ''}`, 'ms', m(cold, 'after', paint), m(cold, 'before', paint), '< 1000 ms', (v) => v < 1000),
        row(BENCH, c, `warm: first paint to flame graph, median${has ? ' (vs before)' : ''}`, 'ms', m(warm, 'after', paint), m(warm, 'before', paint), '< 1000 ms', (v) => v < 1000),
        row(BENCH, c, 'just captured (answers built at capture), one view', 'ms', captured.paintToFlameMs, null, '< 1000 ms', (v) => v < 1000),
        row(BENCH, c, 'cold: navigation to flame graph, median', 'ms', m(cold, 'after', nav), m(cold, 'before', nav)),
        row(BENCH, c, 'warm: navigation to flame graph, median', 'ms', m(warm, 'after', nav), m(warm, 'before', nav)),
        row(BENCH, c, 'first paint after navigation, median', 'ms', m(cold, 'after', (r) => r.firstPaintMs), m(cold, 'before', (r) => r.firstPaintMs)),
      ],
      notes: [
        `profile: ${rawBytes ? `${(rawBytes / MB).toFixed(2)} MB uncompressed, ` : ''}${(gzBytes / MB).toFixed(2)} MB gzipped (prof-server shape ${SHAPE}); ` +
          `flamegraph answer ${(jsonBytes / MB).toFixed(2)} MB JSON, ${cold['after']?.[0]?.frames ?? 0} frames drawn; ${trials} trials, ` +
          `cold ${list(cold, 'after')} ms, warm ${list(warm, 'after')} ms` +
          (has ? `; before (${o.before}): cold ${list(cold, 'before')} ms, warm ${list(warm, 'before')} ms` : ''),
      ],
      seconds: 0,
    };
  } finally {
    await d?.stop();
    await browser.close();
    await stopChild(prof);
    await fleet.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

runAlone(import.meta.url, uiRender);
