/** `promtool check metrics` on an exposition text; promtool comes from scripts/get-promtool.sh. */
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './daemon.js';

let bin: Promise<string> | undefined;

export async function promtoolCheck(text: string): Promise<{ code: number | null; output: string }> {
  bin ??= promisify(execFile)('bash', [join(ROOT, 'scripts', 'get-promtool.sh')], { timeout: 180_000 }).then((r) => r.stdout.trim());
  const path = await bin;
  return new Promise((resolve) => {
    const p = spawn(path, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    p.stdout.on('data', (b: Buffer) => (output += b.toString()));
    p.stderr.on('data', (b: Buffer) => (output += b.toString()));
    p.on('exit', (code) => resolve({ code, output }));
    p.stdin.end(text);
  });
}
