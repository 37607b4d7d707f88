/**
 * Three daemon replicas (dist/main.js) sharing six standalone nats-servers watched over HTTP, coordinated
 * through a real 3-node JetStream cluster (issue 17, guarantees 1, 2 and 4, and the rule memory that keeps a
 * moved server from being captured twice):
 * - every server is owned (listed in /api/v1/servers) by exactly one replica;
 * - a memory rule that fires on every server (cooldown 1h) yields exactly one incident per server in total;
 * - SIGKILL a replica: its servers are owned again within 2 x lease_ttl + poll.interval, none captured twice;
 * - restart it: only its share moves back.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { metricValue, removeTempDirs, runCli, startDaemon, tempDir, waitFor, type Daemon } from '../helpers/daemon.js';
import { incidents } from '../helpers/incidents.js';
import { startJetStreamCluster } from '../helpers/nats-cluster.js';
import { APP_PASSWORD, APP_USER, cleanupTempDirs, startServer, SYS_PASSWORD, SYS_USER, type NatsServer } from '../helpers/nats-server.js';
import { promtoolCheck } from '../helpers/promtool.js';

const LEASE_TTL_MS = 3_000;
const HEARTBEAT_MS = 1_000;
const POLL_MS = 500;
const TOKEN = 'replica-test-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };

let cluster: NatsServer[] = [];
const watched: NatsServer[] = [];
const replicas = new Map<string, { daemon: Daemon; dir: string }>();
/** Replicas killed and started again: their earlier processes, for the debug log dump. */
const retired: (readonly [string, Daemon])[] = [];

before(async () => {
  const [c, ...s] = await Promise.all([startJetStreamCluster(['c1', 'c2', 'c3'], 'coord-daemons'), ...['s1', 's2', 's3', 's4', 's5', 's6'].map((name) => startServer({ name, clusterName: name }))]);
  cluster = c as NatsServer[];
  watched.push(...(s as NatsServer[]));
});
after(async () => {
  if (process.env['COORD_DEBUG']) {
    for (const [n, d] of [...retired, ...[...replicas].map(([k, r]) => [k, r.daemon] as const)]) {
      for (const l of d.logs) if (!/incident written|polled/.test(String(l.msg))) process.stdout.write(`# ${n} ${JSON.stringify(l).slice(0, 400)}\n`);
    }
  }
  await Promise.all([...replicas.values()].map((r) => r.daemon.stop('SIGKILL')));
  await Promise.all([...cluster, ...watched].map((s) => s.stop('SIGKILL')));
  cleanupTempDirs();
  removeTempDirs();
});

function config(instance: string): string {
  return `
log: { level: info }
http: { listen: "127.0.0.1:{{PORT}}", auth: { bearer_token: ${TOKEN} } }
alerts: { profiles: [goroutine] }
poll: { interval: ${POLL_MS}ms, timeout: 400ms }
servers:
${watched.map((s) => `  - { url: "${s.monitorUrl}", name: ${s.name}, prof_url: "${s.profUrl}" }`).join('\n')}
triggers:
  - name: mem-any
    metric: mem
    above: 1MiB
    cooldown: 1h
    profiles: [heap]
capture: { via: prof_port }
storage: { dir: "{{DIR}}/profiles" }
coordination:
  url: [${cluster.map((s) => s.natsUrl).join(', ')}]
  user: ${APP_USER}
  password: ${APP_PASSWORD}
  instance: ${instance}
  heartbeat: ${HEARTBEAT_MS}ms
  lease_ttl: ${LEASE_TTL_MS}ms
  replicas: 3
`;
}

async function start(instance: string): Promise<Daemon> {
  const old = replicas.get(instance);
  if (old) retired.push([instance, old.daemon]);
  const dir = old?.dir ?? tempDir();
  const daemon = await startDaemon({ config: config(instance), dir });
  replicas.set(instance, { daemon, dir });
  return daemon;
}

/** The servers each running replica lists as its own. */
async function owned(names: string[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  await Promise.all(
    names.map(async (n) => {
      const d = (replicas.get(n) as { daemon: Daemon }).daemon;
      const res = await fetch(`${d.url}/api/v1/servers`, { headers: AUTH, signal: AbortSignal.timeout(5_000) });
      const body = (await res.json()) as { servers: { server: string }[] };
      out.set(n, body.servers.map((s) => s.server).sort());
    }),
  );
  return out;
}

/** server -> owner, when every server has exactly one owner among `names`; undefined otherwise. */
async function assignment(names: string[]): Promise<Map<string, string> | undefined> {
  const by = await owned(names);
  const out = new Map<string, string>();
  for (const [replica, servers] of by) {
    for (const s of servers) {
      if (out.has(s)) return undefined;
      out.set(s, replica);
    }
  }
  return out.size === watched.length ? out : undefined;
}

/** Incidents per server (of one reason; default trigger), across every replica's storage directory. */
function incidentCounts(reason = 'trigger'): Map<string, number> {
  const counts = new Map<string, number>();
  for (const { dir } of replicas.values()) {
    for (const i of incidents(`${dir}/profiles`)) if (i.manifest.reason === reason) counts.set(i.manifest.server.name, (counts.get(i.manifest.server.name) ?? 0) + 1);
  }
  return counts;
}

const ALL = ['r1', 'r2', 'r3'];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('coordination pointed at the system account', () => {
  it('the daemon refuses to start (exit 1) and says that the system account cannot use JetStream', async () => {
    const dir = tempDir();
    const file = join(dir, 'sys.yaml');
    writeFileSync(
      file,
      config('sys').replace(`user: ${APP_USER}`, `user: ${SYS_USER}`).replace(`password: ${APP_PASSWORD}`, `password: ${SYS_PASSWORD}`).replaceAll('{{PORT}}', '0').replaceAll('{{DIR}}', dir),
    );
    const r = await runCli(['run', '--config', file]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /could not start: coordination connects to the system account, which cannot use JetStream: use a user of an account with JetStream enabled/);
  });
});

describe('three replicas share six servers through JetStream KV', () => {
  let first: Map<string, string>;

  it('every server is owned by exactly one replica, and each replica exports only its own', async () => {
    await Promise.all(ALL.map((n) => start(n)));
    let last = '';
    first = await waitFor(async () => {
      const m = await Promise.all(ALL.map(async (n) => (await (replicas.get(n) as { daemon: Daemon }).daemon.metric('nats_autoprof_coordination_members')) ?? -1));
      last = `members ${m.join()}; owned ${JSON.stringify([...(await owned(ALL))])}`;
      return m.every((x) => x === 3) ? assignment(ALL) : undefined;
    }, { timeoutMs: 30_000, intervalMs: 200, what: 'one owner per server with 3 members' }).catch((err: unknown) => {
      throw new Error(`${String(err)}; last seen: ${last}; r1 log: ${(replicas.get('r1') as { daemon: Daemon }).daemon.stdout.slice(-3000)}`);
    });
    for (const n of ALL) {
      const d = (replicas.get(n) as { daemon: Daemon }).daemon;
      const mine = [...first].filter(([, r]) => r === n).map(([s]) => s);
      const text = await waitFor(async () => {
        const t = await d.metrics();
        return mine.every((s) => metricValue(t, 'nats_autoprof_up', { server: s }) === 1) ? t : undefined;
      }, { timeoutMs: 10_000, what: `${n} to poll its servers` });
      assert.equal(metricValue(text, 'nats_autoprof_coordination_servers_owned'), mine.length);
      // Per-server series only for its own servers: Prometheus scraping all three sees each server once.
      for (const s of watched) if (!mine.includes(s.name)) assert.equal(metricValue(text, 'nats_autoprof_up', { server: s.name }), undefined, `${n} exports ${s.name}`);
      const check = await promtoolCheck(text);
      assert.equal(check.code, 0, check.output);
    }
    assert.ok(new Set(first.values()).size >= 2, `six servers spread over at least two replicas: ${JSON.stringify([...first])}`);
  });

  it('a memory rule firing on every server yields exactly one incident per server across the replicas', async () => {
    await waitFor(() => incidentCounts().size === watched.length, { timeoutMs: 30_000, what: 'an incident for every server' });
    // Replicas that joined later saw the rule fire too: the fleet-wide last firing refused their captures.
    await sleep(2 * POLL_MS + HEARTBEAT_MS);
    const counts = incidentCounts();
    assert.deepEqual([...counts].sort(), watched.map((s) => [s.name, 1]).sort());
    for (const { dir } of replicas.values()) for (const i of incidents(`${dir}/profiles`)) assert.equal(i.manifest.status, 'ok');
  });

  let victim: string;
  let victimServers: string[];

  it('SIGKILL a replica: its servers are owned again within 2 x lease_ttl + poll.interval, and none is captured twice', async () => {
    // The replica with the most servers (ties: the first name).
    victim = ALL.map((n) => [n, [...first.values()].filter((r) => r === n).length] as const).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]?.[0] as string;
    victimServers = [...first].filter(([, r]) => r === victim).map(([s]) => s);
    assert.ok(victimServers.length > 0);
    const survivors = ALL.filter((n) => n !== victim);
    const killedAt = performance.now();
    const killedWallMs = Date.now();
    await (replicas.get(victim) as { daemon: Daemon }).daemon.stop('SIGKILL');
    const after = await waitFor(() => assignment(survivors), { timeoutMs: 30_000, intervalMs: 100, what: 'the survivors to own every server' });
    const tookMs = performance.now() - killedAt;
    const boundMs = 2 * LEASE_TTL_MS + POLL_MS;
    process.stdout.write(`# failover: ${victimServers.length} server(s) of ${victim} owned again after ${Math.round(tookMs)} ms (bound ${boundMs} ms)\n`);
    assert.ok(tookMs <= boundMs, `failover took ${Math.round(tookMs)} ms, more than 2 x lease_ttl + poll.interval = ${boundMs} ms`);
    // Only the victim's servers moved.
    for (const [s, r] of first) if (r !== victim) assert.equal(after.get(s), r, `${s} moved though its owner lived`);
    // The new owners polled them, their rule fired, and the fleet-wide last firing refused a second capture.
    await waitFor(async () => {
      let skipped = 0;
      for (const n of survivors) {
        const text = await (replicas.get(n) as { daemon: Daemon }).daemon.metrics();
        for (const s of victimServers) skipped += metricValue(text, 'nats_autoprof_captures_skipped_total', { server: s, reason: 'cooldown' }) ?? 0;
      }
      return skipped >= victimServers.length;
    }, { timeoutMs: 15_000, what: 'the moved servers to be refused as in cooldown elsewhere' });
    assert.deepEqual([...incidentCounts()].sort(), watched.map((s) => [s.name, 1]).sort());
    // The new owner took the original firing over (guarantee 3): its cooldown ends when the original's does,
    // not one cooldown after the refusal.
    const startedAt = new Map<string, number>();
    for (const { dir } of replicas.values()) for (const i of incidents(`${dir}/profiles`)) if (i.manifest.reason === 'trigger') startedAt.set(i.manifest.server.name, Date.parse(i.manifest.started_at));
    // The firing's time is taken when the fleet admits the capture (a few KV round trips after the incident
    // starts, more while the cluster is busy): it lies between the incident's start and the kill. A cooldown
    // restarted by the refusal would lie after the kill.
    let seen = '';
    await waitFor(async () => {
      const rows: string[] = [];
      let ok = true;
      for (const s of victimServers) {
        const owner = after.get(s) as string;
        const res = await fetch(`${(replicas.get(owner) as { daemon: Daemon }).daemon.url}/api/v1/triggers`, { headers: AUTH, signal: AbortSignal.timeout(5_000) });
        const t = ((await res.json()) as { triggers: { server: string; trigger: string; last_fired_at: string | null; state: string }[] }).triggers.find((x) => x.server === s && x.trigger === 'mem-any');
        const original = startedAt.get(s) as number;
        rows.push(`${s}@${owner}: ${t?.state} last_fired_at ${t?.last_fired_at} incident ${new Date(original).toISOString()} kill ${new Date(killedWallMs).toISOString()}`);
        const at = t?.last_fired_at == null ? NaN : Date.parse(t.last_fired_at);
        if (!(at >= original - 1_000 && at < killedWallMs) || t?.state !== 'fired') ok = false;
      }
      seen = rows.join('; ');
      return ok;
    }, { timeoutMs: 10_000, what: "the new owners to hold the original firing's time" }).catch((err: unknown) => {
      throw new Error(`${String(err)}: ${seen}`);
    });
  });

  it('restart it: only its share moves back, and still one incident per server', async () => {
    await start(victim);
    const back = await waitFor(async () => {
      const a = await assignment(ALL);
      return a && [...a].every(([s, r]) => first.get(s) === r) ? a : undefined;
    }, { timeoutMs: 30_000, intervalMs: 200, what: 'the first assignment again' });
    assert.deepEqual([...back].sort(), [...first].sort());
    await sleep(2 * POLL_MS + HEARTBEAT_MS);
    assert.deepEqual([...incidentCounts()].sort(), watched.map((s) => [s.name, 1]).sort());
    const d = (replicas.get(victim) as { daemon: Daemon }).daemon;
    assert.ok((await d.metric('nats_autoprof_coordination_leases_total', { result: 'taken' })) !== undefined);
  });

  function alertPayload(server: string, fingerprint: string): unknown {
    return {
      receiver: 'nats-autoprof',
      status: 'firing',
      alerts: [
        {
          status: 'firing',
          labels: { alertname: 'NatsHighMemory', server_name: server, severity: 'warning' },
          annotations: {},
          startsAt: new Date().toISOString(),
          endsAt: '0001-01-01T00:00:00Z',
          generatorURL: 'http://prometheus:9090/graph',
          fingerprint,
        },
      ],
      version: '4',
    };
  }

  async function postAlert(n: string, payload: unknown): Promise<{ result: string; reason?: string; id?: string }> {
    const d = (replicas.get(n) as { daemon: Daemon }).daemon;
    const res = await fetch(`${d.url}/api/v1/alerts/alertmanager`, { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json' }, body: JSON.stringify(payload) });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { results: { result: string; reason?: string; id?: string }[] };
    return body.results[0] as { result: string };
  }

  /** Incidents of one reason for one server, per replica that wrote them. */
  function incidentsBy(reason: string, server: string): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const [n, { dir }] of replicas) {
      const ids = incidents(`${dir}/profiles`).filter((i) => i.manifest.reason === reason && i.manifest.server.name === server).map((i) => i.manifest.id);
      if (ids.length > 0) out.set(n, ids);
    }
    return out;
  }

  it('an alert POSTed to one replica that does not own the server is captured there, once', async () => {
    const [server, owner] = [...first][0] as [string, string];
    const other = ALL.find((n) => n !== owner) as string;
    const payload = alertPayload(server, 'a1e47a1e47a1e47a');
    const r = await postAlert(other, payload);
    assert.equal(r.result, 'captured', JSON.stringify(r));
    await waitFor(() => (incidentsBy('alert', server).get(other)?.length ?? 0) === 1, { timeoutMs: 15_000, what: 'the alert incident on the replica that received it' });
    const i = incidents(`${(replicas.get(other) as { dir: string }).dir}/profiles`).find((x) => x.manifest.reason === 'alert' && x.manifest.server.name === server);
    assert.equal(i?.manifest.status, 'ok');
    assert.equal(i?.manifest.id, r.id);
    // The same alert again, now to every replica at once: the fleet-wide fingerprint memory refuses it everywhere
    // (a replica that asks while another holds the server's lease to read that memory is refused as held_elsewhere).
    const again = await Promise.all(ALL.map((n) => postAlert(n, payload)));
    for (const a of again) assert.ok(a.result === 'deduplicated' || (a.result === 'skipped' && (a.reason === 'cooldown' || a.reason === 'held_elsewhere')), JSON.stringify(again));
    assert.ok(again.some((a) => a.reason === 'cooldown' || a.result === 'deduplicated'), JSON.stringify(again));
    await sleep(1_000);
    assert.deepEqual([...incidentsBy('alert', server)], [[other, [r.id]]]);
  });

  it('the same alert POSTed to all three replicas at once yields one incident, and one "captured" answer', async () => {
    const server = [...first][1]?.[0] as string;
    const payload = alertPayload(server, '5eed5eed5eed5eed');
    const answers = await Promise.all(ALL.map((n) => postAlert(n, payload)));
    // Every replica knows the server; the capture lease and the fingerprint memory let one of them take it.
    assert.deepEqual(answers.filter((a) => a.result === 'captured').length, 1, JSON.stringify(answers));
    for (const a of answers) if (a.result !== 'captured') assert.ok(a.result === 'skipped' && (a.reason === 'held_elsewhere' || a.reason === 'cooldown'), JSON.stringify(answers));
    await waitFor(() => [...incidentsBy('alert', server).values()].flat().length === 1, { timeoutMs: 15_000, what: 'the alert incident' });
    await sleep(1_000);
    assert.deepEqual([...incidentsBy('alert', server).values()].flat(), [answers.find((a) => a.result === 'captured')?.id]);
  });

  it('a manual capture sent to a replica that does not own the server is taken there', async () => {
    const [server, owner] = [...first][2] as [string, string];
    const other = ALL.find((n) => n !== owner) as string;
    const d = (replicas.get(other) as { daemon: Daemon }).daemon;
    const res = await fetch(`${d.url}/api/v1/captures`, { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json' }, body: JSON.stringify({ server, profiles: ['goroutine'] }) });
    const body = (await res.json()) as { id?: string; error?: string };
    assert.equal(res.status, 202, JSON.stringify(body));
    await waitFor(() => (incidentsBy('manual', server).get(other)?.length ?? 0) === 1, { timeoutMs: 15_000, what: 'the manual incident' });
    const i = incidents(`${(replicas.get(other) as { dir: string }).dir}/profiles`).find((x) => x.manifest.id === body.id);
    assert.equal(i?.manifest.status, 'ok');
    assert.equal(i?.manifest.profiles.find((p) => p.name === 'goroutine')?.error, null);
  });
});
