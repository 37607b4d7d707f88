import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ServerConfig, TriggerConfig } from '../../../src/config/types.js';
import { Metrics } from '../../../src/metrics/registry.js';
import { TriggerEngine } from '../../../src/trigger/engine.js';
import { Inventory } from '../../../src/watch/inventory.js';
import { parseVarz } from '../../../src/watch/varz.js';

const URL_A = 'http://127.0.0.1:8222';
const URL_B = 'http://127.0.0.1:8223';

function server(url: string, name?: string): ServerConfig {
  return { url, name, headers: {}, basicAuth: undefined, bearerToken: undefined, tls: undefined, profUrl: undefined };
}

function reading(o: { id: string; name: string; cpu: number; mem?: number; version?: string; cluster?: string }) {
  const body = JSON.stringify({
    server_id: o.id,
    server_name: o.name,
    version: o.version ?? '2.10.27',
    cpu: o.cpu,
    mem: o.mem ?? 1000,
    cores: 2,
    ...(o.cluster ? { cluster: { name: o.cluster } } : {}),
  });
  return { varz: parseVarz(body), body, kind: 'varz' as const };
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

function setup() {
  const inventory = new Inventory();
  const engine = new TriggerEngine([hot]);
  const metrics = new Metrics({ servers: () => inventory.values(), rules: () => engine.firing() });
  return { inventory, engine, metrics };
}

/** The value of one series in an exposition; undefined when absent. */
function value(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('Metrics: per-server series read from the inventory and engine at each scrape', () => {
  it('exports nothing per server before the first poll, then every series after it', async () => {
    const { inventory, metrics } = setup();
    inventory.setServers([server(URL_A, 'a')]);
    let text = await metrics.exposition();
    assert.equal(value(text, 'nats_autoprof_up', 'server="a"'), undefined, 'no up before the first poll');

    inventory.ok(URL_A, reading({ id: 'NA', name: 'a', cpu: 12.5, mem: 4096, cluster: 'east' }), 2_000_000);
    text = await metrics.exposition();
    assert.equal(value(text, 'nats_autoprof_up', 'server="a"'), 1);
    assert.equal(value(text, 'nats_autoprof_server_cpu_percent', 'server="a"'), 12.5);
    assert.equal(value(text, 'nats_autoprof_server_memory_bytes', 'server="a"'), 4096);
    assert.equal(value(text, 'nats_autoprof_last_poll_success_timestamp_seconds', 'server="a"'), 2000);
    assert.equal(value(text, 'nats_autoprof_polls_total', 'server="a",result="ok"'), 1);
    assert.equal(value(text, 'nats_autoprof_server_info', 'server="a",server_id="NA",cluster="east",version="2.10.27"'), 1);
  });

  it('counts polls by result, drops cpu and memory while down (keeping server_info), and follows an identity change', async () => {
    const { inventory, metrics } = setup();
    inventory.setServers([server(URL_A, 'a')]);
    inventory.ok(URL_A, reading({ id: 'NA', name: 'a', cpu: 10 }), 1000);
    inventory.ok(URL_A, reading({ id: 'NA', name: 'a', cpu: 20 }), 2000);
    inventory.failed(URL_A, 'refused', 3000);
    let text = await metrics.exposition();
    assert.equal(value(text, 'nats_autoprof_up', 'server="a"'), 0);
    assert.equal(value(text, 'nats_autoprof_polls_total', 'server="a",result="ok"'), 2);
    assert.equal(value(text, 'nats_autoprof_polls_total', 'server="a",result="error"'), 1);
    // A reading that is not current is not exported: up 0 and the identity, no stale figures.
    assert.equal(value(text, 'nats_autoprof_server_cpu_percent', 'server="a"'), undefined, 'no stale cpu while down');
    assert.equal(value(text, 'nats_autoprof_server_memory_bytes', 'server="a"'), undefined, 'no stale memory while down');
    assert.doesNotMatch(text, /^nats_autoprof_server_(cpu_percent|memory_bytes)\{/m);
    assert.equal(value(text, 'nats_autoprof_server_info', 'server="a",server_id="NA",cluster="",version="2.10.27"'), 1, 'identity kept while down');
    assert.equal(value(text, 'nats_autoprof_last_poll_success_timestamp_seconds', 'server="a"'), 2, 'when it last answered');

    // Restarted with a new id and version: one server_info series, the new one.
    inventory.ok(URL_A, reading({ id: 'NB', name: 'a', cpu: 1, version: '2.11.0' }), 4000);
    text = await metrics.exposition();
    assert.equal(text.match(/^nats_autoprof_server_info\{/gm)?.length, 1, text);
    assert.equal(value(text, 'nats_autoprof_server_info', 'server="a",server_id="NB",cluster="",version="2.11.0"'), 1);
    assert.equal(value(text, 'nats_autoprof_server_cpu_percent', 'server="a"'), 1, 'back once it answers');
    assert.equal(value(text, 'nats_autoprof_server_memory_bytes', 'server="a"'), 1000);
  });

  it('drops a server that is no longer watched, and moves its series when its label changes', async () => {
    const { inventory, metrics } = setup();
    inventory.setServers([server(URL_A, 'a'), server(URL_B)]);
    inventory.ok(URL_A, reading({ id: 'NA', name: 'a', cpu: 1 }), 1000);
    inventory.failed(URL_B, 'refused', 1000);
    let text = await metrics.exposition();
    // Not answered yet: labelled by its URL.
    assert.equal(value(text, 'nats_autoprof_up', `server="${URL_B}"`), 0);

    inventory.ok(URL_B, reading({ id: 'NB', name: 'named-by-varz', cpu: 1 }), 2000);
    inventory.setServers([server(URL_B)]);
    text = await metrics.exposition();
    assert.equal(value(text, 'nats_autoprof_up', `server="${URL_B}"`), undefined, 'the URL label is gone');
    assert.equal(value(text, 'nats_autoprof_up', 'server="named-by-varz"'), 1);
    assert.equal(value(text, 'nats_autoprof_up', 'server="a"'), undefined, 'the removed server is gone');
    assert.doesNotMatch(text, /server="a"/);
  });

  it('shows trigger_firing from the rule state, and forgetServer removes the counted series', async () => {
    const { inventory, engine, metrics } = setup();
    inventory.setServers([server(URL_A, 'a')]);
    const r = reading({ id: 'NA', name: 'a', cpu: 90 });
    inventory.ok(URL_A, r, 1000);
    const decisions = engine.observe(URL_A, 'a', { ok: true, varz: r.varz }, 1000);
    assert.equal(decisions.length, 1);
    metrics.triggersFired.inc({ server: 'a', trigger: 'hot' });
    let text = await metrics.exposition();
    assert.equal(value(text, 'nats_autoprof_trigger_firing', 'server="a",trigger="hot"'), 1);
    assert.equal(value(text, 'nats_autoprof_triggers_fired_total', 'server="a",trigger="hot"'), 1);

    const calm = reading({ id: 'NA', name: 'a', cpu: 5 });
    assert.equal(engine.observe(URL_A, 'a', { ok: true, varz: calm.varz }, 2000).length, 0);
    text = await metrics.exposition();
    assert.equal(value(text, 'nats_autoprof_trigger_firing', 'server="a",trigger="hot"'), 0, 're-armed');

    engine.forget(URL_A);
    inventory.remove(URL_A);
    await metrics.forgetServer('a');
    text = await metrics.exposition();
    assert.doesNotMatch(text, /server="a"/);
  });

  it('without a source, the per-server metrics are declared and empty', async () => {
    const text = await new Metrics().exposition();
    assert.match(text, /^# TYPE nats_autoprof_up gauge$/m);
    assert.doesNotMatch(text, /^nats_autoprof_up\{/m);
  });
});
