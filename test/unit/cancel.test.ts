import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Canceller, requestCancel } from '../../src/cancel.js';

function fired(c: Canceller): Promise<void> {
  return new Promise((r) => c.once('abort', () => r()));
}

describe('requestCancel', () => {
  it('fires after its timeout and says so', async () => {
    const c = requestCancel(20, undefined);
    const f = fired(c.signal);
    assert.equal(c.signal.aborted, false);
    await f;
    assert.equal(c.signal.aborted, true);
    assert.equal(c.timedOut, true);
    c.release();
  });

  for (const kind of ['Canceller', 'AbortSignal'] as const) {
    it(`fires when its parent (${kind}) does, not as a timeout`, async () => {
      const parent = kind === 'Canceller' ? new Canceller() : new AbortController();
      const c = requestCancel(60_000, parent instanceof Canceller ? parent : parent.signal);
      const f = fired(c.signal);
      if (parent instanceof Canceller) parent.cancel();
      else parent.abort();
      await f;
      assert.equal(c.timedOut, false);
      c.release();
    });

    it(`starts cancelled when its parent (${kind}) already is`, () => {
      const parent = kind === 'Canceller' ? new Canceller() : new AbortController();
      if (parent instanceof Canceller) parent.cancel();
      else parent.abort();
      const c = requestCancel(60_000, parent instanceof Canceller ? parent : parent.signal);
      assert.equal(c.signal.aborted, true);
      c.release();
    });
  }

  it('release leaves no listener on a long-lived parent and stops the timer', async () => {
    const parent = new Canceller();
    for (let i = 0; i < 1000; i++) requestCancel(60_000, parent).release();
    assert.equal(parent.listenerCount('abort'), 0);
    const c = requestCancel(10, parent);
    c.release();
    await sleep(30);
    assert.equal(c.signal.aborted, false, 'a released request is not cancelled by its old timer');
  });
});
