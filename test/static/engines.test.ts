/**
 * The Node.js floor (package.json engines: >=20.19) against the engines the installed packages declare.
 * `npm ci` on Node 20 warns `EBADENGINE ... @nats-io/nuid@3.0.0 requires node >= 22.x`: the one runtime
 * package that says so. It declares 22 without needing it: its only platform need is
 * `globalThis.crypto.getRandomValues` (Node >= 19), checked here on the Node that runs the suite, and every
 * system-account test (inboxes are nuids) runs on Node 20 in CI. README.md (Quick start) explains the warning.
 * A new package with a floor above 20.19 fails this test, so the README cannot go stale silently.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createInbox, nuid } from '@nats-io/transport-node';
import { ROOT } from '../helpers/daemon.js';

const FLOOR = [20, 19, 0] as const;

function parse(v: string): number[] {
  const parts = v.replace(/^v/, '').split('.').map((p) => (p === 'x' || p === '*' || p === '' ? 0 : Number(p)));
  assert.ok(parts.every((n) => Number.isInteger(n)), `not a version: ${v}`);
  return [parts[0] ?? 0, parts[1] ?? 0, parts[2] ?? 0];
}
function cmp(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
  return 0;
}

/** Whether `version` satisfies an engines range of the forms found in the lock file (`>=`, `>`, `^`, `*`, `||`). */
function satisfies(version: readonly number[], range: string): boolean {
  return range.split('||').some((alt) => {
    const tokens = alt.trim().replace(/(>=|<=|>|<|\^|~)\s+/g, '$1').split(/\s+/).filter(Boolean);
    return tokens.every((t) => {
      if (t === '*') return true;
      const m = /^(>=|<=|>|<|\^|~)?(.+)$/.exec(t);
      assert.ok(m, `unsupported range token "${t}" in "${range}"`);
      const v = parse(m[2] as string);
      switch (m[1]) {
        case '>=': return cmp(version, v) >= 0;
        case '>': return cmp(version, v) > 0;
        case '<=': return cmp(version, v) <= 0;
        case '<': return cmp(version, v) < 0;
        case '^': return cmp(version, v) >= 0 && version[0] === v[0];
        case '~': return cmp(version, v) >= 0 && version[0] === v[0] && version[1] === v[1];
        default: return cmp(version, v) === 0 || ((m[2] as string).split('.').length < 3 && version[0] === v[0]);
      }
    });
  });
}

describe('Node.js >= 20.19 and the engines of the installed packages', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string; dev?: boolean; optional?: boolean; engines?: { node?: string } }>;
  };

  it('the range reader is right on the forms it meets', () => {
    assert.equal(satisfies(FLOOR, '>=20.19'), true);
    assert.equal(satisfies(FLOOR, '>= 22.x'), false);
    assert.equal(satisfies(FLOOR, '^16 || ^18 || >=20'), true);
    assert.equal(satisfies(FLOOR, '>=20.18.1'), true);
    assert.equal(satisfies(FLOOR, '^8.16.0 || ^10.6.0 || >=11.0.0'), true);
    assert.equal(satisfies(FLOOR, '>=20.20'), false);
  });

  it('the project promises Node.js >= 20.19', () => {
    assert.equal(pkg.engines.node, '>=20.19');
    assert.equal(cmp(parse(pkg.engines.node.replace('>=', '')), FLOOR), 0);
  });

  it('of the runtime packages, only @nats-io/nuid 3.0.0 declares a higher floor (the EBADENGINE warning the README explains)', () => {
    const above = Object.entries(lock.packages)
      .filter(([name, p]) => name !== '' && !p.dev && p.engines?.node !== undefined && !satisfies(FLOOR, p.engines.node))
      .map(([name, p]) => `${name}@${p.version} ${p.engines?.node}`);
    assert.deepEqual(above, ['node_modules/@nats-io/nuid@3.0.0 >= 22.x']);
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    assert.ok(/EBADENGINE[^\n]*\n?[^\n]*@nats-io\/nuid/.test(readme), 'README.md explains the EBADENGINE warning of @nats-io/nuid');
  });

  it(`@nats-io/nuid works on this Node (${process.version}): crypto random prefixes, unique ids, inboxes`, () => {
    // nuid's only platform need; without it nuid falls back to Math.random.
    assert.equal(typeof globalThis.crypto?.getRandomValues, 'function');
    const ids = new Set(Array.from({ length: 1000 }, () => nuid.next()));
    assert.equal(ids.size, 1000);
    for (const id of ids) assert.match(id, /^[0-9A-Za-z]{22}$/);
    assert.match(createInbox(), /^_INBOX\.[0-9A-Za-z]{22}$/);
  });
});
