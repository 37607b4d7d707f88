import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './daemon.js';

/**
 * The node flags every launcher of the project starts the daemon with, as package.json's "start" script has
 * them (the reference: test/static/node-flags.test.ts checks the others; bench/lib/daemon.ts runs the daemon
 * with them, as an operator would).
 */
export function shippedNodeFlags(): string[] {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const words = (pkg.scripts['start'] ?? '').trim().split(/\s+/);
  const main = words.indexOf('dist/main.js');
  if (words[0] !== 'node' || main < 0) throw new Error(`package.json "start" is not "node [flags] dist/main.js ...": ${pkg.scripts['start']}`);
  return words.slice(1, main);
}
