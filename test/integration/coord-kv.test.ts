/**
 * The coordinator against a real 3-node JetStream cluster: buckets created and checked, the system account
 * refused with a clear error, membership and ownership, capture leases exclusive across replicas, the
 * fleet-wide capture.limit never exceeded under concurrent attempts, last firings shared, and the
 * last good view kept while JetStream is gone.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';

import type { CaptureRequest } from '../../src/capture/request.js';
import { CoordinationError } from '../../src/coord/buckets.js';
import { Coordinator, type CoordinationConfig } from '../../src/coord/coordinator.js';
import { ownerOf } from '../../src/coord/ownership.js';
import { createLogger } from '../../src/log.js';
import { Metrics } from '../../src/metrics/registry.js';
import { Secret } from '../../src/secret.js';
import { waitFor } from '../helpers/daemon.js';
import { startJetStreamCluster } from '../helpers/nats-cluster.js';
import { APP_PASSWORD, APP_USER, cleanupTempDirs, SYS_PASSWORD, SYS_USER, type NatsServer } from '../helpers/nats-server.js';
import { promtoolCheck } from '../helpers/promtool.js';

let cluster: NatsServer[] = [];
const coordinators: Coordinator[] = [];
let seq = 0;

before(async () => {
  cluster = await startJetStreamCluster();
});
after(async () => {
  await Promise.all(coordinators.map((c) => c.stop()));
  await Promise.all(cluster.map((s) => s.stop('SIGKILL')));
  cleanupTempDirs();
});

function cfg(instance: string, o: Partial<CoordinationConfig> = {}, buckets = `t${seq}`): CoordinationConfig {
  return {
    urls: cluster.map((s) => s.natsUrl),
    user: APP_USER,
    password: new Secret(APP_PASSWORD),
    token: undefined,
    creds: undefined,
    nkeySeed: undefined,
    tls: undefined,
    timeoutMs: 2_000,
    instance,
    heartbeatMs: 250,
    leaseTtlMs: 1_500,
    buckets: { live: `${buckets}_live`, state: `${buckets}_state` },
    replicas: 3,
    ...o,
  };
}

interface Made {
  c: Coordinator;
  metrics: Metrics;
  logs: string[];
  views: number;
}

function make(config: CoordinationConfig, limit = { count: 100, windowMs: 60_000 }): Made {
  const logs: string[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _e, cb) => (logs.push(chunk.toString()), cb()) });
  const metrics = new Metrics();
  const made: Made = { c: undefined as unknown as Coordinator, metrics, logs, views: 0 };
  made.c = new Coordinator({
    config,
    log: createLogger('debug', sink),
    metrics,
    captureLimit: () => limit,
    ruleCooldownMs: (name) => (name === 'mem-any' ? 3_600_000 : undefined),
    alertCooldownMs: () => 600_000,
    ruleNames: () => ['mem-any'],
    onViewChange: () => made.views++,
  });
  metrics.enableCoordination({ owned: () => 0, secondsSinceContact: () => made.c.secondsSinceContact() });
  coordinators.push(made.c);
  return made;
}

function request(key: string, reason: CaptureRequest['reason'] = 'manual', rule?: string): CaptureRequest {
  const trig = rule === undefined ? undefined : { name: rule, metric: 'mem', value: 1, above: 0, for_ms: 0, rate_ms: null, raw: null, escalation_step: 0 };
  return {
    target: { key, label: key.replace(/\W+/g, '-'), serverId: undefined, version: undefined, cluster: undefined, tags: [], url: key, profUrl: undefined, snapshot: undefined },
    reason,
    ...(trig ? { trigger: trig, triggers: [trig] } : {}),
    profiles: ['heap'],
    cpuDurationMs: 1_000,
  } as CaptureRequest;
}

describe('coordination over JetStream KV', () => {
  it('creates the buckets with the configured TTL and replicas, and refuses an existing bucket with another TTL', async () => {
    seq++;
    const a = make(cfg('a'));
    await a.c.start(10_000);
    assert.ok(a.c.haveView);
    assert.deepEqual(a.c.members, ['a']);
    const nc = await connect({ servers: cluster[0]?.natsUrl, user: APP_USER, pass: APP_PASSWORD });
    try {
      const st = await (await new Kvm(nc).open(`t${seq}_live`)).status();
      assert.equal(st.ttl, 1_500);
      assert.equal(st.replicas, 3);
      assert.equal((await (await new Kvm(nc).open(`t${seq}_state`)).status()).ttl, 0);
    } finally {
      await nc.close();
    }
    const b = make(cfg('b', { leaseTtlMs: 4_000, heartbeatMs: 1_000 }));
    await assert.rejects(b.c.start(10_000), (err: unknown) => {
      assert.ok(err instanceof CoordinationError);
      assert.equal(err.kind, 'incompatible_bucket');
      assert.equal(
        err.message,
        `KV bucket "t${seq}_live" exists with TTL 1500ms, and coordination needs TTL 4s (coordination.lease_ttl): delete it (nats kv del t${seq}_live) so that it is created again, or set lease_ttl: 1500ms`,
      );
      return true;
    });
    await b.c.stop();
    await a.c.stop();
  });

  it('pointed at the system account: an error that says the system account cannot use JetStream', async () => {
    seq++;
    const s = make(cfg('s', { user: SYS_USER, password: new Secret(SYS_PASSWORD) }));
    await assert.rejects(s.c.start(10_000), (err: unknown) => {
      assert.ok(err instanceof CoordinationError);
      assert.equal(err.kind, 'system_account');
      assert.match(err.message, /^coordination connects to the system account, which cannot use JetStream: use a user of an account with JetStream enabled/);
      return true;
    });
    await s.c.stop();
  });

  it('three replicas agree on the members and split the servers; a stopped one leaves at once (its entry is deleted)', async () => {
    seq++;
    const rs = ['r1', 'r2', 'r3'].map((n) => make(cfg(n)));
    await Promise.all(rs.map((r) => r.c.start(10_000)));
    await waitFor(() => rs.every((r) => r.c.members.length === 3), { timeoutMs: 10_000, what: 'three members everywhere' });
    const keys = Array.from({ length: 30 }, (_, i) => `http://127.0.0.1:${9000 + i}`);
    for (const k of keys) assert.equal(rs.filter((r) => r.c.owns(k)).length, 1, `${k} must have one owner`);
    assert.ok(rs.every((r) => keys.some((k) => r.c.owns(k))), 'each of 3 replicas owns some of 30 servers');
    // A clean stop deletes the member entry: the others see it at their next heartbeat.
    const r3 = rs[2] as Made;
    await r3.c.stop();
    await waitFor(() => rs.slice(0, 2).every((r) => r.c.members.join() === 'r1,r2'), { timeoutMs: 3_000, what: 'r3 gone after a clean stop' });
    for (const k of keys) assert.equal(rs.slice(0, 2).filter((r) => r.c.owns(k)).length, 1);
    const text = await (rs[0] as Made).metrics.exposition();
    assert.match(text, /^nats_autoprof_coordination_members 2$/m);
    assert.match(text, /^nats_autoprof_coordination_ownership_changes_total [1-9]/m);
    const check = await promtoolCheck(text);
    assert.equal(check.code, 0, check.output);
  });

  it('two replicas configured with the same instance name: an error says so', async () => {
    seq++;
    const [a, b] = [make(cfg('twin')), make(cfg('twin'))];
    await Promise.all([a.c.start(10_000), b.c.start(10_000)]);
    await waitFor(() => [...a.logs, ...b.logs].some((l) => l.includes('another replica uses the instance name \\"twin\\"')), { timeoutMs: 5_000, what: 'the twin error' });
  });

  it('a capture lease is held by one replica at a time, even when both ask at once; it frees when released', async () => {
    seq++;
    const [a, b] = [make(cfg('la')), make(cfg('lb'))];
    await Promise.all([a.c.start(10_000), b.c.start(10_000)]);
    const key = 'http://127.0.0.1:7777';
    const [ra, rb] = await Promise.all([a.c.acquire(request(key)), b.c.acquire(request(key))]);
    assert.equal([ra, rb].filter((r) => r.ok).length, 1, JSON.stringify([ra, rb]));
    const refused = [ra, rb].find((r) => !r.ok);
    assert.ok(refused && !refused.ok);
    assert.equal(refused.reason, 'held_elsewhere');
    assert.match(refused.message, /is being captured by replica l[ab]$/);
    // Held for longer than lease_ttl: the renewals keep it.
    await new Promise((r) => setTimeout(r, 2_500));
    const other = ra.ok ? b : a;
    const again = await other.c.acquire(request(key));
    assert.equal(again.ok, false, 'the lease must outlive lease_ttl while the capture runs');
    const holder = ra.ok ? ra : rb;
    assert.ok(holder.ok);
    holder.release();
    await waitFor(async () => {
      const r = await (ra.ok ? b : a).c.acquire(request(key));
      if (r.ok) r.release();
      return r.ok;
    }, { timeoutMs: 3_000, what: 'the released lease to be free' });
    const m = await (ra.ok ? b : a).metrics.exposition();
    assert.match(m, /^nats_autoprof_coordination_leases_total\{result="refused"\} [1-9]/m);
  });

  it('capture.limit is fleet-wide: 3 replicas racing for 6 servers get exactly count slots', async () => {
    seq++;
    const rs = ['q1', 'q2', 'q3'].map((n) => make(cfg(n), { count: 2, windowMs: 60_000 }));
    await Promise.all(rs.map((r) => r.c.start(10_000)));
    const results = await Promise.all(rs.flatMap((r, i) => [0, 1].map((j) => r.c.acquire(request(`http://127.0.0.1:${8000 + i * 2 + j}`)))));
    assert.equal(results.filter((r) => r.ok).length, 2, JSON.stringify(results));
    for (const r of results) if (!r.ok) assert.equal(r.reason, 'limit');
  });

  it('a rule that captured a server on one replica does not capture it again on another within its cooldown', async () => {
    seq++;
    const [a, b] = [make(cfg('fa')), make(cfg('fb'))];
    await Promise.all([a.c.start(10_000), b.c.start(10_000)]);
    const key = 'http://127.0.0.1:6666';
    const firedAt = Date.now();
    const first = await a.c.acquire(request(key, 'trigger', 'mem-any'));
    assert.ok(first.ok);
    first.release();
    // An escalation on replica a (step 1, value 7): not a firing, so not refused; it moves the stored peak and
    // step and keeps the firing's time.
    const esc = request(key, 'trigger', 'mem-any');
    const escTrig = { ...(esc.triggers?.[0] as NonNullable<CaptureRequest['trigger']>), value: 7, escalation_step: 1 };
    const escalated = await waitFor(async () => {
      const r = await a.c.acquire({ ...esc, trigger: escTrig, triggers: [escTrig] });
      if (r.ok) r.release();
      return r.ok || r.reason !== 'held_elsewhere' ? r : undefined;
    }, { timeoutMs: 5_000, what: 'the first lease to be released' });
    assert.ok(escalated.ok);
    // The lease is deleted in the background after release: ask until it is gone.
    const second = await waitFor(async () => {
      const r = await b.c.acquire(request(key, 'trigger', 'mem-any'));
      if (r.ok) r.release();
      return r.ok || r.reason !== 'held_elsewhere' ? r : undefined;
    }, { timeoutMs: 5_000, what: 'the first lease to be released' });
    assert.ok(!second.ok);
    assert.deepEqual({ reason: second.reason, message: second.message }, { reason: 'cooldown', message: 'rule mem-any captured http-127-0-0-1-6666 on replica fa within its cooldown' });
    // What b's engine adopts (guarantee 3): a's firing time, and the peak and step of its escalation.
    const memory = second.fleet?.get('mem-any');
    assert.ok(memory !== undefined);
    assert.ok(memory.lastFiredAt >= firedAt && memory.lastFiredAt <= firedAt + 2_000, `${memory.lastFiredAt} vs ${firedAt}`);
    assert.deepEqual({ peak: memory.peak, step: memory.step }, { peak: 7, step: 1 });
    // A manual capture is not a rule firing: it takes the lease as usual.
    const manual = await b.c.acquire(request(key));
    assert.ok(manual.ok);
    manual.release();
  });

  it('the same alert (fingerprint) delivered to every replica at once is captured once', async () => {
    seq++;
    const rs = ['aa', 'ab', 'ac'].map((n) => make(cfg(n)));
    await Promise.all(rs.map((r) => r.c.start(10_000)));
    const alert = (): CaptureRequest => ({ ...request('http://127.0.0.1:4444', 'alert'), alert: { name: 'NatsHighMemory', fingerprint: 'c0ffee1234567890', labels: {}, annotations: {} } });
    const results = await Promise.all(rs.map((r) => r.c.acquire(alert())));
    assert.equal(results.filter((r) => r.ok).length, 1, JSON.stringify(results));
    for (const r of results) if (r.ok) r.release();
    // Delivered again later (after that capture ended), to another replica: still the one capture.
    const winner = results.findIndex((r) => r.ok);
    // The winner's lease is deleted in the background after release: ask until it is gone.
    const late = await waitFor(async () => {
      const r = await (rs[(winner + 1) % 3] as Made).c.acquire(alert());
      if (r.ok) r.release();
      return r.ok || r.reason !== 'held_elsewhere' ? r : undefined;
    }, { timeoutMs: 5_000, what: 'the winner lease to be released' });
    assert.equal(late.ok, false);
    assert.ok(!late.ok);
    assert.equal(late.reason, 'cooldown');
    assert.match(late.message, /^alert NatsHighMemory \(c0ffee1234567890\) was captured by replica a[abc] within alerts.cooldown$/);
  });

  it('an alert about a server a rule captured on another replica (with the profiles it asks for) is answered by that capture', async () => {
    seq++;
    const [a, b] = [make(cfg('ra')), make(cfg('rb'))];
    await Promise.all([a.c.start(10_000), b.c.start(10_000)]);
    const key = 'http://127.0.0.1:5555';
    const fired = await a.c.acquire(request(key, 'trigger', 'mem-any'));
    assert.ok(fired.ok);
    fired.release();
    const alert = (profiles: CaptureRequest['profiles']): CaptureRequest => ({
      ...request(key, 'alert'),
      profiles,
      alert: { name: 'NatsHighMemory', fingerprint: `f-${profiles.join('-')}`, labels: {}, annotations: {} },
    });
    const answered = await waitFor(async () => {
      const r = await b.c.acquire(alert(['heap']));
      if (r.ok) r.release();
      return r.ok || r.reason !== 'held_elsewhere' ? r : undefined;
    }, { timeoutMs: 5_000, what: 'the rule capture lease to be released' });
    assert.ok(!answered.ok);
    assert.equal(answered.reason, 'cooldown');
    assert.deepEqual(answered.answeredBy?.triggers, ['mem-any']);
    assert.equal(answered.answeredBy?.instance, `ra`);
    // The rule's capture did not hold the goroutine profile: an alert asking for it is captured.
    const other = await b.c.acquire(alert(['goroutine']));
    assert.ok(other.ok, JSON.stringify(other));
    other.release();
  });

  it('without JetStream, a replica keeps its last good view: captures of its own servers go ahead, others are refused', async () => {
    seq++;
    const [a, b] = [make(cfg('ua')), make(cfg('ub'))];
    await Promise.all([a.c.start(10_000), b.c.start(10_000)]);
    await waitFor(() => a.c.members.length === 2, { timeoutMs: 5_000, what: 'two members' });
    const keys = Array.from({ length: 20 }, (_, i) => `http://127.0.0.1:${5000 + i}`);
    const mine = keys.find((k) => ownerOf(k, ['ua', 'ub']) === 'ua') as string;
    const theirs = keys.find((k) => ownerOf(k, ['ua', 'ub']) === 'ub') as string;
    // Take the whole cluster away.
    await Promise.all(cluster.map((s) => s.stop('SIGKILL')));
    await waitFor(() => !a.c.available, { timeoutMs: 10_000, what: 'coordination to be seen unavailable' });
    assert.deepEqual(a.c.members, ['ua', 'ub']);
    assert.ok(a.c.owns(mine));
    const ok = await a.c.acquire(request(mine));
    assert.ok(ok.ok);
    const refused = await a.c.acquire(request(theirs));
    assert.equal(refused.ok, false);
    const text = await a.metrics.exposition();
    assert.match(text, /^nats_autoprof_coordination_leases_total\{result="unavailable"\} 1$/m);
    assert.match(text, /^nats_autoprof_coordination_errors_total\{op="heartbeat"\} [1-9]/m);
    const age = Number(/^nats_autoprof_coordination_last_contact_age_seconds (\S+)$/m.exec(text)?.[1]);
    assert.ok(age > 0, `contact age ${age}`);
    assert.equal(a.logs.filter((l) => l.includes('coordination unavailable: keeping the servers owned at the last good view')).length, 1, 'logged once');
    // Back: it rejoins by itself.
    await Promise.all(cluster.map((s) => s.start()));
    await waitFor(() => a.c.available && b.c.available, { timeoutMs: 30_000, what: 'coordination to be available again' });
  });
});
