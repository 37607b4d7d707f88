/**
 * Child processes of a benchmark (simulators, baselines, the daemon): every one is tracked and killed by
 * its own pid when the benchmark ends, fails or is interrupted.
 */
import { fork, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { resolve } from 'node:path';

export const BENCH_DIR = resolve(import.meta.dirname, '..');
export const ROOT = resolve(BENCH_DIR, '..');

const live = new Set<ChildProcess>();

function track(p: ChildProcess): ChildProcess {
  live.add(p);
  p.once('exit', () => live.delete(p));
  return p;
}

let hooked = false;
function hook(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      killAll();
      process.exit(130);
    });
  }
}

/** SIGKILLs every child still running (each by its pid). */
export function killAll(): void {
  for (const p of live) {
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
}

/** A tracked child running a TypeScript file under tsx, with an IPC channel. */
export function forkTs(file: string, args: string[] = [], opts: { stdio?: 'inherit' | 'pipe' } = {}): ChildProcess {
  hook();
  return track(
    fork(resolve(BENCH_DIR, file), args, {
      execArgv: ['--import', 'tsx'],
      stdio: opts.stdio === 'pipe' ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'inherit', 'inherit', 'ipc'],
      cwd: ROOT,
    }),
  );
}

/** A tracked child running a plain .mjs file with no loader (so its memory compares with the daemon's). */
export function forkPlain(file: string, args: string[] = [], execArgv: string[] = []): ChildProcess {
  hook();
  return track(fork(resolve(BENCH_DIR, file), args, { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: ROOT }));
}

export function spawnTracked(cmd: string, args: string[], opts: SpawnOptions): ChildProcess {
  hook();
  return track(spawn(cmd, args, opts));
}

/** Sends a message and resolves with the first reply of `type` (the child answers `{ type, ... }`). */
export function ask<T = Record<string, unknown>>(p: ChildProcess, msg: Record<string, unknown>, replyType: string, timeoutMs = 60_000): Promise<T> {
  return new Promise<T>((res, rej) => {
    const onMsg = (m: unknown): void => {
      const r = m as { type?: string; error?: string };
      if (r.type === 'error') {
        cleanup();
        rej(new Error(`${String(p.spawnfile)}: ${r.error}`));
      } else if (r.type === replyType) {
        cleanup();
        res(m as T);
      }
    };
    const onExit = (code: number | null): void => {
      cleanup();
      rej(new Error(`child exited (${code}) while waiting for "${replyType}"`));
    };
    const timer = setTimeout(() => {
      cleanup();
      rej(new Error(`no "${replyType}" reply within ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      p.off('message', onMsg);
      p.off('exit', onExit);
    };
    p.on('message', onMsg);
    p.once('exit', onExit);
    p.send(msg);
  });
}

/** Asks a child to stop (SIGTERM), SIGKILL after `graceMs`. */
export async function stopChild(p: ChildProcess, graceMs = 5_000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
