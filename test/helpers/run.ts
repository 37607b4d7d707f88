/** Runs a command to completion with a clean environment (PATH plus `env`), bounded in time. */
import { spawn } from 'node:child_process';
import { ROOT } from './daemon.js';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The program does not exist (ENOENT). */
  missing: boolean;
}

export function runCommand(bin: string, args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve) => {
    const p = spawn(bin, args, { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: String(err), missing: err.code === 'ENOENT' });
    });
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, missing: false });
    });
  });
}
