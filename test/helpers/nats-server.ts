/**
 * Starts real nats-server processes on random loopback ports for tests, and always stops them.
 * The binary comes from scripts/get-nats-server.sh (>= 2.10.19). A test that needs one and cannot get
 * one fails: it never skips.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);
const root = resolve(import.meta.dirname, '..', '..');

export const SYS_USER = 'sys';
export const SYS_PASSWORD = 'sys-secret-pw';
export const APP_USER = 'app';
export const APP_PASSWORD = 'app-secret-pw';

let binPromise: Promise<string> | undefined;

export function natsServerBin(): Promise<string> {
  binPromise ??= execFileP('bash', [join(root, 'scripts', 'get-nats-server.sh')], { timeout: 120_000 }).then(
    ({ stdout }) => {
      const bin = stdout.trim();
      if (!bin) throw new Error('scripts/get-nats-server.sh printed no path');
      return bin;
    },
  );
  return binPromise;
}

/**
 * The first port of the kernel's ephemeral range (outgoing connections take their local port from it).
 * Ports handed to servers come from below it: a port found free inside the range can be taken by any
 * process's outgoing connection before the server binds it, which happened often while a polling
 * benchmark held 20,000 connections on this machine ("bind: address already in use" three times running).
 */
function ephemeralStart(): number {
  try {
    const lo = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(lo) && lo > 2_048 ? lo : 32_768;
  } catch {
    return 32_768;
  }
}

function tryPort(port: number): Promise<number | undefined> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' || err.code === 'EACCES' ? res(undefined) : rej(err)));
    srv.listen(port, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        rej(new Error('no port'));
        return;
      }
      srv.close(() => res(addr.port));
    });
  });
}

const handedOut = new Set<number>();

/** A port free on 127.0.0.1 now, chosen at random below the ephemeral range (falls back to one inside it). */
export async function freePort(): Promise<number> {
  const hi = ephemeralStart();
  const lo = Math.max(1_024, hi - 16_384);
  for (let i = 0; i < 50; i++) {
    const candidate = lo + Math.floor(Math.random() * (hi - lo));
    // Not one handed out earlier by this process (it is free again until its server binds it).
    if (handedOut.has(candidate)) continue;
    const p = await tryPort(candidate);
    if (p !== undefined) {
      handedOut.add(p);
      return p;
    }
  }
  const p = await tryPort(0);
  if (p === undefined) throw new Error('no free port');
  return p;
}

export interface ServerOptions {
  name?: string;
  tags?: string[];
  clusterName?: string;
  /** Cluster ports of the other members to route to. */
  routes?: number[];
  /** Open prof_port (default true). */
  profPort?: boolean;
  /** Extra config text appended verbatim. */
  extra?: string;
  /** Enable JetStream (store under the server's temp dir) and allow it for the APP account (never SYS). */
  jetstream?: boolean;
}

export interface Ports {
  client: number;
  monitor: number;
  prof: number;
  cluster: number;
}

export class NatsServer {
  readonly name: string;
  readonly ports: Ports;
  readonly dir: string;
  readonly configFile: string;
  #proc: ChildProcess | undefined;
  #log = '';

  constructor(name: string, ports: Ports, dir: string, configText: string) {
    this.name = name;
    this.ports = ports;
    this.dir = dir;
    this.configFile = join(dir, `${name}.conf`);
    writeFileSync(this.configFile, configText);
  }

  get monitorUrl(): string {
    return `http://127.0.0.1:${this.ports.monitor}`;
  }
  get profUrl(): string {
    return `http://127.0.0.1:${this.ports.prof}`;
  }
  get natsUrl(): string {
    return `nats://127.0.0.1:${this.ports.client}`;
  }
  get pid(): number | undefined {
    return this.#proc?.pid;
  }
  get output(): string {
    return this.#log;
  }

  async start(): Promise<void> {
    const bin = await natsServerBin();
    const proc = spawn(bin, ['-c', this.configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#proc = proc;
    const collect = (b: Buffer): void => {
      if (this.#log.length < 200_000) this.#log += b.toString();
    };
    proc.stdout?.on('data', collect);
    proc.stderr?.on('data', collect);
    // 30 s: a clustered JetStream server restarted after a SIGKILL can take more than 10 s on a loaded
    // machine to be current with the meta leader again (healthz fails until it is).
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`nats-server ${this.name} exited: ${this.#log}`);
      try {
        // Bounded: if another process took the port meanwhile, it may never answer.
        const res = await fetch(`${this.monitorUrl}/healthz`, { signal: AbortSignal.timeout(1_000) });
        await res.arrayBuffer();
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`nats-server ${this.name} did not become healthy: ${this.#log}`);
  }

  /** Stops the process (SIGTERM, or the given signal) and waits for it to exit. Idempotent. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const proc = this.#proc;
    this.#proc = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  kill(): Promise<void> {
    return this.stop('SIGKILL');
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

function configText(name: string, ports: Ports, opts: ServerOptions, dir = ''): string {
  const tags = opts.tags ?? ['az:test-1', 'env:test'];
  const js = opts.jetstream === true;
  const lines = [
    `server_name: ${name}`,
    `listen: 127.0.0.1:${ports.client}`,
    `http: 127.0.0.1:${ports.monitor}`,
    ...(opts.profPort === false ? [] : [`prof_port: ${ports.prof}`]),
    `server_tags: ${JSON.stringify(tags)}`,
    'accounts {',
    `  SYS { users = [ { user: ${SYS_USER}, password: ${SYS_PASSWORD} } ] }`,
    `  APP { users = [ { user: ${APP_USER}, password: ${APP_PASSWORD} } ]${js ? ', jetstream: enabled' : ''} }`,
    '}',
    ...(js ? [`jetstream { store_dir: ${JSON.stringify(join(dir, `${name}-js`))}, max_memory_store: 64MB, max_file_store: 256MB }`] : []),
    'system_account: SYS',
    'cluster {',
    `  name: ${opts.clusterName ?? 'test-cluster'}`,
    `  listen: 127.0.0.1:${ports.cluster}`,
    ...(opts.routes && opts.routes.length > 0
      ? [`  routes: [ ${opts.routes.map((p) => `nats-route://127.0.0.1:${p}`).join(', ')} ]`]
      : []),
    '}',
    opts.extra ?? '',
  ];
  return lines.join('\n') + '\n';
}

async function allocPorts(): Promise<Ports> {
  return { client: await freePort(), monitor: await freePort(), prof: await freePort(), cluster: await freePort() };
}

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'nats-autoprof-srv-'));
  dirs.push(d);
  return d;
}

/** Starts one server. Call `stop()` in an `after` hook. */
export async function startServer(opts: ServerOptions = {}): Promise<NatsServer> {
  return portRetry(async () => {
    const name = opts.name ?? 'n1';
    const ports = await allocPorts();
    const dir = tempDir();
    const srv = new NatsServer(name, ports, dir, configText(name, ports, opts, dir));
    await srv.start().catch(async (err: unknown) => {
      await srv.stop('SIGKILL');
      throw err;
    });
    return srv;
  });
}

/**
 * Ports are found free, released, then bound by nats-server: with test files running in parallel another
 * process can take one in between. Such a start is tried again on fresh ports (three times at most).
 */
async function portRetry<T>(start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      const inUse = /address already in use|did not become healthy/i.test(String(err));
      if (!inUse || attempt >= 3) throw err;
    }
  }
}

/** Starts a cluster of `names.length` routed servers sharing one cluster name. */
export async function startCluster(
  names: string[],
  opts: Omit<ServerOptions, 'name' | 'routes'> & { tagsByName?: Record<string, string[]> } = {},
): Promise<NatsServer[]> {
  return portRetry(async () => {
    const dir = tempDir();
    const allPorts = await Promise.all(names.map(() => allocPorts()));
    const servers = names.map((name, i) => {
      const ports = allPorts[i] as Ports;
      const routes = allPorts.filter((_, j) => j !== i).map((p) => p.cluster);
      const tags = opts.tagsByName?.[name] ?? opts.tags;
      return new NatsServer(name, ports, dir, configText(name, ports, { ...opts, name, routes, ...(tags ? { tags } : {}) }, dir));
    });
    const started = await Promise.allSettled(servers.map((s) => s.start()));
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) {
      await Promise.all(servers.map((s) => s.stop('SIGKILL')));
      throw failed.reason;
    }
    return servers;
  });
}

export function cleanupTempDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/**
 * The 3-server cluster the fleet tests use: n1, n10 (a name with n1 as a prefix) and n2, with different
 * tags, in cluster `fleet`. Resolves once every server answers over the system account.
 */
export async function startFleetCluster(): Promise<NatsServer[]> {
  const cluster = await startCluster(['n1', 'n10', 'n2'], {
    clusterName: 'fleet',
    tagsByName: { n1: ['az:eu-1', 'role:core'], n10: ['az:eu-2', 'role:core'], n2: ['az:eu-1', 'role:edge'] },
  });
  const { connect } = await import('@nats-io/transport-node');
  const { requestAllOn } = await import('../../src/capture/nats-connection.js');
  const nc = await connect({ servers: cluster[0]?.natsUrl, user: SYS_USER, pass: SYS_PASSWORD });
  try {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const r = await requestAllOn(nc, '$SYS.REQ.SERVER.PING.STATSZ', '', { timeoutMs: 1_000, stallMs: 300 });
      if (r.replies.length === cluster.length) break;
      if (Date.now() > deadline) throw new Error(`the cluster did not form: ${r.replies.length} of ${cluster.length} servers answer`);
      await new Promise((res) => setTimeout(res, 200));
    }
  } finally {
    await nc.close();
  }
  return cluster;
}
