/**
 * Runs the built daemon (`node dist/main.js`) as a child process, as an operator would, and reads what it
 * exposes: JSON log lines, /metrics, /readyz. Always stopped in `after` hooks.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from './nats-server.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const MAIN = join(ROOT, 'dist', 'main.js');

export type LogLine = Record<string, unknown> & { msg?: string; level?: string };

export interface DaemonOptions {
  /** YAML text; `{{PORT}}` and `{{DIR}}` are replaced by the HTTP port and a temp dir. */
  config: string;
  env?: Record<string, string>;
  dir?: string;
  port?: number;
}

export class Daemon {
  readonly dir: string;
  readonly port: number;
  readonly configFile: string;
  readonly proc: ChildProcess;
  readonly logs: LogLine[] = [];
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(opts: { dir: string; port: number; configFile: string; env?: Record<string, string> }) {
    this.dir = opts.dir;
    this.port = opts.port;
    this.configFile = opts.configFile;
    this.proc = spawn(process.execPath, [MAIN, 'run', '--config', this.configFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
    });
    let partial = '';
    this.proc.stdout?.on('data', (b: Buffer) => {
      const text = b.toString();
      this.stdout += text;
      partial += text;
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.trim()) continue;
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.logs.push({ msg: line, level: 'unparsed' });
        }
      }
    });
    this.proc.stderr?.on('data', (b: Buffer) => (this.stderr += b.toString()));
    this.exited = new Promise((r) => this.proc.once('exit', (code, signal) => r({ code, signal })));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  writeConfig(text: string): void {
    writeFileSync(this.configFile, expand(text, this.port, this.dir));
  }

  async metrics(): Promise<string> {
    const res = await fetch(`${this.url}/metrics`, { signal: AbortSignal.timeout(10_000) });
    return res.text();
  }

  /** Value of one series, e.g. metric('nats_autoprof_up', { server: 'n1' }); undefined when absent. */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
    return metricValue(await this.metrics(), name, labels);
  }

  logsWith(msg: string | RegExp): LogLine[] {
    return this.logs.filter((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg ?? ''))));
  }

  /** Stops with SIGTERM (or `signal`) and returns the exit code. Idempotent. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 30_000);
    const { code } = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

function expand(text: string, port: number, dir: string): string {
  return text.replaceAll('{{PORT}}', String(port)).replaceAll('{{DIR}}', dir);
}

const dirs: string[] = [];
export function tempDir(prefix = 'nats-autoprof-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}
export function removeTempDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export async function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  const dir = opts.dir ?? tempDir();
  const port = opts.port ?? (await freePort());
  const configFile = join(dir, 'nats-autoprof.yaml');
  writeFileSync(configFile, expand(opts.config, port, dir));
  const d = new Daemon({ dir, port, configFile, ...(opts.env ? { env: opts.env } : {}) });
  await waitFor(async () => {
    if (d.proc.exitCode !== null) throw new Error(`daemon exited with ${d.proc.exitCode}: ${d.stderr}${d.stdout}`);
    try {
      // Any HTTP answer means it listens (with http.auth.metrics, /healthz answers 401).
      return (await fetch(`${d.url}/healthz`, { signal: AbortSignal.timeout(2_000) })).status < 500;
    } catch {
      return false;
    }
  }, { timeoutMs: 15_000, what: 'the daemon to listen' });
  return d;
}

/** Polls `fn` until it returns a truthy value; fails with `what` after the timeout. */
export async function waitFor<T>(fn: () => Promise<T> | T, o: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + (o.timeoutMs ?? 10_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
      if (err instanceof Error && err.message.startsWith('daemon exited')) throw err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${o.what ?? 'a condition'}${last ? `: ${String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 100));
  }
}

/** Reads one sample from a Prometheus text exposition. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const lm of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) got[lm[1] as string] = lm[2] as string;
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[4]);
  }
  return undefined;
}

/** Runs the CLI to completion. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.on('exit', (code) => res({ code, stdout, stderr }));
  });
}
