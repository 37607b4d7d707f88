/**
 * The table of fields a rule may watch is what real 2.10.27 servers report (the recordings under
 * test/fixtures/varz and test/fixtures/statsz), path checks with their hints, and the compiled readers.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { checkPath, compilePath, FIELDS, numericPaths, type FieldKind } from '../../../src/trigger/monitor-fields.js';
import { TriggerEngine } from '../../../src/trigger/engine.js';
import { parseStatsz } from '../../../src/watch/fleet.js';
import { parseVarz } from '../../../src/watch/varz.js';
import type { TriggerConfig } from '../../../src/config/types.js';

const fixtures = join(import.meta.dirname, '..', '..', 'fixtures');

function kinds(o: Record<string, unknown>, prefix = '', out: Record<string, FieldKind> = {}): Record<string, FieldKind> {
  for (const [k, v] of Object.entries(o)) {
    const p = prefix === '' ? k : `${prefix}.${k}`;
    if (prefix === '' && k === 'http_req_stats') out[p] = 'object';
    else if (typeof v === 'boolean') out[p] = 'boolean';
    else if (typeof v === 'number') out[p] = 'number';
    else if (typeof v === 'string') out[p] = 'string';
    else if (Array.isArray(v)) out[p] = 'list';
    else if (typeof v === 'object' && v !== null) {
      if (Object.keys(v).length === 0) out[p] ??= 'object';
      else kinds(v as Record<string, unknown>, p, out);
    }
  }
  return out;
}

function recorded(dir: string, pick: (doc: Record<string, unknown>) => Record<string, unknown>): Record<string, FieldKind> {
  const all: Record<string, FieldKind> = {};
  for (const f of readdirSync(join(fixtures, dir)).sort()) {
    for (const [p, k] of Object.entries(kinds(pick(JSON.parse(readFileSync(join(fixtures, dir, f), 'utf8')) as Record<string, unknown>)))) {
      if (all[p] === undefined || all[p] === 'object') all[p] = k;
    }
  }
  // An empty object in one recording that has fields in another is not a field of its own.
  for (const p of Object.keys(all)) if (all[p] === 'object' && Object.keys(all).some((q) => q.startsWith(`${p}.`))) delete all[p];
  return all;
}

describe('recorded fields', () => {
  it('the varz table is exactly what the recorded 2.10.27 varz documents hold', () => {
    assert.deepEqual({ ...FIELDS.varz }, recorded('varz', (d) => d));
  });
  it('the STATSZ table is exactly what the recorded 2.10.27 STATSZ replies hold (their statsz object)', () => {
    assert.deepEqual({ ...FIELDS.statsz }, recorded('statsz', (d) => d['statsz'] as Record<string, unknown>));
  });
  it('both have the fields of the recipes', () => {
    for (const p of ['slow_consumers', 'connections', 'subscriptions', 'jetstream.stats.memory', 'jetstream.config.max_memory']) {
      assert.ok(numericPaths('varz').includes(p), p);
      assert.ok(numericPaths('statsz').includes(p), p);
    }
    assert.ok(numericPaths('varz').includes('slow_consumer_stats.clients'));
  });
});

describe('checkPath', () => {
  const cases: { path: string; docs: ('varz' | 'statsz')[]; expect: ReturnType<typeof checkPath> }[] = [
    { path: 'slow_consumers', docs: ['varz', 'statsz'], expect: undefined },
    { path: 'slow_consumer_stats.clients', docs: ['varz'], expect: undefined },
    {
      path: 'slow_consumer_stats.clients',
      docs: ['varz', 'statsz'],
      expect: {
        message: '"slow_consumer_stats.clients" is a varz field that STATSZ does not report, and this rule applies to discovered servers',
        hint: 'limit the rule to servers watched over HTTP with servers: [...], or use a STATSZ field',
      },
    },
    {
      path: 'in_msgs',
      docs: ['statsz'],
      expect: {
        message: '"in_msgs" is a varz field that STATSZ does not report, and this rule applies to discovered servers',
        hint: 'limit the rule to servers watched over HTTP with servers: [...], or use a STATSZ field (in_msgs is received.msgs there)',
      },
    },
    { path: 'server_name', docs: ['varz'], expect: { message: 'varz field "server_name" is a string, not a number', hint: 'use a numeric field, e.g. slow_consumers, connections, jetstream.stats.memory' } },
    {
      path: 'jetstream.stats',
      docs: ['varz'],
      expect: { message: 'varz field "jetstream.stats" is an object, not a number', hint: 'name a number inside it: jetstream.stats.accounts, jetstream.stats.api.errors, jetstream.stats.api.total, jetstream.stats.ha_assets' },
    },
    {
      path: 'slow_consumerz',
      docs: ['varz'],
      expect: { message: 'unknown metric "slow_consumerz"', hint: 'use cpu, cpu_per_core, mem, mem_of_limit or a varz field like slow_consumers, connections, jetstream.stats.memory', unknownIn: 'varz' },
    },
  ];
  for (const c of cases) it(`${c.path} for ${c.docs.join('+')}`, () => assert.deepEqual(checkPath(c.path, c.docs), c.expect));
});

describe('compilePath and the engine reading fields', () => {
  it('reads one, two and three segments; undefined for missing or non-numbers', () => {
    const doc = { a: 1, b: { c: 2, d: { e: 3 } }, s: 'x', n: null, arr: [1] };
    assert.equal(compilePath('a')(doc), 1);
    assert.equal(compilePath('b.c')(doc), 2);
    assert.equal(compilePath('b.d.e')(doc), 3);
    assert.equal(compilePath('s')(doc), undefined);
    assert.equal(compilePath('n.x')(doc), undefined);
    assert.equal(compilePath('arr.0')(doc), undefined);
    assert.equal(compilePath('b.d.e.f')(doc), undefined);
    assert.equal(compilePath('a')(undefined), undefined);
  });

  const rule = (name: string, metric: string, above: number): TriggerConfig => ({
    name, metric, above, forMs: 0, rearmBelow: above, cooldownMs: 60_000, rateMs: undefined, escalatePercent: undefined, escalateMax: 0, profiles: ['goroutine'], servers: undefined,
  });

  it('reads varz fields of a recorded JetStream server', () => {
    const varz = parseVarz(readFileSync(join(fixtures, 'varz', '2.10.27-jetstream.json'), 'utf8'));
    const e = new TriggerEngine([rule('js', 'jetstream.config.max_memory', 1), rule('conns', 'connections', 0), rule('sc', 'slow_consumer_stats.clients', -1)]);
    const d = e.observe('k', 'js-a', { ok: true, varz }, 0);
    assert.deepEqual(d.map((x) => [x.trigger.name, x.kind === 'fire' ? x.value : undefined]), [['js', 64 * 1024 * 1024], ['sc', 0]]);
  });

  it('reads STATSZ fields of a recorded JetStream server', () => {
    const { varz } = parseStatsz(readFileSync(join(fixtures, 'statsz', '2.10.27-jetstream.json'), 'utf8'));
    const e = new TriggerEngine([rule('js', 'jetstream.config.max_storage', 1), rule('msgs', 'received.msgs', -1)]);
    const d = e.observe('k', 'js-a', { ok: true, varz }, 0);
    assert.deepEqual(d.map((x) => [x.trigger.name, x.kind === 'fire' ? x.value : undefined]), [['js', 256 * 1024 * 1024], ['msgs', 1]]);
  });

  it('a field the server does not report (JetStream off) gives no value and no decision', () => {
    const varz = parseVarz(readFileSync(join(fixtures, 'varz', '2.10.27-standalone.json'), 'utf8'));
    const e = new TriggerEngine([rule('js', 'jetstream.stats.memory', -1)]);
    assert.deepEqual(e.observe('k', 'n', { ok: true, varz }, 0), []);
    assert.equal(e.view()[0]?.state.value, undefined);
  });
});
