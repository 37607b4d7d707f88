/**
 * The daemon under test, as an operator runs it: `node <package.json start's flags> dist/main.js run --config <generated>` in its own
 * process. Its JSON log lines are parsed as they come; /metrics is scraped like Prometheus would.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../test/helpers/nats-server.js';
import { shippedNodeFlags } from '../../test/helpers/node-flags.js';
import { ROOT, spawnTracked, sleep } from './children.js';
import { WindowProfiler } from './inspector.js';
import { parseExposition, type Exposition } from './prom.js';
import { readProc, type ProcSample } from './proc.js';

export const MAIN = join(ROOT, 'dist', 'main.js');
let main = MAIN;
let nodeArgs: string[] = [];

/** Extra node flags for the daemon (e.g. --max-semi-space-size=16), for experiments: after the shipped ones, so they win. */
export function useDaemonNodeArgs(args: string[]): void {
  nodeArgs = args;
}

/** Runs another build of the daemon (e.g. a patched copy, for a before/after comparison). */
export function useDaemonMain(path: string): void {
  main = path;
}

export type LogLine = Record<string, unknown> & { msg?: string; level?: string; time?: string };

export interface DaemonOptions {
  /** YAML; `{{PORT}}` and `{{DIR}}` are replaced with the listen port and `dir`. */
  config: string;
  dir: string;
  /**
   * Profile the daemon: it runs with --inspect on a loopback port, and `profile(name)` ... `end()` write a
   * CPU profile of that window into this directory.
   */
  cpuProfDir?: string | undefined;
  /** Called for every log line as it arrives. */
  onLog?: (l: LogLine) => void;
  readyTimeoutMs?: number;
}

export class BenchDaemon {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly port: number;
  readonly logs: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;
  #profDir: string | undefined;
  #profiler: { p: WindowProfiler; file: string } | undefined;

  private constructor(proc: ChildProcess, port: number, onLog: ((l: LogLine) => void) | undefined) {
    this.proc = proc;
    this.pid = proc.pid as number;
    this.port = port;
    let partial = '';
    proc.stdout?.on('data', (b: Buffer) => {
      partial += b.toString();
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.trim()) continue;
        let l: LogLine;
        try {
          l = JSON.parse(line) as LogLine;
        } catch {
          l = { msg: line, level: 'unparsed' };
        }
        this.logs.push(l);
        onLog?.(l);
      }
    });
    proc.stderr?.on('data', (b: Buffer) => {
      if (this.stderr.length < 100_000) this.stderr += b.toString();
    });
    this.exited = new Promise((r) => proc.once('exit', (code) => r(code)));
  }

  static async start(o: DaemonOptions): Promise<BenchDaemon> {
    mkdirSync(o.dir, { recursive: true });
    const port = await freePort();
    const file = join(o.dir, 'nats-autoprof.yaml');
    writeFileSync(file, o.config.replaceAll('{{PORT}}', String(port)).replaceAll('{{DIR}}', o.dir));
    const node = o.cpuProfDir ? ['--inspect=127.0.0.1:0'] : [];
    // As an operator runs it: with the flags every launcher of the project passes (package.json "start").
    const proc = spawnTracked(process.execPath, [...shippedNodeFlags(), ...nodeArgs, ...node, main, 'run', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], cwd: o.dir });
    const d = new BenchDaemon(proc, port, o.onLog);
    d.#profDir = o.cpuProfDir;
    const deadline = Date.now() + (o.readyTimeoutMs ?? 60_000);
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`daemon exited with ${proc.exitCode}: ${d.stderr}${d.logs.map((l) => JSON.stringify(l)).join('\n')}`);
      try {
        const res = await fetch(`${d.url}/healthz`);
        await res.arrayBuffer();
        if (res.status < 500) return d;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        await d.stop();
        throw new Error('the daemon did not start listening in time');
      }
      await sleep(100);
    }
  }

  /** Starts a CPU profile of the coming window (only when started with cpuProfDir). */
  async profile(name: string): Promise<void> {
    if (!this.#profDir) return;
    const m = /Debugger listening on (ws:\/\/\S+)/.exec(this.stderr);
    if (!m) throw new Error('the daemon was started without an inspector URL on stderr');
    mkdirSync(this.#profDir, { recursive: true });
    const p = await WindowProfiler.attach(m[1] as string);
    await p.start();
    this.#profiler = { p, file: join(this.#profDir, `${name}.cpuprofile`) };
  }

  /** Ends the window started by profile() and writes the profile; returns its path. */
  async endProfile(): Promise<string | undefined> {
    const x = this.#profiler;
    if (!x) return undefined;
    this.#profiler = undefined;
    await x.p.stop(x.file);
    x.p.close();
    return x.file;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  sample(): ProcSample {
    return readProc(this.pid);
  }

  async metrics(): Promise<Exposition> {
    const res = await fetch(`${this.url}/metrics`);
    return parseExposition(await res.text());
  }

  logsWith(msg: string): LogLine[] {
    return this.logs.filter((l) => l.msg === msg);
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Resolves with the exit code. */
  async stop(graceMs = 30_000): Promise<number | null> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }
}

/** Scrapes /metrics every `everyMs` (a Prometheus-like scraper), so exposition cost is part of the figures. */
export class Scraper {
  readonly #timer: NodeJS.Timeout | undefined;
  scrapes = 0;

  constructor(d: BenchDaemon, everyMs: number) {
    if (everyMs > 0) {
      this.#timer = setInterval(() => {
        // As Prometheus asks (its scrape sends this header); fetch decompresses the answer.
        fetch(`${d.url}/metrics`, { headers: { 'accept-encoding': 'gzip' } })
          .then((r) => r.arrayBuffer())
          .then(() => this.scrapes++)
          .catch(() => undefined);
      }, everyMs);
    }
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
