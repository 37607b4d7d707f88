import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseVarz, VarzParseError } from '../../../src/watch/varz.js';

const fixtures = join(import.meta.dirname, '..', '..', 'fixtures', 'varz');
const read = (name: string): string => readFileSync(join(fixtures, name), 'utf8');

describe('parseVarz on varz recorded from nats-server 2.10.27', () => {
  it('reads a clustered server with tags', () => {
    const v = parseVarz(read('2.10.27-cluster-tags.json'));
    assert.equal(v.serverId, 'NA626UZCOABVCP27OZC5654Y672GDW3LMYFKMBEWJUIP7P4YFNIZ67N2');
    assert.equal(v.serverName, 'fixture-a');
    assert.equal(v.cluster, 'east');
    assert.deepEqual(v.tags, ['az:eu-1', 'env:prod']);
    assert.equal(v.version, '2.10.27');
    assert.equal(v.cpu, 0);
    assert.equal(v.mem, 15183872);
    assert.equal(v.cores, 2);
    assert.equal(v.gomaxprocs, 2);
    assert.equal(v.gomemlimit, undefined);
    assert.equal(v.now, '2026-11-26T16:19:36.877245739Z');
  });

  it('reads a standalone server: no cluster name, no tags, name defaults to the id', () => {
    const v = parseVarz(read('2.10.27-standalone.json'));
    assert.equal(v.cluster, undefined);
    assert.deepEqual(v.tags, []);
    assert.equal(v.serverName, v.serverId);
    assert.match(v.serverId, /^N[A-Z0-9]{55}$/);
  });

  it('keeps gomemlimit when a newer server reports one', () => {
    const doc = JSON.parse(read('2.10.27-standalone.json')) as Record<string, unknown>;
    doc['gomemlimit'] = 1073741824;
    assert.equal(parseVarz(JSON.stringify(doc)).gomemlimit, 1073741824);
  });
});

describe('parseVarz refuses what is not varz', () => {
  const cases: [string, string, string][] = [
    ['truncated JSON', '{"server_id": "N', 'varz is not valid JSON'],
    ['an HTML page', '<html><body>502 Bad Gateway</body></html>', 'varz is not valid JSON'],
    ['a JSON array', '[1,2,3]', 'varz is not a JSON object'],
    ['JSON null', 'null', 'varz is not a JSON object'],
    ['JSON that is not varz', '{"hello": "world"}', 'varz field "server_id" is missing'],
    ['cpu as a string', '{"server_id":"NX","version":"2.10.27","cpu":"12","mem":1}', 'varz field "cpu" is not a number (string)'],
    ['no mem', '{"server_id":"NX","version":"2.10.27","cpu":1}', 'varz field "mem" is missing'],
    ['empty server_id', '{"server_id":"","version":"2.10.27","cpu":1,"mem":1}', 'varz field "server_id" is empty'],
  ];
  for (const [name, text, message] of cases) {
    it(name, () => {
      assert.throws(() => parseVarz(text), (err: unknown) => {
        assert.ok(err instanceof VarzParseError);
        assert.ok(err.message.startsWith(message), err.message);
        return true;
      });
    });
  }
});
