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

describe('Canceller', () => {
  it('calls every listener once, in the order they came, and keeps only the `on` ones', () => {
    const c = new Canceller();
    const calls: string[] = [];
    const a = (): void => void calls.push('a');
    const b = (): void => void calls.push('b');
    const d = (): void => void calls.push('d');
    c.once('abort', a);
    c.on('abort', b);
    c.once('abort', d);
    c.off('abort', a); // the first slot is free again, but b and d came before the next one
    const e = (): void => void calls.push('e');
    c.once('abort', e);
    assert.equal(c.listenerCount('abort'), 3);
    c.cancel();
    c.cancel();
    assert.deepEqual(calls, ['b', 'd', 'e']);
    assert.equal(c.listenerCount('abort'), 1, 'the `on` listener stays, as on an EventEmitter');
    assert.equal(c.aborted, true);
  });

  it('removes a listener that is not the first, and a listener added twice once per removal', () => {
    const c = new Canceller();
    let n = 0;
    const f = (): void => void n++;
    const g = (): void => void (n += 10);
    c.once('abort', g);
    c.once('abort', f);
    c.once('abort', f);
    c.removeListener('abort', f);
    assert.equal(c.listenerCount('abort'), 2);
    c.cancel();
    assert.equal(n, 11);
  });

  it('a listener added and removed a thousand times leaves none (a poll target\'s life)', () => {
    const c = new Canceller();
    const fns = Array.from({ length: 1000 }, () => (): void => undefined);
    for (const f of fns) {
      c.once('abort', f);
      c.off('abort', f);
    }
    assert.equal(c.listenerCount('abort'), 0);
  });
});
