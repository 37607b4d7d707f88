/**
 * The node flags the daemon is started with (package.json "start" is the reference): the same in every
 * launcher the project ships, and doing what they are there for. The Dockerfile and the systemd unit are
 * checked in their own tests.
 */
import * as assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { MAIN, ROOT } from '../helpers/daemon.js';
import { shippedNodeFlags } from '../helpers/node-flags.js';
import { runCommand } from '../helpers/run.js';

describe('the node flags every launcher passes', () => {
  const flags = shippedNodeFlags();

  it('package.json "start" has them, and caps the young generation', () => {
    assert.deepEqual(flags, ['--max-semi-space-size=4']);
  });

  it('the bin (src/main.ts, and dist/main.js built from it) passes them through env -S', () => {
    const shebang = `#!/usr/bin/env -S node ${flags.join(' ')}`;
    assert.equal(readFileSync(path.join(ROOT, 'src', 'main.ts'), 'utf8').split('\n')[0], shebang);
    if (existsSync(MAIN)) assert.equal(readFileSync(MAIN, 'utf8').split('\n')[0], shebang);
  });

  it("the README's run command passes them", () => {
    assert.ok(readFileSync(path.join(ROOT, 'README.md'), 'utf8').includes(`node ${flags.join(' ')} dist/main.js run --config`));
  });

  it('this node accepts them, and with them a burst of young garbage leaves new space at 8 MB at most', async () => {
    // 3 million short-lived objects: without the cap V8 grows new space towards its 32 MB default.
    const script = "let a; for (let i = 0; i < 3e6; i++) a = { i, s: 'x' + i }; const s = require('v8').getHeapSpaceStatistics().find((x) => x.space_name === 'new_space'); console.log(s.space_size, a.i)";
    const r = await runCommand(process.execPath, [...flags, '-e', script]);
    assert.equal(r.code, 0, r.stderr);
    const size = Number(r.stdout.trim().split(' ')[0]);
    assert.ok(size > 0 && size <= 8 * 1024 * 1024, `new space ${size} bytes`);
  });
});
