/**
 * Field rules through the flow (issue 15): a rule on a varz path reads the parsed document, the flow drops
 * the document once the rules have read it, an escalation is a capture request of its own (recorded with its
 * step), a refused escalation keeps its step, and the metrics show field, window and step.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { SubmitResult } from '../../src/capture/capturer.js';
import type { CaptureRequest } from '../../src/capture/request.js';
import type { Clock } from '../../src/clock.js';
import { parseConfigText } from '../../src/config/load.js';
import { Flow } from '../../src/flow.js';
import { Metrics } from '../../src/metrics/registry.js';
import { TriggerEngine } from '../../src/trigger/engine.js';
import { Inventory } from '../../src/watch/inventory.js';
import type { PollResult } from '../../src/watch/poller.js';
import { varzFromJson, type Varz } from '../../src/watch/varz.js';

const URL_A = 'http://127.0.0.1:8222';

function varz(fields: Record<string, unknown>): Varz {
  return varzFromJson({ server_id: 'NA', server_name: 'a', version: '2.10.27', cpu: 1, mem: 1, ...fields });
}

function poll(v: Varz, at: number): PollResult {
  return { key: URL_A, scheduledAt: at, at, durationMs: 1, ok: true, reading: { varz: v, body: new Uint8Array(2), kind: 'varz' } };
}

const CONFIG = `
servers: [ { name: a, url: "${URL_A}", prof_url: "http://127.0.0.1:6060" } ]
triggers:
  - { name: slow, metric: slow_consumers, rate: 1m, above: 0, profiles: [goroutine] }
  - { name: conns, metric: connections, above: 100, profiles: [goroutine], escalate: 50%, escalate_max: 1 }
`;

function setup(decide: (req: CaptureRequest) => SubmitResult) {
  const config = parseConfigText(CONFIG, 'test.yaml', {}, () => 'pw');
  const inventory = new Inventory();
  inventory.setServers(config.servers);
  const engine = new TriggerEngine(config.triggers);
  const metrics = new Metrics({ servers: () => inventory.values(), rules: () => engine.firing() });
  const log = pino({ level: 'silent' });
  const clock: Clock & { t: number } = { t: 1_000_000, now() { return this.t; }, sleep: () => Promise.resolve() };
  const requests: CaptureRequest[] = [];
  const flow = new Flow({ inventory, engine, metrics, log, clock, config: () => config, submit: (req) => (requests.push(req), decide(req)) });
  return { flow, engine, metrics, clock, requests };
}

async function metric(m: Metrics, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const values = (await m.registry.getSingleMetric(name)?.get())?.values ?? [];
  return values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
}

describe('field rules through the flow', () => {
  it('a slow consumer rate fires with field, window and counter recorded; the document is dropped after the rules read it', async () => {
    const { flow, clock, requests, metrics } = setup(() => ({ accepted: true, id: 'a~1', done: new Promise(() => undefined) }));
    const v0 = varz({ slow_consumers: 3, connections: 1 });
    flow.onPoll(poll(v0, clock.t));
    assert.equal(v0.doc, undefined, 'the parsed document is not kept');
    clock.t += 5_000;
    flow.onPoll(poll(varz({ slow_consumers: 4, connections: 1 }), clock.t));
    assert.equal(requests.length, 1);
    assert.deepEqual(requests[0]?.trigger, { name: 'slow', metric: 'slow_consumers', value: 0.2, above: 0, for_ms: 0, rate_ms: 60_000, raw: 4, escalation_step: 0 });
    assert.equal(await metric(metrics, 'nats_autoprof_trigger_info', { trigger: 'slow', metric: 'slow_consumers', rate: '60s', escalate: '' }), 1);
    assert.equal(await metric(metrics, 'nats_autoprof_trigger_info', { trigger: 'conns', metric: 'connections', rate: '', escalate: '50%' }), 1);
  });

  it('an escalation is its own capture request; refused, it keeps its step; then capped by escalate_max', async () => {
    let refuse = false;
    const { flow, clock, requests, engine, metrics } = setup(() =>
      refuse ? { accepted: false, reason: 'limit', message: 'capture.limit reached' } : { accepted: true, id: `a~${clock.t}`, done: new Promise(() => undefined) },
    );
    const at = (connections: number): void => {
      clock.t += 1_000;
      flow.onPoll(poll(varz({ slow_consumers: 0, connections }), clock.t));
    };
    at(200); // fires
    at(290); // +45%: no
    refuse = true;
    at(310); // +55%: escalation proposed, refused
    assert.equal(engine.viewOf(URL_A).find((r) => r.trigger.name === 'conns')?.state.step, 0, 'a refused escalation does not consume the step');
    refuse = false;
    at(320); // proposed again, captured
    at(10_000); // escalate_max 1: no more
    const conns = requests.filter((r) => r.trigger?.name === 'conns');
    assert.deepEqual(conns.map((r) => [r.trigger?.value, r.trigger?.escalation_step]), [[200, 0], [310, 1], [320, 1]]);
    const view = engine.viewOf(URL_A).find((r) => r.trigger.name === 'conns');
    assert.equal(view?.state.step, 1);
    assert.equal(view?.state.peak, 320);
    assert.equal(await metric(metrics, 'nats_autoprof_trigger_escalations_total', { server: 'a', trigger: 'conns' }), 1);
    assert.equal(await metric(metrics, 'nats_autoprof_trigger_escalation_step', { server: 'a', trigger: 'conns' }), 1);
    assert.equal(await metric(metrics, 'nats_autoprof_triggers_fired_total', { server: 'a', trigger: 'conns' }), 1);
  });
});
