import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HEAP_GROWING_PERCENT, tuneHeap } from '../../src/heap.js';

describe('tuneHeap', () => {
  it("sets the daemon's heap growth limit unless the operator set one (node flag or NODE_OPTIONS)", () => {
    assert.equal(tuneHeap([], ''), `--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
    assert.equal(tuneHeap(['--heap-growing-percent=80'], ''), undefined);
    assert.equal(tuneHeap([], '--max-old-space-size=512 --heap_growing_percent=20'), undefined);
  });
});
