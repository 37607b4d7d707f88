#!/usr/bin/env node
// Runs every test file under test/ with node's test runner (Node 20 does not expand globs itself).
// Usage: node scripts/run-tests.mjs [unit|integration|browser|<path>...]
// Every test has a 240 s limit: a hang fails with its name instead of holding CI.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const args = process.argv.slice(2);
let files;
if (args.length === 0) files = find(join(root, 'test'));
else files = args.flatMap((a) => (['unit', 'integration', 'browser'].includes(a) ? find(join(root, 'test', a)) : [resolve(a)]));
files.sort();
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? '2';
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-timeout=240000', '--test-reporter=spec', ...files],
  { stdio: 'inherit', cwd: root },
);
process.exit(r.status ?? 1);
