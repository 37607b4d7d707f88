import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { hash53, ownedBy, ownerOf, serverToken } from '../../../src/coord/ownership.js';

const servers = Array.from({ length: 1000 }, (_, i) => `http://10.0.${Math.floor(i / 250)}.${i % 250}:8222`);

function assignment(members: string[]): Map<string, string | undefined> {
  return new Map(servers.map((s) => [s, ownerOf(s, members)]));
}

describe('rendezvous ownership', () => {
  it('gives every server exactly one owner among the members, the same in every replica', () => {
    const members = ['a', 'b', 'c'];
    const counts = new Map(members.map((m) => [m, ownedBy(m, servers, members).length]));
    assert.equal([...counts.values()].reduce((x, y) => x + y, 0), servers.length);
    // The order in which a replica lists the members does not matter.
    assert.deepEqual(assignment(['c', 'a', 'b']), assignment(members));
  });

  it('spreads servers evenly enough (each of 3 members owns 25-42 % of 1000)', () => {
    const members = ['replica-a', 'replica-b', 'replica-c'];
    for (const m of members) {
      const n = ownedBy(m, servers, members).length;
      assert.ok(n > 250 && n < 420, `${m} owns ${n}`);
    }
  });

  it('a member leaving moves only its own servers, each to one of the others', () => {
    const before = assignment(['a', 'b', 'c']);
    const after = assignment(['a', 'c']);
    for (const s of servers) {
      if (before.get(s) === 'b') assert.notEqual(after.get(s), 'b');
      else assert.equal(after.get(s), before.get(s), `${s} moved from ${String(before.get(s))} though b left`);
    }
  });

  it('a member joining takes only its new share, from the others; nothing moves between the others', () => {
    const before = assignment(['a', 'b', 'c']);
    const after = assignment(['a', 'b', 'c', 'd']);
    let moved = 0;
    for (const s of servers) {
      if (after.get(s) !== before.get(s)) {
        assert.equal(after.get(s), 'd');
        moved++;
      }
    }
    assert.ok(moved > 150 && moved < 350, `d took ${moved} of 1000 (about a quarter expected)`);
  });

  it('the table: no members, one member, names that differ by one character', () => {
    assert.equal(ownerOf('http://x:8222', []), undefined);
    assert.equal(ownerOf('http://x:8222', ['only']), 'only');
    const owners = new Set(servers.slice(0, 100).map((s) => ownerOf(s, ['r1', 'r10', 'r2'])));
    assert.deepEqual([...owners].sort(), ['r1', 'r10', 'r2']);
  });

  it('hash53 and serverToken are stable (replicas of different builds must agree)', () => {
    assert.equal(hash53(''), hash53(''));
    assert.notEqual(hash53('a'), hash53('b'));
    assert.equal(hash53('http://127.0.0.1:8222'), 1147920965186535);
    assert.match(serverToken('http://127.0.0.1:8222'), /^[0-9a-f]{14}$/);
  });
});
