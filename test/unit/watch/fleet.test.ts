import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { activeServersOf, globMatch, parseStatsz, selects } from '../../../src/watch/fleet.js';
import { VarzParseError } from '../../../src/watch/varz.js';

const fixture = (name: string): string => readFileSync(join(import.meta.dirname, '..', '..', 'fixtures', 'statsz', name), 'utf8');

describe('parseStatsz on replies recorded from nats-server 2.10.27', () => {
  it('reads identity, cpu, memory and the active server count', () => {
    const r = parseStatsz(fixture('2.10.27-fx-a.json'));
    assert.equal(r.varz.serverId, 'NDQZBYCUFN3BFOQKD6ZRLKDHM7MQ6YCD3ULMAFPJJ2QO2OYMDYRU6NHB');
    assert.equal(r.varz.serverName, 'fx-a');
    assert.equal(r.varz.cluster, 'east');
    assert.equal(r.varz.version, '2.10.27');
    assert.deepEqual(r.varz.tags, ['az:eu-1']);
    assert.equal(r.varz.cpu, 1);
    assert.equal(r.varz.mem, 16359424);
    assert.equal(r.varz.cores, 2);
    assert.equal(r.activeServers, 2);
    assert.equal(r.host, '127.0.0.1');
  });
  it('lower-cases tags as varz does', () => {
    assert.deepEqual(parseStatsz(fixture('2.10.27-fx-b.json')).varz.tags, ['az:eu-2', 'role:edge']);
  });
  it('reads active_servers cheaply from raw bytes', () => {
    assert.equal(activeServersOf(new TextEncoder().encode(fixture('2.10.27-fx-a.json'))), 2);
    assert.equal(activeServersOf(new TextEncoder().encode('nope')), undefined);
  });
  for (const [name, text, message] of [
    ['not JSON', 'x', 'statsz reply is not valid JSON'],
    ['no server', '{"statsz":{}}', 'statsz "server" is not a JSON object'],
    ['no id', '{"server":{},"statsz":{}}', 'statsz "server.id" is missing'],
    ['no cpu', '{"server":{"id":"N1"},"statsz":{"mem":1}}', 'statsz field "cpu" is missing or not a number'],
  ] as const) {
    it(`refuses ${name}`, () => {
      assert.throws(() => parseStatsz(text), (e: unknown) => e instanceof VarzParseError && e.message.startsWith(message));
    });
  }
});

describe('exact selection', () => {
  it('matches globs anchored at both ends, and exact names exactly', () => {
    assert.equal(globMatch('n1', 'n1'), true);
    assert.equal(globMatch('n1', 'n10'), false, 'a name never matches a longer one');
    assert.equal(globMatch('nats-*', 'nats-a'), true);
    assert.equal(globMatch('nats-*', 'xnats-a'), false);
    assert.equal(globMatch('n?', 'n1'), true);
    assert.equal(globMatch('n?', 'n10'), false);
    assert.equal(globMatch('a.b', 'axb'), false, 'dots are literal');
  });
  const s = { name: 'n10', cluster: 'east', tags: ['az:eu-1', 'env:prod'] };
  const none = { names: [], clusters: [], tags: [] };
  const cases: [string, Parameters<typeof selects>[0], boolean][] = [
    ['empty selector selects everything', none, true],
    ['exact name', { ...none, names: ['n10'] }, true],
    ['prefix name does not match', { ...none, names: ['n1'] }, false],
    ['any of several names', { ...none, names: ['n1', 'n1*'] }, true],
    ['cluster', { ...none, clusters: ['east'] }, true],
    ['other cluster', { ...none, clusters: ['west', 'eas'] }, false],
    ['every tag, case-insensitive', { ...none, tags: ['AZ:EU-1', 'env:prod'] }, true],
    ['a missing tag', { ...none, tags: ['az:eu-1', 'env:dev'] }, false],
    ['lists combine with AND', { names: ['n*'], clusters: ['east'], tags: ['env:dev'] }, false],
  ];
  for (const [name, sel, want] of cases) it(name, () => assert.equal(selects(sel, s), want));
});

describe('glob matching stays linear', () => {
  it('answers a pattern of many stars against a long name at once (a regular expression would backtrack for minutes)', () => {
    const started = performance.now();
    assert.equal(globMatch('*a'.repeat(30) + 'b', 'a'.repeat(60)), false);
    assert.equal(globMatch('*a*a*a*', 'xxaxxaxxa'), true);
    // A correctness bound, not a benchmark: exponential backtracking takes seconds here.
    assert.ok(performance.now() - started < 500, `${performance.now() - started} ms`);
  });
});
