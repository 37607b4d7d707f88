/**
 * The documentation tells the truth about the configuration: every key the loader accepts is documented in
 * its own section of config/example.yaml (live or commented out) and has its own row in the README's
 * reference, and every key the example shows is one the loader accepts.
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
const reference = readme.slice(readme.indexOf('<!-- config-reference:start -->'), readme.indexOf('<!-- config-reference:end -->'));
const accepted = new Set(Object.values(KEYS).flat() as string[]);

const lines = example.split('\n');
/** Each line with comment markers taken off the front (`#   # token:` is `  token:`); a list dash counts as indentation. */
const shape = lines.map((line) => {
  let l = line;
  for (let prev = ''; prev !== l; ) {
    prev = l;
    l = l.replace(/^(\s*)# ?/, '$1');
  }
  const m = /^(\s*)(- )?(.*)$/.exec(l) as RegExpExecArray;
  return { indent: (m[1] as string).length + (m[2] ?? '').length, text: m[3] as string, blank: (m[3] as string).trim() === '' };
});

/** The lines of example.yaml under the YAML path `where` (`servers[].basic_auth`), or undefined. */
function block(where: string): { from: number; to: number } | undefined {
  let from = 0;
  let to = lines.length;
  for (const key of where.split('.').filter((k) => k !== '')) {
    const name = key.replace(/\[\]$/, '');
    let found: number | undefined;
    for (let i = from; i < to; i++) {
      const s = shape[i];
      if (s !== undefined && s.text.startsWith(`${name}:`) && (found === undefined || s.indent < (shape[found]?.indent ?? 0))) found = i;
    }
    if (found === undefined) return undefined;
    const indent = shape[found]?.indent ?? 0;
    let end = found + 1;
    while (end < to && (shape[end]?.blank === true || (shape[end]?.indent ?? 0) > indent)) end++;
    from = found;
    to = end;
  }
  return { from, to };
}

describe('configuration docs', () => {
  it('config/example.yaml loads', async () => {
    await loadConfig(join(root, 'config', 'example.yaml'), {});
  });

  for (const [section, keys] of Object.entries(KEYS)) {
    for (const key of keys) {
      const where = section ? `${section}.${key}` : key;
      it(`${where} is documented in its section of config/example.yaml and has its row in the README`, () => {
        const b = block(section);
        assert.ok(b !== undefined, `section ${section} is missing from config/example.yaml`);
        const text = lines.slice(b.from, b.to).join('\n');
        assert.ok(new RegExp(`(^|[\\s{,#-])${key}:`, 'm').test(text), `${where} is missing from its section of config/example.yaml`);
        assert.ok(reference.includes(`| \`${where}\` |`) || reference.includes(`| \`${where}[]\` |`), `${where} has no row in the README's configuration reference`);
      });
    }
  }

  it('a key in the wrong section is not counted as documented', () => {
    const b = block('poll');
    assert.ok(b !== undefined);
    const text = lines.slice(b.from, b.to).join('\n');
    assert.ok(/interval:/.test(text));
    assert.ok(!/max_concurrent:/.test(text), 'capture.max_concurrent must not count for poll');
    assert.equal(block('nothing.here'), undefined);
  });

  it('every key the example shows, commented out or not, is accepted by the loader', () => {
    const shown = [...example.matchAll(/^\s*(?:#\s*)?(?:-\s+)?([a-z_]+):(?:\s|$)/gm)].map((m) => m[1] as string);
    assert.ok(shown.length > 50, `found only ${shown.length} keys`);
    // `auto:` opens a comment explaining capture.via: auto; it is prose, not a key.
    const userNames = new Set(['auto']);
    const unknown = [...new Set(shown)].filter((k) => !accepted.has(k) && !userNames.has(k));
    assert.deepEqual(unknown, []);
  });
});
