import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ServerConfig } from '../../../src/config/types.js';
import { Inventory, snapshotOf, type Reading } from '../../../src/watch/inventory.js';
import { parseVarz } from '../../../src/watch/varz.js';

const URL = 'http://127.0.0.1:8222';

function reading(o: { cpu: number; tags?: string[]; name?: string; pad?: number }): Reading {
  const text = JSON.stringify({
    server_id: 'NDJWE4SOUJOJT2TY5Y2YQEOAHGAK5VIGXTGKWJSFHVCII4ITI3LBHBUV',
    server_name: o.name ?? 'a-rather-long-server-name',
    version: '2.10.27',
    cpu: o.cpu,
    mem: 15183872,
    cores: 2,
    tags: o.tags ?? ['region:eu-west-1', 'rack:r12'],
    cluster: { name: 'a-cluster-of-some-length' },
    padding: 'x'.repeat(o.pad ?? 0),
  });
  return { varz: parseVarz(text), body: Buffer.from(text), kind: 'varz' };
}

function watched(): Inventory {
  const inv = new Inventory();
  inv.setServers([{ url: URL } as ServerConfig]);
  return inv;
}

describe('Inventory: the latest reading, written in place', () => {
  it('keeps one reading object per server and shows the latest values and body', () => {
    const inv = watched();
    inv.ok(URL, reading({ cpu: 1 }), 1_000);
    const s = inv.get(URL);
    const first = s?.last;
    const tags = first?.varz.tags;
    inv.ok(URL, reading({ cpu: 2, pad: 3_000 }), 2_000);
    assert.equal(s?.last, first, 'the same object');
    assert.equal(s?.last?.varz.cpu, 2);
    assert.equal(s?.last?.varz.tags, tags, 'unchanged tags are not replaced');
    assert.equal(JSON.parse(Buffer.from(s?.last?.body as Uint8Array).toString()).cpu, 2);
    inv.ok(URL, reading({ cpu: 3, tags: ['region:us-east-1'], name: 'renamed-server-with-a-long-name' }), 3_000);
    assert.deepEqual(s?.last?.varz.tags, ['region:us-east-1']);
    assert.equal(s?.last?.varz.serverName, 'renamed-server-with-a-long-name');
    assert.equal(s?.label, 'renamed-server-with-a-long-name');
    // A shorter body after a longer one: the view ends where the new document does.
    const body = Buffer.from(s?.last?.body as Uint8Array).toString();
    assert.equal(JSON.parse(body).cpu, 3);
    assert.equal(s?.last?.varz.doc, undefined, 'the parsed document is not kept');
  });

  it('a snapshot (what a capture keeps) does not change with the next reading', () => {
    const inv = watched();
    inv.ok(URL, reading({ cpu: 1 }), 1_000);
    const snap = snapshotOf(inv.get(URL)?.last as Reading);
    inv.ok(URL, reading({ cpu: 99 }), 2_000);
    assert.equal(JSON.parse(Buffer.from(snap.body as Uint8Array).toString()).cpu, 1);
    assert.equal(snap.kind, 'varz');
  });

  it('a STATSZ reading (discovery) keeps its text', () => {
    const inv = new Inventory();
    const text = '{"statsz":{}}';
    const r = reading({ cpu: 5 });
    inv.ok('system_account:a', { varz: r.varz, body: text, kind: 'statsz' }, 1_000, { profUrl: undefined });
    const s = inv.get('system_account:a');
    assert.equal(s?.last?.body, text);
    assert.equal(s?.last?.kind, 'statsz');
    assert.equal(snapshotOf(s?.last as Reading).body, text);
  });
});
