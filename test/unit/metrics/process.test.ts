import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Metrics } from '../../../src/metrics/registry.js';
import { promtoolCheck } from '../../helpers/promtool.js';

const names = (text: string): string[] =>
  [...new Set(text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(l)?.[0] ?? ''))]
    .filter((n) => /_(process|nodejs)_/.test(n))
    .sort();

describe('process metrics', () => {
  it('exports the cheap process series and none of the per-scrape-expensive ones', async () => {
    const m = new Metrics();
    const first = await m.exposition();
    await new Promise<void>((r) => setImmediate(r));
    const text = await m.exposition();
    assert.deepEqual(names(text), [
      'nats_autoprof_nodejs_eventloop_lag_seconds',
      'nats_autoprof_nodejs_external_memory_bytes',
      'nats_autoprof_nodejs_heap_size_total_bytes',
      'nats_autoprof_nodejs_heap_size_used_bytes',
      'nats_autoprof_nodejs_version_info',
      'nats_autoprof_process_cpu_seconds_total',
      'nats_autoprof_process_cpu_system_seconds_total',
      'nats_autoprof_process_cpu_user_seconds_total',
      'nats_autoprof_process_max_fds',
      'nats_autoprof_process_open_fds',
      'nats_autoprof_process_resident_memory_bytes',
      'nats_autoprof_process_start_time_seconds',
    ]);
    const value = (t: string, name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(t)?.[1]);
    assert.ok(value(text, 'nats_autoprof_process_cpu_seconds_total') >= value(first, 'nats_autoprof_process_cpu_seconds_total'));
    assert.ok(value(text, 'nats_autoprof_process_cpu_seconds_total') > 0);
    assert.ok(value(text, 'nats_autoprof_process_resident_memory_bytes') > 10_000_000);
    assert.ok(value(text, 'nats_autoprof_process_open_fds') > 2);
    assert.ok(Math.abs(value(text, 'nats_autoprof_process_start_time_seconds') - (Date.now() / 1000 - process.uptime())) < 2);
    assert.ok(value(text, 'nats_autoprof_nodejs_eventloop_lag_seconds') >= 0);
    assert.deepEqual(await promtoolCheck(text), { code: 0, output: '' });
  });
});
