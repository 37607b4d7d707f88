/**
 * Whole-cluster watching through the system account, against a real 3-server cluster on loopback:
 * discovery, exact selection, servers leaving and coming back, rules firing on discovered servers, and
 * the scatter-gather collector's stall limit.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { requestAllOn } from '../../src/capture/nats-connection.js';
import { activeServersOf } from '../../src/watch/fleet.js';
import { decodeProfile, sampleTypes } from '../../src/insight/pprof-summary.js';
import { removeTempDirs, startDaemon, waitFor, type Daemon } from '../helpers/daemon.js';
import { incidents } from '../helpers/incidents.js';
import { APP_PASSWORD, APP_USER, cleanupTempDirs, startFleetCluster, SYS_PASSWORD, SYS_USER, type NatsServer } from '../helpers/nats-server.js';
import { readFileSync } from 'node:fs';

let cluster: NatsServer[] = [];
const daemons: Daemon[] = [];

function sys(): string {
  return `system_account:
  url: [${cluster.map((s) => s.natsUrl).join(', ')}]
  user: ${SYS_USER}
  password: ${SYS_PASSWORD}
  discover: true
  stall: 200ms
  forget_after: 2s
`;
}

async function daemon(extra: string, select = ''): Promise<Daemon> {
  const d = await startDaemon({
    config: `
http: { listen: "127.0.0.1:{{PORT}}" }
poll: { interval: 500ms, timeout: 500ms }
storage: { dir: "{{DIR}}/profiles" }
${sys()}${select}
${extra}`,
  });
  daemons.push(d);
  return d;
}

async function watched(d: Daemon): Promise<string[]> {
  const text = await d.metrics();
  return [...text.matchAll(/^nats_autoprof_up\{server="([^"]+)"\} 1$/gm)].map((m) => m[1] as string).sort();
}

before(async () => {
  cluster = await startFleetCluster();
});
after(async () => {
  await Promise.all(daemons.map((d) => d.stop('SIGKILL')));
  await Promise.all(cluster.map((s) => s.stop('SIGKILL')));
  cleanupTempDirs();
  removeTempDirs();
});

describe('discovery and exact selection', () => {
  it('finds all three servers with only a system-account URL and credentials', async () => {
    const d = await daemon('');
    await waitFor(async () => (await watched(d)).length === 3, { what: 'three servers' });
    assert.deepEqual(await watched(d), ['n1', 'n10', 'n2']);
    assert.equal(await d.metric('nats_autoprof_discovery_servers'), 3);
    assert.equal(await d.metric('nats_autoprof_discovery_expected_servers'), 3);
    const text = await d.metrics();
    assert.match(text, /nats_autoprof_server_info\{server="n10",server_id="N[A-Z0-9]{55}",cluster="fleet",version="2\.10\.\d+"\} 1/);
    assert.ok(((await d.metric('nats_autoprof_server_memory_bytes', { server: 'n2' })) ?? 0) > 1_000_000);
    assert.match(text, /nats_autoprof_discovery_duration_seconds_count [1-9]/);
  });

  const cases: [string, string, string[]][] = [
    ['an exact name that is a prefix of another', 'names: [n1]', ['n1']],
    ['a glob', 'names: ["n1*"]', ['n1', 'n10']],
    ['a tag, case-insensitively', 'tags: ["AZ:EU-1"]', ['n1', 'n2']],
    ['two tags (AND)', 'tags: [az:eu-1, role:core]', ['n1']],
    ['a cluster', 'clusters: [fleet]', ['n1', 'n10', 'n2']],
    ['a cluster that is not there', 'clusters: [fle]', []],
  ];
  for (const [name, sel, want] of cases) {
    it(`selects by ${name}`, async () => {
      const d = await daemon('', `  select: { ${sel} }\n`);
      await waitFor(async () => ((await d.metric('nats_autoprof_discovery_rounds_total', { ended: 'count' })) ?? 0) >= 2, { what: 'two rounds' });
      assert.deepEqual(await watched(d), want);
      assert.equal(await d.metric('nats_autoprof_discovery_servers'), want.length);
      await d.stop();
    });
  }

  it('watches a server seen both over HTTP and the system account once', async () => {
    const n1 = cluster[0] as NatsServer;
    const d = await daemon(`servers: [ { url: "${n1.monitorUrl}", name: core-one } ]`);
    await waitFor(async () => (await watched(d)).length === 3, { what: 'three servers' });
    assert.deepEqual(await watched(d), ['core-one', 'n10', 'n2']);
    assert.doesNotMatch(await d.metrics(), /server="n1"/);
    await d.stop();
  });
});

describe('servers leaving and joining', () => {
  it('a stopped server goes up 0, then disappears; a started one appears', async () => {
    const d = await daemon('');
    await waitFor(async () => (await watched(d)).length === 3, { what: 'three servers' });
    const n2 = cluster[2] as NatsServer;
    await n2.stop();
    await waitFor(async () => (await d.metric('nats_autoprof_up', { server: 'n2' })) === 0, { what: 'n2 up 0' });
    await waitFor(async () => !(await d.metrics()).includes('server="n2"'), { what: 'n2 series to disappear', timeoutMs: 15_000 });
    assert.equal(d.logsWith('server no longer watched').length, 1);
    await n2.start();
    await waitFor(async () => (await watched(d)).includes('n2'), { what: 'n2 to come back', timeoutMs: 20_000 });
    assert.equal(d.logsWith('discovered server').filter((l) => l['server'] === 'n2').length, 2);
  });
});

describe('a rule on a discovered server', () => {
  it('captures through the system account, with both profiles decoded', async () => {
    const d = await daemon(`
triggers: [ { name: low-mem, metric: mem, above: 1MiB, profiles: [cpu, allocs], servers: [n10] } ]
capture: { via: system_account, cpu_duration: 1s }
`);
    const root = join(d.dir, 'profiles');
    const [inc] = await waitFor(() => {
      const f = incidents(root);
      return f.length > 0 ? f : undefined;
    }, { timeoutMs: 20_000, what: 'an incident' });
    assert.ok(inc);
    assert.equal(inc.manifest.server.name, 'n10');
    assert.equal(inc.manifest.status, 'ok');
    assert.equal(inc.manifest.via, 'system_account');
    assert.deepEqual(inc.manifest.files, ['allocs.pb.gz', 'cpu.pb.gz', 'statsz.json', 'varz.json']);
    const varz = JSON.parse(readFileSync(join(inc.dir, 'varz.json'), 'utf8')) as { server_name: string; server_id: string };
    assert.equal(varz.server_name, 'n10');
    assert.equal(varz.server_id, inc.manifest.server.id);
    const cpu = readFileSync(join(inc.dir, 'cpu.pb.gz'));
    assert.deepEqual(sampleTypes(cpu).map((t) => t.type), ['samples', 'cpu']);
    decodeProfile(readFileSync(join(inc.dir, 'allocs.pb.gz')));
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(incidents(root).length, 1, 'only n10 is captured');
  });
});

describe('collecting replies with a stale expected count', () => {
  it('returns within the stall timeout, not the overall timeout', async () => {
    const n1 = cluster[0] as NatsServer;
    const responder = await connect({ servers: n1.natsUrl, user: APP_USER, pass: APP_PASSWORD });
    const client = await connect({ servers: n1.natsUrl, user: APP_USER, pass: APP_PASSWORD });
    try {
      const sample = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'statsz', '2.10.27-fx-a.json'), 'utf8');
      const stale = sample.replace(/"active_servers":\s*2/, '"active_servers": 10');
      assert.notEqual(stale, sample);
      // A fake responder answering for 3 servers while each claims there are 10.
      responder.subscribe('fake.statsz', {
        callback: (_err, msg) => {
          for (let i = 0; i < 3; i++) if (msg.reply) responder.publish(msg.reply, stale);
        },
      });
      await responder.flush();
      const r = await requestAllOn(client, 'fake.statsz', '', { timeoutMs: 5_000, stallMs: 200, expected: activeServersOf });
      assert.equal(r.replies.length, 3);
      assert.equal(r.expected, 10);
      assert.equal(r.ended, 'stall');
      assert.ok(r.durationMs < 2_000, `took ${r.durationMs} ms`);
      const none = await requestAllOn(client, 'nobody.listens', '', { timeoutMs: 5_000, stallMs: 200 });
      assert.equal(none.ended, 'no_responders');
    } finally {
      await client.close();
      await responder.close();
    }
  });
});
