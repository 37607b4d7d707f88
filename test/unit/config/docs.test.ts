/**
 * The documentation tells the truth about the configuration: every key the loader accepts is documented
 * in config/example.yaml and in the README's reference, and every key the example shows (live or
 * commented out) is one the loader accepts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../../src/config/load.js';
import { KEYS } from '../../../src/config/schema.js';

const root = join(import.meta.dirname, '..', '..', '..');
const example = readFileSync(join(root, 'config', 'example.yaml'), 'utf8');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const reference = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## Metrics'));
const accepted = new Set(Object.values(KEYS).flat() as string[]);

describe('configuration docs', () => {
  it('config/example.yaml loads', async () => {
    await loadConfig(join(root, 'config', 'example.yaml'), {});
  });

  for (const [section, keys] of Object.entries(KEYS)) {
    for (const key of keys) {
      const where = section ? `${section}.${key}` : key;
      it(`${where} is documented in config/example.yaml and the README`, () => {
        assert.ok(new RegExp(`(^|[\\s{,#])${key}:`, 'm').test(example), `${where} is missing from config/example.yaml`);
        assert.ok(new RegExp(`\\b${key}\\b`).test(reference), `${where} is missing from the README's configuration reference`);
      });
    }
  }

  it('every key the example shows, commented out or not, is accepted by the loader', () => {
    const shown = [...example.matchAll(/^\s*(?:#\s*)?(?:-\s+)?([a-z_]+):(?:\s|$)/gm)].map((m) => m[1] as string);
    assert.ok(shown.length > 50, `found only ${shown.length} keys`);
    // `auto:` opens a comment explaining capture.via: auto; it is prose, not a key.
    const userNames = new Set(['auto']);
    const unknown = [...new Set(shown)].filter((k) => !accepted.has(k) && !userNames.has(k));
    assert.deepEqual(unknown, []);
  });
});
