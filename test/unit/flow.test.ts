/**
 * The flow (src/flow.ts) with plain typed values in and capture requests out: a fake submit, a fixed
 * clock, no timers. Covers the union of rules that fire together, a refusal that leaves the rule armed,
 * two discovered servers with the same server_name. (Exceptions thrown here are contained by the poller and
 * discovery: test/unit/watch/poller.test.ts, discovery.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { SubmitResult } from '../../src/capture/capturer.js';
import type { CaptureRequest } from '../../src/capture/request.js';
import type { Clock } from '../../src/clock.js';
import { parseConfigText } from '../../src/config/load.js';
import { discoveredKeys, Flow } from '../../src/flow.js';
import { Metrics } from '../../src/metrics/registry.js';
import { TriggerEngine } from '../../src/trigger/engine.js';
import type { DiscoveryRound } from '../../src/watch/discovery.js';
import type { StatszReading } from '../../src/watch/fleet.js';
import { Inventory } from '../../src/watch/inventory.js';
import type { PollResult } from '../../src/watch/poller.js';
import type { Varz } from '../../src/watch/varz.js';

const MiB = 1024 * 1024;
const URL_A = 'http://127.0.0.1:8222';

function varz(o: { id?: string; name?: string; mem?: number }): Varz {
  return { serverId: o.id ?? 'NA', serverName: o.name ?? 'a', cluster: undefined, tags: [], version: '2.10.27', cpu: 1, mem: o.mem ?? 0, cores: 2, gomaxprocs: 2, gomemlimit: undefined };
}

function statsz(v: Varz): StatszReading {
  return { varz: v, body: JSON.stringify({ server: { name: v.serverName, id: v.serverId } }), activeServers: undefined, host: undefined };
}

function poll(v: Varz, at: number): PollResult {
  return { key: URL_A, scheduledAt: at, at, durationMs: 1, ok: true, reading: { varz: v, body: new Uint8Array(2), kind: 'varz' } };
}

function round(selected: StatszReading[]): DiscoveryRound {
  return { ended: 'count', expected: selected.length, durationMs: 5, selected, invalid: 0 };
}

function setup(yaml: string, submit: (req: CaptureRequest) => SubmitResult) {
  const config = parseConfigText(yaml, 'test.yaml', {}, () => 'pw');
  const inventory = new Inventory();
  inventory.setServers(config.servers);
  const engine = new TriggerEngine(config.triggers);
  const metrics = new Metrics({ servers: () => inventory.values(), rules: () => engine.firing() });
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
  const clock: Clock & { t: number } = { t: 1_000_000, now() { return this.t; }, sleep: () => Promise.resolve() };
  const requests: CaptureRequest[] = [];
  const flow = new Flow({
    inventory,
    engine,
    metrics,
    log,
    clock,
    config: () => config,
    submit: (req) => {
      requests.push(req);
      return submit(req);
    },
  });
  return { flow, inventory, engine, metrics, lines, clock, requests };
}

const accepted = (id: string): SubmitResult => ({ accepted: true, id, done: new Promise(() => undefined) });

async function metric(m: Metrics, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const values = (await m.registry.getSingleMetric(name)?.get())?.values ?? [];
  return values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
}

const TWO_RULES = `
servers: [ { name: a, url: "${URL_A}", prof_url: "http://127.0.0.1:6060" } ]
triggers:
  - { name: mem-2mib, metric: mem, above: 2MiB, for: 0s, profiles: [goroutine] }
  - { name: mem-1mib, metric: mem, above: 1MiB, for: 0s, profiles: [heap] }
`;

describe('Flow', () => {
  it('rules that fire on the same poll make one request: the union of their profiles, every rule listed', () => {
    const { flow, requests, engine } = setup(TWO_RULES, () => accepted('a~x'));
    flow.onPoll(poll(varz({ mem: 3 * MiB }), 1_000_000));
    assert.equal(requests.length, 1);
    const r = requests[0] as CaptureRequest;
    assert.deepEqual(r.profiles, ['goroutine', 'heap']);
    assert.equal(r.trigger?.name, 'mem-2mib');
    assert.deepEqual(r.triggers?.map((t) => t.name), ['mem-2mib', 'mem-1mib']);
    assert.deepEqual(engine.viewOf(URL_A).map((v) => [v.trigger.name, v.state.phase, v.lastFiring?.outcome]), [
      ['mem-2mib', 'fired', 'captured'],
      ['mem-1mib', 'fired', 'captured'],
    ]);
  });

  it('a busy refusal leaves the rules armed; the next sample captures; one skip counted for the episode', async () => {
    const answers: SubmitResult[] = [
      { accepted: false, reason: 'busy', message: 'server a is already being captured' },
      { accepted: false, reason: 'busy', message: 'server a is already being captured' },
      accepted('a~late'),
    ];
    const { flow, requests, engine, metrics, clock, lines } = setup(TWO_RULES, () => answers.shift() as SubmitResult);
    for (let i = 0; i < 4; i++) {
      flow.onPoll(poll(varz({ mem: 3 * MiB }), clock.t));
      clock.t += 1_000;
    }
    assert.equal(requests.length, 3, 'proposed at each sample until accepted, then disarmed');
    assert.deepEqual(engine.viewOf(URL_A).map((v) => [v.state.phase, v.state.lastFiredAt, v.lastFiring?.outcome]), [
      ['fired', 1_002_000, 'captured'],
      ['fired', 1_002_000, 'captured'],
    ]);
    assert.equal(await metric(metrics, 'nats_autoprof_captures_skipped_total', { server: 'a', reason: 'busy' }), 1);
    assert.equal(lines.filter((l) => String(l['msg']).startsWith('capture skipped: ')).length, 1);
  });

  it('two discovered servers with the same server_name are kept apart and do not reset each other', async () => {
    const { flow, requests, inventory, engine, lines, clock } = setup(
      `
system_account: { url: "nats://127.0.0.1:4222", user: sys, password: pw, discover: true }
triggers: [ { name: mem-rule, metric: mem, above: 1MiB, for: 2s, profiles: [heap] } ]
`,
      (req) => accepted(`dup~${req.target.serverId}`),
    );
    const hot = statsz(varz({ id: 'NHOT', name: 'dup', mem: 3 * MiB }));
    const calm = statsz(varz({ id: 'NCALM', name: 'dup', mem: 0 }));
    for (let i = 0; i < 4; i++) {
      flow.onDiscovery(round(i % 2 === 0 ? [hot, calm] : [calm, hot]));
      clock.t += 1_000;
    }
    assert.deepEqual(inventory.discoveredKeys().sort(), ['system_account:dup:NCALM', 'system_account:dup:NHOT']);
    // Held above for 2 s on NHOT: fires once; were they one key, each reading would reset the other's episode.
    assert.equal(requests.length, 1);
    assert.equal(requests[0]?.target.serverId, 'NHOT');
    assert.equal(engine.viewOf('system_account:dup:NCALM')[0]?.state.phase, 'idle');
    const warned = lines.filter((l) => String(l['msg']).startsWith('2 servers answer as "dup"'));
    assert.equal(warned.length, 1, 'the clash is logged once');
    assert.deepEqual(warned[0]?.['server_ids'], ['NCALM', 'NHOT']);
  });

  it('discoveredKeys keys a name by itself unless several server_ids carry it', () => {
    const r = discoveredKeys([statsz(varz({ id: 'N1', name: 'x' })), statsz(varz({ id: 'N2', name: 'y' })), statsz(varz({ id: 'N3', name: 'y' }))]);
    assert.deepEqual(r.keys, ['system_account:x', 'system_account:y:N2', 'system_account:y:N3']);
    assert.deepEqual([...r.clashes], [['y', ['N2', 'N3']]]);
    // The same server twice (e.g. a duplicate reply) is not a clash.
    assert.deepEqual(discoveredKeys([statsz(varz({ id: 'N1', name: 'x' })), statsz(varz({ id: 'N1', name: 'x' }))]).clashes.size, 0);
  });
});
