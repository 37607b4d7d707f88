import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Metrics } from '../../../src/metrics/registry.js';

describe('nats_autoprof_internal_errors_total', () => {
  it('is exported at 0 for poll and discovery from the first scrape, and counts by where', async () => {
    const m = new Metrics();
    let text = await m.exposition();
    assert.match(text, /^# TYPE nats_autoprof_internal_errors_total counter$/m);
    assert.match(text, /^nats_autoprof_internal_errors_total\{where="poll"\} 0$/m);
    assert.match(text, /^nats_autoprof_internal_errors_total\{where="discovery"\} 0$/m);
    m.internalErrors.inc({ where: 'poll' });
    m.internalErrors.inc({ where: 'poll' });
    text = await m.exposition();
    assert.match(text, /^nats_autoprof_internal_errors_total\{where="poll"\} 2$/m);
    assert.match(text, /^nats_autoprof_internal_errors_total\{where="discovery"\} 0$/m);
  });
});
