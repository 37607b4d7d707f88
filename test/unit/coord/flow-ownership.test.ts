/**
 * The flow's ownership predicate (replicas): a discovered server another replica owns is not watched here,
 * one that moved away is dropped at the next round (rule state and series with it), one that moved here is
 * watched from the next round on.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseConfigText } from '../../../src/config/load.js';
import type { Flow } from '../../../src/flow.js';
import type { StatszReading } from '../../../src/watch/fleet.js';
import { Inventory } from '../../../src/watch/inventory.js';
import type { Varz } from '../../../src/watch/varz.js';
import { flowRig } from '../../helpers/flow.js';

function statsz(name: string): StatszReading {
  const varz: Varz = { serverId: `N${name}`, serverName: name, cluster: undefined, tags: [], version: '2.10.27', cpu: 1, mem: 64 << 20, cores: 2, gomaxprocs: 2, gomemlimit: undefined };
  return { varz, body: '{}', activeServers: undefined, host: undefined };
}

describe('flow: only the servers this replica owns', () => {
  it('discovered servers follow the ownership predicate from round to round', () => {
    const config = parseConfigText(
      'system_account: { url: nats://127.0.0.1:4222, discover: true }\ntriggers: [{ name: mem-any, metric: mem, above: 1MiB, cooldown: 1h, profiles: [heap] }]\n',
      'test.yaml',
      {},
      () => '',
    );
    let mine = new Set(['system_account:a', 'system_account:b']);
    const fired: string[] = [];
    const { flow, inventory, engine } = flowRig(config, {
      submit: (req) => (fired.push(req.target.label), { accepted: true, id: `i-${req.target.label}`, done: new Promise(() => undefined) }),
      owns: (key) => mine.has(key),
    });
    const round = { ended: 'count' as const, expected: 3, durationMs: 1, selected: ['a', 'b', 'c'].map(statsz), invalid: 0 };
    flow.onDiscovery(round);
    assert.deepEqual(inventory.all().map((s) => s.label).sort(), ['a', 'b']);
    assert.deepEqual(fired.sort(), ['a', 'b']);
    assert.equal([...engine.firing()].filter((r) => r.server === 'b').length, 1, "b's rule has fired");
    // b moved to another replica, c moved here.
    mine = new Set(['system_account:a', 'system_account:c']);
    flow.onDiscovery(round);
    assert.deepEqual(inventory.all().map((s) => s.label).sort(), ['a', 'c']);
    assert.equal([...engine.firing()].filter((r) => r.server === 'b').length, 0, "b's rule state is dropped");
    assert.deepEqual(fired.sort(), ['a', 'b', 'c']);
  });

  it("another replica's discovered servers are kept aside (with their reading, not watched) while rounds report them", () => {
    const config = parseConfigText(
      'servers: [{ url: "http://10.0.0.4:8222", name: d, prof_url: "http://10.0.0.4:6060" }]\nsystem_account: { url: nats://127.0.0.1:4222, discover: true, prof_urls: { c: "http://127.0.0.1:6060" } }\ntriggers: [{ name: mem-any, metric: mem, above: 1MiB, cooldown: 1h, profiles: [heap] }]\n',
      'test.yaml',
      {},
      () => '',
    );
    const elsewhere = new Inventory();
    let mine = new Set(['system_account:a']);
    const fired: string[] = [];
    const { flow, inventory } = flowRig(config, {
      submit: (req) => (fired.push(req.target.label), { accepted: true, id: `i-${req.target.label}`, done: new Promise(() => undefined) }),
      owns: (key) => mine.has(key),
      elsewhere,
    });
    const round = (names: string[]): Parameters<Flow['onDiscovery']>[0] => ({ ended: 'count' as const, expected: names.length, durationMs: 1, selected: names.map(statsz), invalid: 0 });
    flow.onDiscovery(round(['a', 'b', 'c']));
    assert.deepEqual(inventory.all().map((s) => s.label), ['a']);
    assert.deepEqual(elsewhere.all().map((s) => s.label).sort(), ['b', 'c']);
    // Known, with what a capture needs (server_id for PROFILEZ, the prof_url), but no rule ran for them here.
    assert.equal(elsewhere.byLabel('c')?.last?.varz.serverId, 'Nc');
    assert.equal(elsewhere.byLabel('c')?.profUrl, 'http://127.0.0.1:6060');
    assert.deepEqual(fired, ['a']);
    // c stops answering: gone from the aside list at once; b moves here: watched, and no longer aside.
    mine = new Set(['system_account:a', 'system_account:b']);
    flow.onDiscovery(round(['a', 'b']));
    assert.deepEqual(inventory.all().map((s) => s.label).sort(), ['a', 'b']);
    assert.deepEqual(elsewhere.all().map((s) => s.label), []);
    // A server configured over HTTP (named d) that another replica owns by its URL is that server here too:
    // not watched nor kept aside as a discovered one, even when its discovered key would be this replica's.
    elsewhere.setServers(config.servers);
    mine = new Set(['system_account:a', 'system_account:b', 'system_account:d']);
    flow.onDiscovery(round(['a', 'b', 'd']));
    assert.deepEqual(inventory.all().map((s) => s.label).sort(), ['a', 'b']);
    assert.deepEqual(elsewhere.all().map((s) => [s.label, s.source]), [['d', 'http']]);
  });
});
