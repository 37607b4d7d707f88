import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { MemberTracker, sameMembers } from '../../../src/coord/members.js';

describe('member liveness', () => {
  it('a member is live while its revision moves; one whose entry stopped changing for lease_ttl is gone before JetStream expires it', () => {
    const t = new MemberTracker();
    assert.deepEqual(t.update(new Map([['b', 1], ['a', 2]]), 0, 1_000), ['a', 'b']);
    assert.deepEqual(t.update(new Map([['a', 3], ['b', 1]]), 600, 1_000), ['a', 'b']);
    // b has not renewed since t=0: gone at t=1000 although its entry is still there.
    assert.deepEqual(t.update(new Map([['a', 4], ['b', 1]]), 1_000, 1_000), ['a']);
    // b renews again (a replica back from a pause): live at once.
    assert.deepEqual(t.update(new Map([['a', 5], ['b', 6]]), 1_200, 1_000), ['a', 'b']);
    // An entry that vanished (expired or deleted at shutdown) is gone.
    assert.deepEqual(t.update(new Map([['a', 7]]), 1_300, 1_000), ['a']);
  });

  it('sameMembers', () => {
    assert.ok(sameMembers(['a', 'b'], ['a', 'b']));
    assert.ok(!sameMembers(['a'], ['a', 'b']));
    assert.ok(!sameMembers(['a', 'c'], ['a', 'b']));
  });
});
