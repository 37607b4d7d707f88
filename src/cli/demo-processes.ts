/**
 * The processes `nats-autoprof demo` starts: a nats-server (found or fetched by
 * scripts/get-nats-server.sh) and the daemon (`node dist/main.js run`). Each runs in its own process group
 * so that Ctrl-C in the terminal reaches only the demo, which then stops them in order. Every wait here
 * is bounded, and `stop()` waits for the process to be gone (reaped), escalating to SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { AutoprofError } from '../errors.js';

type Env = Readonly<Record<string, string | undefined>>;

/** get-nats-server.sh may download Debian's package the first time (5-10 s); allow for a slow mirror. */
const FETCH_NATS_SERVER_TIMEOUT_MS = 180_000;
const SERVER_HEALTHY_TIMEOUT_MS = 10_000;
const KILL_WAIT_MS = 3_000;
/** How much of a child's output is kept to explain a failure. */
const TAIL_CHARS = 4_000;

export const SYS_USER = 'sys';
export const APP_USER = 'app';

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function appendTail(tail: string, chunk: string): string {
  const all = tail + chunk;
  return all.length > TAIL_CHARS ? all.slice(all.length - TAIL_CHARS) : all;
}

/** A started child process: its pid, its exit, and a stop that always ends with the process gone. */
export class ChildHandle {
  readonly name: string;
  readonly pid: number;
  /** Resolves once the process exited and its output streams closed. */
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #proc: ChildProcess;
  #exited = false;
  #tail = '';

  constructor(name: string, proc: ChildProcess) {
    // Without a listener, a failed spawn (ENOENT) would be an uncaught 'error' event.
    proc.on('error', (err) => this.keep(`${err.message}\n`));
    if (proc.pid === undefined) throw new AutoprofError(`could not start ${name} (${proc.spawnfile})`);
    this.name = name;
    this.pid = proc.pid;
    this.#proc = proc;
    this.closed = new Promise((resolve) => {
      proc.once('close', (code, signal) => {
        this.#exited = true;
        resolve({ code, signal });
      });
    });
  }

  get running(): boolean {
    return !this.#exited && this.#proc.exitCode === null && this.#proc.signalCode === null;
  }

  /** The last few KB the process wrote to stderr (and stdout, when the caller passes it in). */
  get tail(): string {
    return this.#tail.trim();
  }

  keep(chunk: string): void {
    this.#tail = appendTail(this.#tail, chunk);
  }

  /** Asks the process to stop, waits `graceMs`, then SIGKILLs it; resolves once it is gone. Idempotent. */
  async stop(graceMs: number): Promise<void> {
    if (this.running) this.#proc.kill('SIGTERM');
    if (await within(this.closed, graceMs)) return;
    this.#proc.kill('SIGKILL');
    if (!(await within(this.closed, KILL_WAIT_MS))) throw new AutoprofError(`${this.name} (pid ${this.pid}) did not exit after SIGKILL`);
  }

  /** Last resort when the demo itself is exiting: synchronous, no waiting. */
  killNow(): void {
    if (this.running) this.#proc.kill('SIGKILL');
  }
}

async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  const done = await Promise.race([p.then(() => true as const), timeout]);
  clearTimeout(timer);
  return done;
}

/**
 * Runs scripts/get-nats-server.sh (bash) and returns the path it prints. Its progress lines (stderr) go
 * to `onLine`: the first run downloads a nats-server.
 */
export async function findNatsServer(root: string, env: Env, signal: AbortSignal, onLine: (line: string) => void): Promise<string> {
  const script = join(root, 'scripts', 'get-nats-server.sh');
  const proc = spawn('bash', [script], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const handle = new ChildHandle('get-nats-server.sh', proc);
  let stdout = '';
  let partial = '';
  proc.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
  proc.stderr?.on('data', (b: Buffer) => {
    const text = b.toString();
    handle.keep(text);
    partial += text;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.trim() !== '') onLine(line);
  });
  const onAbort = (): void => void handle.stop(1_000).catch(() => undefined);
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    if (!(await within(handle.closed, FETCH_NATS_SERVER_TIMEOUT_MS))) {
      await handle.stop(1_000);
      throw new AutoprofError(`scripts/get-nats-server.sh did not finish within ${FETCH_NATS_SERVER_TIMEOUT_MS / 1000}s`);
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  if (signal.aborted) throw new AutoprofError('interrupted while looking for nats-server');
  const { code } = await handle.closed;
  const bin = stdout.trim().split('\n').pop() ?? '';
  if (code !== 0 || bin === '') {
    throw new AutoprofError(
      `could not get a nats-server (scripts/get-nats-server.sh exited ${code}): ${handle.tail || 'no output'}; ` +
        'install nats-server 2.10.19 or newer, or set NATS_SERVER_BIN to one',
    );
  }
  return bin;
}

/** `count` distinct free loopback ports: all held open at once, so none is handed out twice. */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const srv = createServer();
      servers.push(srv);
      ports.push(
        await new Promise<number>((resolve, reject) => {
          srv.once('error', reject);
          srv.listen(0, '127.0.0.1', () => {
            const a = srv.address();
            if (a === null || typeof a === 'string') reject(new Error('no port'));
            else resolve(a.port);
          });
        }),
      );
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

export interface DemoServerPorts {
  readonly client: number;
  readonly monitor: number;
  readonly prof: number;
}

export interface DemoServer {
  readonly handle: ChildHandle;
  readonly ports: DemoServerPorts;
  readonly configFile: string;
  readonly sysPassword: string;
  readonly appPassword: string;
  readonly natsUrl: string;
  readonly monitorUrl: string;
  readonly profUrl: string;
}

/** A new password for each run: nothing to leak, nothing to configure. */
function password(): string {
  return randomBytes(12).toString('hex');
}

function serverConfig(name: string, ports: DemoServerPorts, sysPassword: string, appPassword: string): string {
  return [
    '# Written by nats-autoprof demo for this run only.',
    `server_name: ${name}`,
    `listen: 127.0.0.1:${ports.client}`,
    `http: 127.0.0.1:${ports.monitor}`,
    '# Go pprof over HTTP, no authentication: it binds the listen host above, loopback only.',
    `prof_port: ${ports.prof}`,
    'max_payload: 2MB',
    'accounts {',
    `  SYS { users = [ { user: ${SYS_USER}, password: "${sysPassword}" } ] }`,
    `  APP { users = [ { user: ${APP_USER}, password: "${appPassword}" } ] }`,
    '}',
    'system_account: SYS',
    '',
  ].join('\n');
}

/** Writes a config into `workDir`, starts nats-server and waits until /healthz answers 200. */
export async function startNatsServer(o: { bin: string; name: string; workDir: string; ports: DemoServerPorts; env: Env }): Promise<DemoServer> {
  const sysPassword = password();
  const appPassword = password();
  const configFile = join(o.workDir, 'nats-server.conf');
  writeFileSync(configFile, serverConfig(o.name, o.ports, sysPassword, appPassword), { mode: 0o600 });
  const proc = spawn(o.bin, ['-c', configFile], { env: o.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const handle = new ChildHandle('nats-server', proc);
  proc.stdout?.on('data', (b: Buffer) => handle.keep(b.toString()));
  proc.stderr?.on('data', (b: Buffer) => handle.keep(b.toString()));
  const server: DemoServer = {
    handle,
    ports: o.ports,
    configFile,
    sysPassword,
    appPassword,
    natsUrl: `nats://127.0.0.1:${o.ports.client}`,
    monitorUrl: `http://127.0.0.1:${o.ports.monitor}`,
    profUrl: `http://127.0.0.1:${o.ports.prof}`,
  };
  const deadline = Date.now() + SERVER_HEALTHY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!handle.running) break;
    try {
      const res = await fetch(`${server.monitorUrl}/healthz`, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.ok) return server;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  const why = handle.running ? `did not become healthy within ${SERVER_HEALTHY_TIMEOUT_MS / 1000}s` : 'exited at start';
  await handle.stop(1_000);
  throw new AutoprofError(`nats-server ${why}: ${handle.tail || 'no output'}`);
}

export interface DemoDaemon {
  readonly handle: ChildHandle;
  readonly apiUrl: string;
}

/**
 * Starts `node <main> run --config <file>` with `env`; every stdout line goes to `onLine` (the daemon
 * logs JSON lines there), stderr is kept for errors. Resolves once it is ready (/readyz 200: the server
 * was polled), within `readyTimeoutMs`.
 */
export async function startDaemon(o: {
  execPath: string;
  main: string;
  configFile: string;
  env: Env;
  port: number;
  readyTimeoutMs: number;
  onLine: (line: string) => void;
}): Promise<DemoDaemon> {
  const proc = spawn(o.execPath, [o.main, 'run', '--config', o.configFile], { env: o.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const handle = new ChildHandle('the daemon', proc);
  let partial = '';
  proc.stdout?.on('data', (b: Buffer) => {
    partial += b.toString();
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) if (line.trim() !== '') o.onLine(line);
  });
  proc.stdout?.on('end', () => {
    if (partial.trim() !== '') o.onLine(partial);
    partial = '';
  });
  proc.stderr?.on('data', (b: Buffer) => handle.keep(b.toString()));
  const daemon = { handle, apiUrl: `http://127.0.0.1:${o.port}` };
  const deadline = Date.now() + o.readyTimeoutMs;
  while (Date.now() < deadline && handle.running) {
    try {
      const res = await fetch(`${daemon.apiUrl}/readyz`, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.ok) return daemon;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  const why = handle.running ? `was not ready within ${o.readyTimeoutMs / 1000}s` : 'exited at start';
  await handle.stop(2_000);
  throw new AutoprofError(`the daemon ${why}: ${handle.tail || 'no output on stderr'}`);
}
