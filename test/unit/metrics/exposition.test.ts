import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Counter, Gauge, Histogram, Registry, Summary } from 'prom-client';
import type { ServerConfig, TriggerConfig } from '../../../src/config/types.js';
import { writeExposition } from '../../../src/metrics/exposition.js';
import { Metrics, type RuleSeries, type ServerSeries } from '../../../src/metrics/registry.js';
import { TriggerEngine } from '../../../src/trigger/engine.js';
import { Inventory } from '../../../src/watch/inventory.js';
import { parseVarz } from '../../../src/watch/varz.js';
import { promtoolCheck } from '../../helpers/promtool.js';

function server(url: string, name?: string): ServerConfig {
  return { url, name, headers: {}, basicAuth: undefined, bearerToken: undefined, tls: undefined, profUrl: undefined };
}

const hot: TriggerConfig = {
  name: 'hot',
  metric: 'cpu',
  above: 50,
  forMs: 0,
  rearmBelow: 50,
  cooldownMs: 0,
  rateMs: undefined,
  escalatePercent: undefined,
  escalateMax: 0,
  servers: undefined,
  profiles: ['cpu'],
};

/** The daemon's registry with 25 polled servers (one down), a firing rule, captures and histograms filled. */
function populated(): Metrics {
  const inventory = new Inventory();
  const engine = new TriggerEngine([hot]);
  const metrics = new Metrics({ servers: () => inventory.values(), rules: () => engine.firing() });
  const servers = Array.from({ length: 25 }, (_, i) => server(`http://127.0.0.1:${8000 + i}`, i % 3 === 0 ? undefined : `n-${i}`));
  inventory.setServers(servers);
  for (const [i, s] of servers.entries()) {
    const body = JSON.stringify({ server_id: `ID${i}`, server_name: `srv-${i}`, version: '2.10.27', cpu: i * 3.5, mem: 1000 + i, cores: 2, ...(i % 2 ? { cluster: { name: 'c1' } } : {}) });
    const at = 1_700_000_000_000 + i;
    const reading = { varz: parseVarz(body), body, kind: 'varz' as const };
    if (i === 7) inventory.failed(s.url, 'refused', at);
    else inventory.ok(s.url, reading, at);
    engine.observe(s.url, inventory.get(s.url)?.label ?? s.url, { ok: true, varz: reading.varz }, at);
    metrics.pollDuration.observe(0.0004 * (i + 1));
    metrics.pollLateness.observe(i * 0.01);
  }
  metrics.triggersFired.inc({ server: 'n-1', trigger: 'hot' });
  metrics.captures.inc({ server: 'n-1', profile: 'cpu', via: 'http', result: 'ok' }, 2);
  metrics.captureDuration.observe({ profile: 'cpu', via: 'http' }, 5.2);
  metrics.captureDuration.observe({ profile: 'heap', via: 'system_account' }, 0.3);
  metrics.apiRequests.inc({ route: '/metrics', code: '200' });
  metrics.storageBytes.set(123456789);
  metrics.configReloadTimestamp.set(1_700_000_000.123);
  return metrics;
}

describe('writeExposition: the same bytes as prom-client, in one pass', () => {
  it("equals prom-client's own exposition of the daemon's populated registry, and promtool accepts it", async () => {
    const m = populated();
    // Two reads in a row: the collects (per-server series, process metrics) run in both.
    const mine = await writeExposition(m.registry);
    const theirs = await m.registry.metrics();
    // The process metrics move between two reads (CPU, RSS, heap, lag): compare everything else exactly,
    // and those lines by name and labels.
    const moving = /^nats_autoprof_(process_(cpu|resident|open_fds)|nodejs_(heap|external|eventloop))/;
    const fixed = (t: string): string => t.split('\n').map((l) => (moving.test(l) ? l.replace(/ [^ ]+$/, ' X') : l)).join('\n');
    assert.equal(fixed(mine), fixed(theirs));
    assert.ok(mine.includes('nats_autoprof_up{server="n-1"} 1'), 'per-server series present');
    assert.ok(mine.includes('nats_autoprof_capture_duration_seconds_bucket{le="5",profile="heap",via="system_account"} 1'), 'labelled histogram');
    const check = await promtoolCheck(mine);
    assert.equal(check.code, 0, check.output);
  });

  it("Metrics.exposition writes the per-server and per-rule series from the source, equal to prom-client's collects", async () => {
    const moving = /^nats_autoprof_(process_(cpu|resident|open_fds)|nodejs_(heap|external|eventloop))/;
    const fixed = (t: string): string => t.split('\n').map((l) => (moving.test(l) ? l.replace(/ [^ ]+$/, ' X') : l)).join('\n');
    const m = populated();
    const mine = await m.exposition();
    assert.equal(fixed(mine), fixed(await m.registry.metrics()));
    assert.ok(mine.includes('nats_autoprof_polls_total{server="n-1",result="ok"} 1'), 'per-server counter written');
    assert.ok(mine.includes('nats_autoprof_trigger_firing{server="n-20",trigger="hot"} 1'), 'per-rule series written');
    assert.equal((await promtoolCheck(mine)).code, 0);

    // Two servers under one label (same server_name), a label to escape, a down server, a rule with escalate:
    // a repeated label keeps its first place and its last value (a gauge's set), a counter adds (inc).
    const varz = (id: string, cpu: number): NonNullable<ServerSeries['last']>['varz'] => ({ cpu, mem: 1e9 + cpu, serverId: id, cluster: undefined, version: '2.11.0' });
    const servers: ServerSeries[] = [
      { label: 'dup', polled: true, up: true, okPolls: 3, failedPolls: 1, lastOkAt: 1_700_000_000_500, last: { varz: varz('A', 10) } },
      { label: 'q"uo\\te\nx', polled: true, up: false, okPolls: 0, failedPolls: 2, lastOkAt: undefined, last: undefined },
      { label: 'never', polled: false, up: false, okPolls: 0, failedPolls: 0, lastOkAt: undefined, last: undefined },
      { label: 'dup', polled: true, up: true, okPolls: 5, failedPolls: 0, lastOkAt: 1_700_000_001_250, last: { varz: varz('B', 0.25) } },
    ];
    const rules: RuleSeries[] = [
      { server: 'dup', trigger: 'hot', firing: true, metric: 'cpu', rate: '', escalate: '', step: undefined },
      { server: 'dup', trigger: 'conns', firing: false, metric: 'connections', rate: '60s', escalate: '50%', step: 2 },
      { server: 'dup', trigger: 'hot', firing: false, metric: 'cpu', rate: '', escalate: '', step: undefined },
      { server: 'q"uo\\te\nx', trigger: 'conns', firing: false, metric: 'connections', rate: '60s', escalate: '50%', step: 0 },
    ];
    const odd = new Metrics({ servers: () => servers, rules: () => rules });
    const text = await odd.exposition();
    assert.equal(fixed(text), fixed(await odd.registry.metrics()));
    assert.match(text, /^nats_autoprof_polls_total\{server="dup",result="ok"\} 8$/m);
    assert.match(text, /^nats_autoprof_server_cpu_percent\{server="dup"\} 0.25$/m);
    assert.ok(text.includes('nats_autoprof_up{server="q\\"uo\\\\te\\nx"} 0'), 'escaped label');
    assert.equal((await promtoolCheck(text)).code, 0);
  });

  it('writes escapes, special values, labelled and unlabelled histograms exactly as prom-client does', async () => {
    const r = new Registry();
    const g = new Gauge({ name: 'g', help: 'help with \\ backslash\nand newline', labelNames: ['a', 'b'] as const, registers: [r] });
    g.set({ a: 'quote " back \\ nl \n', b: 'x' }, 1.5);
    g.set({ b: 'order', a: 'reversed' }, -0);
    g.set({ a: 'nan', b: '' }, Number.NaN);
    g.set({ a: 'inf', b: '' }, Number.POSITIVE_INFINITY);
    g.set({ a: 'ninf', b: '' }, Number.NEGATIVE_INFINITY);
    g.set({ a: 'big', b: '' }, 1e21);
    g.set({ a: 'small', b: '' }, 1e-7);
    new Counter({ name: 'c_total', help: 'c', registers: [r] }).inc(3);
    new Counter({ name: 'empty_total', help: 'no series yet', labelNames: ['x'] as const, registers: [r] });
    const h = new Histogram({ name: 'h', help: 'h', buckets: [0.1, 1, 10], registers: [r] });
    h.observe(0.05);
    h.observe(5);
    h.observe(50);
    new Histogram({ name: 'h_empty', help: 'never observed', buckets: [1], registers: [r] });
    const hl = new Histogram({ name: 'hl', help: 'hl', labelNames: ['k'] as const, buckets: [1, 2.5], registers: [r] });
    hl.observe({ k: 'v"1' }, 2);
    const collected: Gauge<'n'> = new Gauge({ name: 'collected', help: 'filled at scrape', labelNames: ['n'] as const, registers: [r], collect: (): void => collected.set({ n: 7 }, 7) });
    assert.equal(await writeExposition(r), await r.metrics());
    const check = await promtoolCheck(await writeExposition(r));
    assert.equal(check.code, 0, check.output);
  });

  it("hands what it does not write (a summary, an asynchronous collect, default labels) to prom-client", async () => {
    const r = new Registry();
    new Gauge({ name: 'before', help: 'b', registers: [r] }).set(1);
    new Summary({ name: 's', help: 's', percentiles: [0.5], registers: [r] }).observe(3);
    assert.equal(await writeExposition(r), await r.metrics());

    const asyncCollect = new Registry();
    const a: Gauge = new Gauge({ name: 'a', help: 'a', registers: [asyncCollect], collect: async (): Promise<void> => a.set(42) });
    const text = await writeExposition(asyncCollect);
    assert.match(text, /^a 42$/m, 'the asynchronous collect ran before the value was written');
    assert.equal(text, await asyncCollect.metrics());

    const withDefaults = new Registry();
    new Gauge({ name: 'd', help: 'd', registers: [withDefaults] }).set(2);
    withDefaults.setDefaultLabels({ instance: 'x' });
    assert.match(await writeExposition(withDefaults), /^d\{instance="x"\} 2$/m);
  });

  it('writes an empty registry as prom-client does', async () => {
    const r = new Registry();
    assert.equal(await writeExposition(r), await r.metrics());
  });
});
