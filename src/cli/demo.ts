/**
 * `nats-autoprof demo`: the whole thing on one machine, with nothing installed but Node.
 *
 *   1. get a nats-server (scripts/get-nats-server.sh) and start it on free loopback ports, with prof_port,
 *      a system-account user and an application account;
 *   2. start the daemon as a child process, `node dist/main.js run --config config/demo.yaml`, the DEMO_*
 *      variables of that file set to this run's ports, password and directory;
 *   3. load the server in waves (demo-load.ts) until --duration passes or Ctrl-C;
 *   4. meanwhile translate the daemon's JSON log lines and its /api/v1/triggers view into plain lines;
 *   5. stop everything it started (load, daemon, server), then list the incidents with `go tool pprof`
 *      commands. Exit 0 when at least one incident holds a profile, 1 otherwise (saying why).
 *
 * Like every command it touches the process only through the `io` main passes in.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../clock.js';
import { formatDuration, formatSize, parseDuration } from '../config/duration.js';
import { loadConfig } from '../config/load.js';
import { CAPTURE_VIAS, type CaptureVia, type Config } from '../config/types.js';
import { AutoprofError, UsageError, describeError } from '../errors.js';
import { createLogger } from '../log.js';
import { IncidentStore } from '../store/incident-store.js';
import type { IncidentManifest } from '../store/manifest.js';
import { parse } from './args.js';
import { describeLoad, LoadGenerator, type LoadEvent } from './demo-load.js';
import {
  APP_USER,
  findNatsServer,
  freePorts,
  startDaemon,
  startNatsServer,
  type ChildHandle,
  type DemoDaemon,
  type DemoServer,
} from './demo-processes.js';
import {
  describeIncident,
  describeRule,
  displayPath,
  formatElapsed,
  formatMiB,
  formatValue,
  formatVolume,
  narrateLog,
  narrateTransition,
  pprofHints,
  shellQuote,
  type LogLine,
  type NarrationContext,
  type ServerView,
  type TriggerView,
} from './demo-text.js';
import { DEMO_HELP } from './help.js';

export const DEFAULT_DEMO_DIR = './demo-profiles';
/** The server's name in config/demo.yaml (servers[0].name). */
export const DEMO_SERVER_NAME = 'demo-nats';
const WAVE_BUSY_MS = 10_000;
const WAVE_QUIET_MS = 10_000;
/** The memory rule fires at the idle server's memory plus this, rounded up to 8MiB. */
const MEM_HEADROOM_BYTES = 32 * 1024 * 1024;
const DAEMON_READY_TIMEOUT_MS = 20_000;
const WATCH_INTERVAL_MS = 1_000;
const STATUS_EVERY_MS = 5_000;
const SERVER_STOP_GRACE_MS = 5_000;
const LOAD_STOP_WAIT_MS = 5_000;

/** What the command needs from the process; main passes `process` itself. */
export interface DemoIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  /** The node binary, to start the daemon with. */
  readonly execPath: string;
  cwd(): string;
  on(event: DemoEvent, listener: () => void): unknown;
  removeListener(event: DemoEvent, listener: () => void): unknown;
}
export type DemoEvent = 'SIGINT' | 'SIGTERM' | 'SIGHUP' | 'exit';

export interface DemoOptions {
  /** Undefined: until interrupted. Counted from the first load wave. */
  readonly durationMs: number | undefined;
  /** Where incidents go, as given (relative to the working directory). */
  readonly dir: string;
  readonly via: CaptureVia;
}

export type ParsedDemoArgs = { readonly kind: 'help' } | { readonly kind: 'version' } | { readonly kind: 'demo'; readonly options: DemoOptions };

const OPTIONS = {
  duration: { type: 'string' },
  dir: { type: 'string', short: 'd' },
  via: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

export function parseDemoArgs(args: string[]): ParsedDemoArgs {
  const { values } = parse(args, OPTIONS);
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  let durationMs: number | undefined;
  if (values.duration !== undefined) {
    try {
      durationMs = parseDuration(values.duration);
    } catch (err) {
      throw new UsageError(`--duration: ${describeError(err)}`);
    }
    if (durationMs < 1_000) throw new UsageError(`--duration ${values.duration}: give at least 1s (about 20s lets both rules fire)`);
  }
  const dir = values.dir ?? DEFAULT_DEMO_DIR;
  if (dir.trim() === '') throw new UsageError('--dir must not be empty');
  const via = values.via ?? 'auto';
  if (!(CAPTURE_VIAS as readonly string[]).includes(via)) throw new UsageError(`--via ${via}: use one of ${CAPTURE_VIAS.join(', ')}`);
  return { kind: 'demo', options: { durationMs, dir, via: via as CaptureVia } };
}

/** The package root: two levels above this file (dist/cli/demo.js, or src/cli/demo.ts under tsx). */
function packageRoot(): string {
  return fileURLToPath(new URL('../../', import.meta.url));
}

function onPath(program: string, env: DemoIo['env']): boolean {
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    try {
      if (statSync(join(dir, program)).isFile()) return true;
    } catch {
      // not there
    }
  }
  return false;
}

/** Printing: setup lines as `▶ ...`; once the load runs, every line starts with the time since it began. */
class Out {
  readonly #stream: DemoIo['stdout'];
  #t0: number | undefined;

  constructor(stream: DemoIo['stdout']) {
    this.#stream = stream;
  }

  startClock(): void {
    this.#t0 = Date.now();
  }

  stopClock(): void {
    this.#t0 = undefined;
  }

  elapsedMs(): number {
    return this.#t0 === undefined ? 0 : Date.now() - this.#t0;
  }

  /** Something the demo does. */
  step(text: string): void {
    this.#write(`▶ ${text}`);
  }

  /** Something the demo saw (the daemon, the server). */
  event(text: string): void {
    this.#write(`  ${text}`);
  }

  plain(text: string): void {
    this.#stream.write(`${text}\n`);
  }

  #write(text: string): void {
    const at = this.#t0 === undefined ? '' : `${formatElapsed(this.elapsedMs()).padStart(6)} `;
    this.#stream.write(`${at}${text}\n`);
  }
}

interface WrittenIncident {
  readonly path: string;
  readonly shownPath: string;
  readonly manifest: IncidentManifest | undefined;
}

/** Thrown inside a run to go straight to the orderly stop (Ctrl-C during setup). */
class Stopped extends Error {}

/** One run of the demo: what it started, what it saw, and the orderly stop. */
class DemoRun {
  readonly #io: DemoIo;
  readonly #o: DemoOptions;
  readonly #out: Out;
  readonly #root = packageRoot();
  readonly #cwd: string;
  readonly #dir: string;
  readonly #stopper = new AbortController();
  #stopReason = '';
  /** Set when something went wrong on its own (a child died): reported, and the exit code is 1. */
  #failure: string | undefined;
  readonly #children: ChildHandle[] = [];
  #workDir: string | undefined;
  #server: DemoServer | undefined;
  #daemon: DemoDaemon | undefined;
  #load: LoadGenerator | undefined;
  #loadRun: Promise<void> = Promise.resolve();
  #watchRun: Promise<void> = Promise.resolve();
  #config: Config | undefined;
  #narration: NarrationContext = { triggers: [], cpuDurationMs: 0 };
  #store: IncidentStore | undefined;
  /** Daemon log lines are handled one after another (an incident line reads its manifest). */
  #logQueue: Promise<void> = Promise.resolve();
  readonly #incidents: WrittenIncident[] = [];
  #fired = 0;
  readonly #triggerViews = new Map<string, TriggerView>();
  #lastStatusAt = 0;
  #peakCpu = 0;
  #peakMem = 0;
  #signals = 0;

  constructor(io: DemoIo, o: DemoOptions) {
    this.#io = io;
    this.#o = o;
    this.#out = new Out(io.stdout);
    this.#cwd = io.cwd();
    this.#dir = resolve(this.#cwd, o.dir);
  }

  #stop(reason: string): void {
    if (this.#stopper.signal.aborted) return;
    this.#stopReason = reason;
    this.#stopper.abort();
  }

  #checkpoint(): void {
    if (this.#stopper.signal.aborted) throw new Stopped();
  }

  readonly #onSignal = (signal: string) => (): void => {
    this.#signals++;
    if (this.#signals === 1) {
      this.#out.step(`${signal}: stopping everything the demo started (${signal} again kills them at once)`);
      this.#stop(`stopped by ${signal}`);
    } else {
      this.#out.step(`${signal} again: killing what is left`);
      for (const c of this.#children) c.killNow();
    }
  };
  readonly #handlers = { SIGINT: this.#onSignal('SIGINT'), SIGTERM: this.#onSignal('SIGTERM'), SIGHUP: this.#onSignal('SIGHUP') };
  /** If the demo exits abruptly (a crash, a closed stdout), no child outlives it. */
  readonly #onExit = (): void => {
    for (const c of this.#children) c.killNow();
    if (this.#workDir) rmSync(this.#workDir, { recursive: true, force: true });
  };

  async run(): Promise<number> {
    const io = this.#io;
    for (const [signal, handler] of Object.entries(this.#handlers)) io.on(signal as DemoEvent, handler);
    io.on('exit', this.#onExit);
    let thrown: unknown;
    try {
      await this.#start();
      await new Promise<void>((r) => {
        if (this.#stopper.signal.aborted) r();
        else this.#stopper.signal.addEventListener('abort', () => r(), { once: true });
      });
    } catch (err) {
      if (!(err instanceof Stopped)) {
        thrown = err;
        this.#stop('could not start');
      }
    } finally {
      await this.#shutdown();
      for (const [signal, handler] of Object.entries(this.#handlers)) io.removeListener(signal as DemoEvent, handler);
      io.removeListener('exit', this.#onExit);
    }
    if (thrown !== undefined) throw thrown;
    return this.#report();
  }

  async #start(): Promise<void> {
    const out = this.#out;
    const signal = this.#stopper.signal;
    out.step('nats-autoprof demo: a local nats-server under waves of load, watched by the daemon, which captures profiles when a rule fires');

    const bin = await findNatsServer(this.#root, this.#io.env, signal, (line) => out.event(line));
    this.#checkpoint();
    const [client, monitor, prof, http] = await freePorts(4);
    if (client === undefined || monitor === undefined || prof === undefined || http === undefined) throw new AutoprofError('no free ports');
    this.#workDir = mkdtempSync(join(tmpdir(), 'nats-autoprof-demo-'));
    const server = await startNatsServer({ bin, name: DEMO_SERVER_NAME, workDir: this.#workDir, ports: { client, monitor, prof }, env: this.#io.env });
    this.#adopt(server.handle, 'nats-server');
    this.#server = server;
    const idle = await this.#idleServer(server);
    out.step(
      `nats-server ${idle.version} on 127.0.0.1:${client} (monitoring :${monitor}, prof_port :${prof}); idle memory ${formatMiB(idle.mem)}`,
    );
    this.#checkpoint();

    const configFile = join(this.#root, 'config', 'demo.yaml');
    const memAbove = Math.ceil((idle.mem + MEM_HEADROOM_BYTES) / (8 * 1024 * 1024)) * 8 * 1024 * 1024;
    const env = {
      ...this.#io.env,
      DEMO_NATS_PORT: String(client),
      DEMO_MONITOR_PORT: String(monitor),
      DEMO_PROF_PORT: String(prof),
      DEMO_HTTP_PORT: String(http),
      DEMO_SYS_PASSWORD: server.sysPassword,
      DEMO_MEM_ABOVE: formatSize(memAbove),
      DEMO_CAPTURE_VIA: this.#o.via,
      DEMO_PROFILES_DIR: this.#dir,
    };
    // Validates the file before the daemon does, and tells the demo what the rules are.
    const config = await loadConfig(configFile, env);
    this.#config = config;
    this.#narration = { triggers: config.triggers, cpuDurationMs: config.capture.cpuDurationMs };
    this.#store = new IncidentStore({ dir: config.storage.dir, log: createLogger('error', { write: (s: string) => void this.#io.stderr.write(s) }) });

    const main = join(this.#root, 'dist', 'main.js');
    try {
      statSync(main);
    } catch {
      throw new AutoprofError(`${main} is missing: build first (npm run build), or use npm run demo`);
    }
    out.step(`starting the daemon: node dist/main.js run --config ${shellQuote(displayPath(configFile, this.#cwd))}`);
    const daemon = await startDaemon({
      execPath: this.#io.execPath,
      main,
      configFile,
      env,
      port: http,
      readyTimeoutMs: DAEMON_READY_TIMEOUT_MS,
      onLine: (line) => this.#onDaemonLine(line),
    });
    this.#adopt(daemon.handle, 'the daemon');
    this.#daemon = daemon;
    out.step(`pids: server=${server.handle.pid} daemon=${daemon.handle.pid} (the demo stops both when it ends)`);
    out.step(`daemon API: ${daemon.apiUrl}/api/v1/triggers, ${daemon.apiUrl}/api/v1/incidents, ${daemon.apiUrl}/metrics`);
    out.step(
      `watching ${DEMO_SERVER_NAME} every ${formatDuration(config.poll.intervalMs)}; rules: ${config.triggers.map((t) => describeRule(t, config.capture.cpuDurationMs)).join(', ')}`,
    );
    out.step(this.#describeVia(server));
    this.#checkpoint();

    const load = await LoadGenerator.connect({ url: server.natsUrl, user: APP_USER, password: server.appPassword });
    this.#load = load;
    const shownDir = displayPath(this.#dir, this.#cwd);
    out.step(
      `${this.#o.durationMs === undefined ? 'running until Ctrl-C' : `running for ${formatDuration(this.#o.durationMs)} (Ctrl-C stops sooner)`}; incidents go to ${shownDir}/`,
    );
    out.startClock();
    this.#lastStatusAt = Date.now(); // the idle numbers were just shown; the first status comes with the load
    if (this.#o.durationMs !== undefined) {
      const timer = setTimeout(() => this.#stop(`ran for ${formatDuration(this.#o.durationMs ?? 0)}`), this.#o.durationMs);
      signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
    }
    this.#watchRun = this.#watch(daemon, signal);
    this.#loadRun = load.run({ busyMs: WAVE_BUSY_MS, quietMs: WAVE_QUIET_MS, signal, onEvent: (e) => this.#onLoad(e) });
  }

  /** A child that exits while the demo still runs ends the demo, with what it said. */
  #adopt(handle: ChildHandle, what: string): void {
    this.#children.push(handle);
    void handle.closed.then(({ code, signal }) => {
      if (this.#stopper.signal.aborted) return;
      this.#failure = `${what} (pid ${handle.pid}) exited unexpectedly (${signal ?? `code ${code}`})${handle.tail ? `:\n${handle.tail}` : ''}`;
      this.#out.step(`${what} exited unexpectedly; stopping`);
      this.#stop('a process exited');
    });
  }

  async #idleServer(server: DemoServer): Promise<{ version: string; mem: number }> {
    const res = await fetch(`${server.monitorUrl}/varz`, { signal: AbortSignal.timeout(5_000) });
    const v = (await res.json()) as { version?: unknown; mem?: unknown };
    return { version: typeof v.version === 'string' ? v.version : '?', mem: typeof v.mem === 'number' ? v.mem : 0 };
  }

  #describeVia(server: DemoServer): string {
    switch (this.#o.via) {
      case 'auto':
        return `captures go through the system account (PROFILEZ, user sys); prof_port ${server.profUrl} is the fallback (--via prof_port forces it)`;
      case 'system_account':
        return 'captures go through the system account only (PROFILEZ, user sys)';
      case 'prof_port':
        return `captures go through prof_port only (${server.profUrl}/debug/pprof/)`;
    }
  }

  #onLoad(e: LoadEvent): void {
    if (e.kind === 'busy') this.#out.step(`load wave ${e.wave}: busy for ${formatDuration(e.ms)} (${describeLoad()})`);
    else if (e.kind === 'quiet') {
      const sent = `${(e.sent.messages / 1e6).toFixed(1)}M messages, ${formatVolume(e.sent.bytes)}`;
      this.#out.step(`load wave ${e.wave}: quiet for ${formatDuration(e.ms)} (sent ${sent})`);
    } else this.#out.step(e.message);
  }

  #onDaemonLine(text: string): void {
    let line: LogLine;
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      line = parsed as LogLine;
    } catch {
      this.#out.event(`daemon: ${text}`);
      return;
    }
    this.#logQueue = this.#logQueue.then(() => this.#narrate(line)).catch((err: unknown) => this.#out.event(`(could not show a daemon line: ${describeError(err)})`));
  }

  async #narrate(line: LogLine): Promise<void> {
    const msg = typeof line['msg'] === 'string' ? line['msg'] : '';
    if (msg.startsWith('incident written: ')) {
      const path = typeof line['path'] === 'string' ? line['path'] : msg.slice('incident written: '.length);
      const id = typeof line['incident'] === 'string' ? line['incident'] : undefined;
      const manifest = id === undefined ? undefined : await this.#store?.read(id);
      const inc = { path, shownPath: displayPath(path, this.#cwd), manifest };
      this.#incidents.push(inc);
      for (const l of describeIncident(inc.shownPath, manifest)) this.#out.event(l);
      return;
    }
    if (/^rule \S+ fired on /.test(msg)) this.#fired++;
    const text = narrateLog(line, this.#narration);
    if (text !== undefined) this.#out.event(text);
  }

  /** Reads the daemon's view every second: rule states (pending is not logged) and the server's numbers. */
  async #watch(daemon: DemoDaemon, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await Promise.all([this.#readTriggers(daemon, signal), this.#readServers(daemon, signal)]);
      await systemClock.sleep(WATCH_INTERVAL_MS, signal).catch(() => undefined);
    }
  }

  async #getJson(url: string, signal: AbortSignal): Promise<unknown> {
    try {
      const res = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(WATCH_INTERVAL_MS)]) });
      if (!res.ok) {
        await res.arrayBuffer();
        return undefined;
      }
      return await res.json();
    } catch {
      return undefined; // the daemon is busy or stopping; the next round will tell
    }
  }

  async #readTriggers(daemon: DemoDaemon, signal: AbortSignal): Promise<void> {
    const body = (await this.#getJson(`${daemon.apiUrl}/api/v1/triggers`, signal)) as { triggers?: TriggerView[] } | undefined;
    if (signal.aborted || !Array.isArray(body?.triggers)) return;
    const now = Date.now();
    for (const view of body.triggers) {
      const key = `${view.server}|${view.trigger}`;
      const text = narrateTransition(this.#triggerViews.get(key), view, now, this.#narration);
      this.#triggerViews.set(key, view);
      if (text !== undefined) this.#out.event(text);
    }
  }

  async #readServers(daemon: DemoDaemon, signal: AbortSignal): Promise<void> {
    const body = (await this.#getJson(`${daemon.apiUrl}/api/v1/servers`, signal)) as { servers?: ServerView[] } | undefined;
    if (signal.aborted || !Array.isArray(body?.servers)) return;
    const now = Date.now();
    const due = now - this.#lastStatusAt >= STATUS_EVERY_MS;
    for (const s of body.servers) {
      if (s.sample === null) continue;
      this.#peakCpu = Math.max(this.#peakCpu, s.sample.cpu);
      this.#peakMem = Math.max(this.#peakMem, s.sample.mem);
      if (due) this.#out.event(`${s.server}: cpu ${formatValue('cpu', s.sample.cpu)}, mem ${formatMiB(s.sample.mem)}`);
    }
    if (due) this.#lastStatusAt = now;
  }

  /** Stops what was started, in reverse order; every step bounded; never throws. */
  async #shutdown(): Promise<void> {
    this.#stop(this.#stopReason || 'stopping');
    const out = this.#out;
    const started = this.#children.some((c) => c.running) || this.#load !== undefined;
    if (started) out.step(`stopping (${this.#stopReason}): load generator, then the daemon (it finishes a capture in progress), then nats-server`);
    const step = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        out.step(`could not stop ${what}: ${describeError(err)}`);
      }
    };
    await step('the load generator', async () => {
      await Promise.race([this.#loadRun, systemClock.sleep(LOAD_STOP_WAIT_MS)]);
      await this.#load?.close();
    });
    await this.#watchRun;
    const shutdownMs = this.#config?.shutdownTimeoutMs ?? 10_000;
    if (this.#daemon) await step('the daemon', () => this.#daemon?.handle.stop(shutdownMs + 5_000) ?? Promise.resolve());
    await this.#logQueue;
    if (this.#server) await step('nats-server', () => this.#server?.handle.stop(SERVER_STOP_GRACE_MS) ?? Promise.resolve());
    for (const c of this.#children) c.killNow(); // anything a failed start left behind
    await Promise.all(this.#children.map((c) => Promise.race([c.closed, systemClock.sleep(3_000)])));
    if (this.#workDir) rmSync(this.#workDir, { recursive: true, force: true });
    out.stopClock();
    if (started) {
      const left = this.#children.filter((c) => c.running);
      out.step(
        left.length === 0
          ? `stopped: ${this.#children.map((c) => `${c.name} (pid ${c.pid})`).join(', ')}; connections closed`
          : `still running: ${left.map((c) => `${c.name} pid ${c.pid}`).join(', ')}; kill them by hand`,
      );
    }
  }

  #report(): number {
    const out = this.#out;
    if (this.#failure !== undefined) out.plain(`\n${this.#failure}`);
    const good = this.#incidents.filter((i) => i.manifest === undefined || i.manifest.status !== 'failed');
    if (this.#incidents.length > 0) {
      out.plain('');
      out.step(`${this.#incidents.length} incident${this.#incidents.length === 1 ? '' : 's'} written to ${displayPath(this.#dir, this.#cwd)}/:`);
      for (const i of this.#incidents) {
        const files = i.manifest?.profiles.filter((p) => p.file !== null).map((p) => p.file).join(', ') ?? '';
        out.plain(`    ${i.shownPath}  ${i.manifest ? `(${i.manifest.status}: ${files || 'no profiles'})` : ''}`);
      }
    }
    if (good.length > 0) {
      const go = onPath('go', this.#io.env) ? '' : ' (Go is not installed here: https://go.dev/dl/)';
      out.plain(`\n  Open the profiles with Go's pprof${go}:`);
      for (const l of pprofHints(good)) out.plain(`    ${l}`);
      return this.#failure === undefined ? 0 : 1;
    }
    out.plain('');
    out.step(`no incident with a profile was written: ${this.#whyNothing()}`);
    return 1;
  }

  #whyNothing(): string {
    if (this.#failure !== undefined) return 'a process the demo started exited early (see above)';
    if (this.#incidents.length > 0) return 'every capture failed (see the FAILED lines above)';
    if (this.#fired > 0) return `a rule fired ${this.#fired} time(s), but the demo stopped before the capture was written`;
    const cpuRule = this.#config?.triggers.find((t) => t.metric === 'cpu');
    const memRule = this.#config?.triggers.find((t) => t.metric === 'mem');
    const peaks =
      `${DEMO_SERVER_NAME} peaked at cpu ${formatValue('cpu', this.#peakCpu)}${cpuRule ? ` (rule: above ${cpuRule.above}%)` : ''}` +
      ` and mem ${formatMiB(this.#peakMem)}${memRule ? ` (rule: above ${formatSize(memRule.above)})` : ''}`;
    if (this.#peakCpu === 0 && this.#peakMem === 0) return `${this.#stopReason}, before the daemon reported any reading`;
    return `${this.#stopReason}; ${peaks}. Let it run longer (rules need about 20s), or try on a less busy machine`;
  }
}

/** The `demo` command; returns the exit code (0: at least one incident with a profile). */
export async function demo(args: string[], io: DemoIo, version: () => string): Promise<number> {
  const parsed = parseDemoArgs(args);
  if (parsed.kind === 'help') {
    io.stdout.write(DEMO_HELP);
    return 0;
  }
  if (parsed.kind === 'version') {
    io.stdout.write(`${version()}\n`);
    return 0;
  }
  return new DemoRun(io, parsed.options).run();
}
