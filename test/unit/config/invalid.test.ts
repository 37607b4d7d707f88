/**
 * The corpus of invalid configurations: every `test/fixtures/configs/invalid/NN-name.yaml` must fail to load
 * with exactly the message in its sibling `NN-name.expected` (the fixtures directory written as `<dir>`).
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { ConfigError, formatProblem } from '../../../src/errors.js';
import { loadConfig, parseConfigText } from '../../../src/config/load.js';

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/configs/invalid');
/** The fixtures do not depend on the environment the tests run in. */
const ENV = { HOME: '/home/test' };

async function loadError(file: string): Promise<ConfigError> {
  try {
    await loadConfig(file, ENV);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail(`${path.basename(file)} loaded without error`);
}

describe('invalid configurations', () => {
  const fixtures = readdirSync(DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort();

  it('the corpus has at least 25 fixtures, each with an .expected file', () => {
    assert.ok(fixtures.length >= 25, `only ${fixtures.length} fixtures`);
    for (const f of fixtures) assert.match(f, /^\d{2,3}-[a-z0-9-]+\.yaml$/);
    const expected = readdirSync(DIR).filter((f) => f.endsWith('.expected'));
    assert.deepEqual(expected.sort(), fixtures.map((f) => f.replace(/\.yaml$/, '.expected')));
  });

  for (const fixture of fixtures) {
    it(fixture, async () => {
      const file = path.join(DIR, fixture);
      const started = performance.now();
      const err = await loadError(file);
      // A correctness bound, not a benchmark: a bad file is refused at once, never after a long parse.
      assert.ok(performance.now() - started < 1_000, `${fixture} took ${performance.now() - started} ms`);
      const expected = readFileSync(file.replace(/\.yaml$/, '.expected'), 'utf8').replace(/\n$/, '');
      assert.equal(err.message.replaceAll(DIR, '<dir>'), expected);
      // The message is the problems, each formatted by formatProblem, and the file is the one given.
      assert.equal(err.file, file);
      assert.deepEqual(
        err.message.split('\n').slice(1),
        err.problems.map((p) => `  ${formatProblem(file, p)}`),
      );
    });
  }

  it('reports several problems of one file together, each with path, line and column', async () => {
    const err = await loadError(path.join(DIR, '26-multiple-problems.yaml'));
    assert.equal(err.problems.length, 10);
    for (const p of err.problems) {
      assert.ok(p.path !== '' && p.line !== undefined && p.column !== undefined, JSON.stringify(p));
    }
  });

  it('refuses the alias bomb within 1s', async () => {
    const started = performance.now();
    const err = await loadError(path.join(DIR, '27-alias-bomb.yaml'));
    const ms = performance.now() - started;
    assert.ok(ms < 1_000, `took ${ms}ms`);
    assert.match(err.message, /refused as a possible alias bomb/);
  });

  it('accepts a few aliases (the limit is on expansion, not on aliases as such)', () => {
    const c = parseConfigText(
      'servers:\n  - { url: "http://a:8222", headers: &h { X-A: "1", X-B: "2" } }\n  - { url: "http://b:8222", headers: *h }\n',
      '/cfg/c.yaml',
      {},
    );
    assert.deepEqual(Object.keys(c.servers[1]?.headers ?? {}), ['X-A', 'X-B']);
  });

  it('refuses a file over 1 MiB before parsing it', async () => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'autoprof-big-'));
    try {
      const file = path.join(tmp, 'big.yaml');
      const line = '# padding padding padding padding padding padding padding padding padding\n';
      const text = `log: { level: info }\n${line.repeat(Math.ceil((1024 * 1024) / line.length) + 1)}`;
      writeFileSync(file, text);
      const size = Buffer.byteLength(text);
      assert.ok(size > 1024 * 1024);
      const err = await loadError(file);
      assert.equal(
        err.message,
        `invalid configuration ${file}: 1 problem\n  ${file}: the file has ${size} bytes; a configuration file may have at most 1MiB (hint: is this the right file?)`,
      );
      assert.throws(() => parseConfigText(text, file, {}), { message: err.message });
      // Exactly 1 MiB is still allowed.
      const limit = 'log: { level: info }\n';
      writeFileSync(file, limit + '#'.repeat(1024 * 1024 - limit.length));
      assert.equal((await loadConfig(file, {})).log.level, 'info');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('refuses a 50 MB file quickly, without reading it', async () => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'autoprof-huge-'));
    try {
      const file = path.join(tmp, 'huge.yaml');
      writeFileSync(file, Buffer.alloc(50 * 1024 * 1024, 0x23));
      const started = performance.now();
      const err = await loadError(file);
      assert.ok(performance.now() - started < 1_000);
      assert.equal(
        err.message,
        `invalid configuration ${file}: 1 problem\n  ${file}: the file has ${50 * 1024 * 1024} bytes; a configuration file may have at most 1MiB (hint: is this the right file?)`,
      );
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('a directory is not a configuration file', async () => {
    const err = await loadError(DIR);
    assert.deepEqual(err.problems, [{ path: '', message: 'not a regular file' }]);
  });
});
