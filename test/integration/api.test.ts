/**
 * The operator API and the Alertmanager webhook against a real nats-server: incidents, manual capture,
 * rule state, authentication, and hostile paths.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeProfile } from '../../src/insight/pprof-summary.js';
import { removeTempDirs, startDaemon, tempDir, waitFor, type Daemon } from '../helpers/daemon.js';
import { incidents } from '../helpers/incidents.js';
import { cleanupTempDirs, startServer, SYS_PASSWORD, SYS_USER, type NatsServer } from '../helpers/nats-server.js';

const TOKEN = 'test-api-token-6f1c2a';
let srv: NatsServer;
const daemons: Daemon[] = [];

before(async () => {
  srv = await startServer({ name: 'api-a', tags: ['az:eu-1'], clusterName: 'east' });
});
after(async () => {
  await Promise.all(daemons.map((d) => d.stop('SIGKILL')));
  await srv?.stop();
  cleanupTempDirs();
  removeTempDirs();
});

function config(o: { auth?: boolean; triggers?: string; limit?: string; extra?: string } = {}): { config: string; dir: string } {
  const dir = tempDir();
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  return {
    dir,
    config: `
http:
  listen: "127.0.0.1:{{PORT}}"
${o.auth === false ? '' : '  auth: { bearer_token_file: token }\n'}poll: { interval: 250ms, timeout: 200ms }
servers: [ { url: "${srv.monitorUrl}", prof_url: "${srv.profUrl}" } ]
system_account: { url: "${srv.natsUrl}", user: ${SYS_USER}, password: ${SYS_PASSWORD} }
triggers: ${o.triggers ?? '[]'}
capture: { cpu_duration: 1s${o.limit ? `, limit: ${o.limit}` : ''} }
storage: { dir: "{{DIR}}/profiles" }
${o.extra ?? ''}`,
  };
}

async function daemon(o: Parameters<typeof config>[0] = {}): Promise<Daemon> {
  const c = config(o);
  const d = await startDaemon({ config: c.config, dir: c.dir });
  daemons.push(d);
  await waitFor(async () => (await fetch(`${d.url}/readyz`, { headers: auth() })).status === 200, { what: 'ready' });
  return d;
}

function auth(token = TOKEN): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

async function api(d: Daemon, method: string, path: string, body?: unknown, headers: Record<string, string> = auth()): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${d.url}${path}`, {
    method,
    headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** GET with the path sent exactly as written (fetch would normalise `..`). */
function rawGet(d: Daemon, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: d.port, path, method: 'GET', headers: auth() }, (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function incidentDone(d: Daemon, id: string): Promise<Record<string, unknown>> {
  return waitFor(async () => {
    const r = await api(d, 'GET', `/api/v1/incidents/${encodeURIComponent(id)}`);
    return r.status === 200 ? r.json : undefined;
  }, { timeoutMs: 15_000, what: `incident ${id}` });
}

describe('manual capture through the API', () => {
  let d: Daemon;
  before(async () => {
    d = await daemon();
  });

  it('lists the watched server with its sample and capture paths', async () => {
    const r = await api(d, 'GET', '/api/v1/servers');
    assert.equal(r.status, 200);
    const [s] = r.json['servers'] as Record<string, unknown>[];
    assert.equal(s?.['server'], 'api-a');
    assert.equal(s?.['up'], true);
    assert.equal(s?.['version'], '2.10.27');
    assert.equal(s?.['cluster'], 'east');
    assert.ok(((s?.['sample'] as { mem: number }).mem) > 1_000_000);
    assert.deepEqual(s?.['capture_paths'], { cpu: 'system_account', allocs: 'system_account', heap: 'system_account', goroutine: 'system_account' });
  });

  it('answers 202 with an id, and the incident appears; downloads match the manifest', async () => {
    const r = await api(d, 'POST', '/api/v1/captures', { server: 'api-a', profiles: ['allocs', 'goroutine'], note: 'from the test' });
    assert.equal(r.status, 202, JSON.stringify(r.json));
    const id = r.json['id'] as string;
    assert.match(id, /^api-a~\d{8}T\d{6}\.\d{3}Z-manual$/);
    const m = await incidentDone(d, id);
    assert.equal(m['reason'], 'manual');
    assert.equal(m['note'], 'from the test');
    assert.equal(m['status'], 'ok');
    const profiles = m['profiles'] as { name: string; file: string; sha256: string; bytes: number }[];
    for (const p of profiles) {
      const res = await fetch(`${d.url}/api/v1/incidents/${encodeURIComponent(id)}/files/${p.file}`, { headers: auth() });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'application/octet-stream');
      assert.match(res.headers.get('content-disposition') ?? '', /^attachment; filename="api-a_\d{8}T\d{6}\.\d{3}Z-manual_[a-z]+\.pb\.gz"$/);
      const data = Buffer.from(await res.arrayBuffer());
      assert.equal(data.length, p.bytes);
      assert.equal(createHash('sha256').update(data).digest('hex'), p.sha256);
      decodeProfile(data);
    }
    const list = await api(d, 'GET', '/api/v1/incidents?server=api-a&limit=10');
    assert.equal(list.status, 200);
    assert.equal((list.json['incidents'] as { id: string }[])[0]?.id, id);
  });

  it('pages incidents newest first', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await api(d, 'POST', '/api/v1/captures', { server: 'api-a', profiles: ['goroutine'] });
      assert.equal(r.status, 202);
      await incidentDone(d, r.json['id'] as string);
    }
    const p1 = await api(d, 'GET', '/api/v1/incidents?limit=2');
    const ids1 = (p1.json['incidents'] as { id: string; started_at: string }[]).map((x) => x.id);
    assert.equal(ids1.length, 2);
    assert.ok(typeof p1.json['next'] === 'string');
    const p2 = await api(d, 'GET', `/api/v1/incidents?limit=2&before=${encodeURIComponent(p1.json['next'] as string)}`);
    const ids2 = (p2.json['incidents'] as { id: string }[]).map((x) => x.id);
    assert.equal(ids2.length, 1);
    assert.equal(p2.json['next'], null);
    const all = [...ids1, ...ids2];
    assert.deepEqual([...all].sort().reverse(), all, 'newest first');
  });

  it('answers 409 while the server is already being captured', async () => {
    const first = await api(d, 'POST', '/api/v1/captures', { server: 'api-a', profiles: ['cpu'], cpu_duration: '2s' });
    assert.equal(first.status, 202);
    const second = await api(d, 'POST', '/api/v1/captures', { server: 'api-a', profiles: ['allocs'] });
    assert.equal(second.status, 409);
    assert.deepEqual(second.json, { error: 'server api-a is already being captured', reason: 'busy' });
    await incidentDone(d, first.json['id'] as string);
  });

  it('answers 400 with a precise message for a bad body', async () => {
    const cases: [unknown, string][] = [
      ['{not json', 'the request body is not valid JSON: '],
      [[], 'the body must be a JSON object like {"server": "nats-a", "profiles": ["cpu", "allocs"]}'],
      [{ profiles: ['cpu'] }, 'give exactly one of "server" (a server name) or "select" ({names, clusters, tags})'],
      [{ server: 'api-a', select: {} }, 'give exactly one of "server" (a server name) or "select" ({names, clusters, tags})'],
      [{ server: 'api-a', profiles: ['cpuu'] }, 'unknown profile "cpuu"; use any of: cpu, allocs, heap, goroutine, block, mutex, threadcreate, allocs_delta'],
      [{ server: 'api-a', profiles: [] }, '"profiles" must be a non-empty list of: cpu, allocs, heap, goroutine, block, mutex, threadcreate, allocs_delta'],
      [{ server: 'api-a', cpu_duration: 'soon' }, '"cpu_duration": "soon" is not a duration; use a number with a unit: 250ms, 5s, 10m, 1h, 7d'],
      [{ server: 'api-a', cpu_duration: '20s' }, '"cpu_duration" over 15s cannot be captured from api-a through the system account (PROFILEZ refuses it)'],
      [{ server: 'api-a', extra: 1 }, 'unknown field "extra"; allowed: server, select, profiles, cpu_duration, note'],
      [{ select: { name: ['x'] } }, 'select: unknown field "name"; allowed: names, clusters, tags'],
    ];
    for (const [body, message] of cases) {
      const r = await api(d, 'POST', '/api/v1/captures', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.ok(String(r.json['error']).startsWith(message), `${JSON.stringify(body)} -> ${String(r.json['error'])}`);
    }
    const unknown = await api(d, 'POST', '/api/v1/captures', { server: 'nope' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json['error'], 'unknown server "nope"; watched: api-a');
    const big = await api(d, 'POST', '/api/v1/captures', JSON.stringify({ server: 'api-a', note: 'x'.repeat(1_100_000) }));
    assert.equal(big.status, 413);
  });

  it('refuses path traversal, encoded slashes and unknown files', async () => {
    const [first] = incidents(join(d.dir, 'profiles'));
    assert.ok(first);
    const id = first.manifest.id;
    const cases: [string, number][] = [
      ['/api/v1/incidents/..%2F..%2Fetc', 400],
      ['/api/v1/incidents/api-a~..%2F..', 400],
      [`/api/v1/incidents/${id}/files/..%2Fincident.json`, 400],
      [`/api/v1/incidents/${id}/files/%2e%2e`, 400],
      [`/api/v1/incidents/${id}/files/..`, 400],
      [`/api/v1/incidents/${id}/files/nope.pb.gz`, 404],
      [`/api/v1/incidents/${id}/files/%ZZ`, 400],
      ['/api/v1/incidents/../../etc/passwd', 404],
      ['/api/v1/incidents/api-a~nothing-here', 404],
      [`/api/v1/incidents/${id}/files/incident.json`, 200],
    ];
    for (const [path, status] of cases) {
      const r = await rawGet(d, path);
      assert.equal(r.status, status, `${path}: ${r.body}`);
      if (status !== 200) assert.ok((JSON.parse(r.body) as { error: string }).error.length > 0);
    }
  });

  it('needs the bearer token on every /api/ endpoint', async () => {
    for (const [method, path] of [['GET', '/api/v1/servers'], ['GET', '/api/v1/incidents'], ['POST', '/api/v1/captures'], ['POST', '/api/v1/alerts/alertmanager']] as const) {
      const none = await api(d, method, path, method === 'POST' ? { server: 'api-a' } : undefined, {});
      assert.equal(none.status, 401, `${method} ${path}`);
      assert.equal(none.json['error'], 'missing "Authorization: Bearer <token>" header');
      const wrong = await api(d, method, path, method === 'POST' ? { server: 'api-a' } : undefined, auth('wrong'));
      assert.equal(wrong.status, 401);
      assert.equal(wrong.json['error'], 'invalid bearer token');
    }
    // /metrics and health stay open by default.
    assert.equal((await fetch(`${d.url}/metrics`)).status, 200);
    assert.equal((await fetch(`${d.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${d.url}/api/v1/servers`, { method: 'DELETE', headers: auth() })).status, 405);
    const metrics = await d.metrics();
    assert.match(metrics, /nats_autoprof_api_requests_total\{route="captures",code="401"\} [1-9]/);
    assert.match(metrics, /nats_autoprof_api_requests_total\{route="captures",code="202"\} [1-9]/);
    assert.doesNotMatch(metrics, new RegExp(TOKEN));
  });
});

describe('without a configured token', () => {
  it('POST endpoints answer 403 with how to enable them; GET stays readable', async () => {
    const d = await daemon({ auth: false });
    const r = await api(d, 'POST', '/api/v1/captures', { server: 'api-a' }, {});
    assert.equal(r.status, 403);
    assert.match(String(r.json['error']), /set http\.auth\.bearer_token_file/);
    const a = await api(d, 'POST', '/api/v1/alerts/alertmanager', { alerts: [] }, {});
    assert.equal(a.status, 403);
    assert.equal((await api(d, 'GET', '/api/v1/servers', undefined, {})).status, 200);
    assert.deepEqual(incidents(join(d.dir, 'profiles')), []);
  });

  it('http.auth.metrics protects /metrics too', async () => {
    const c = config({}).config.replace('auth: { bearer_token_file: token }', 'auth: { bearer_token_file: token, metrics: true }');
    const dir = tempDir();
    writeFileSync(join(dir, 'token'), TOKEN);
    const p = await startDaemon({ config: c, dir });
    daemons.push(p);
    assert.equal((await fetch(`${p.url}/metrics`)).status, 401);
    assert.equal((await fetch(`${p.url}/healthz`)).status, 401);
    assert.equal((await fetch(`${p.url}/metrics`, { headers: auth() })).status, 200);
  });
});

describe('capture.limit through the API', () => {
  it('answers 429 once the limit is exhausted', async () => {
    const d = await daemon({ limit: '{ count: 1, window: 1h }' });
    const a = await api(d, 'POST', '/api/v1/captures', { server: 'api-a', profiles: ['goroutine'] });
    assert.equal(a.status, 202);
    await incidentDone(d, a.json['id'] as string);
    const b = await api(d, 'POST', '/api/v1/captures', { server: 'api-a', profiles: ['goroutine'] });
    assert.equal(b.status, 429);
    assert.deepEqual(b.json, { error: 'capture.limit reached: 1 incidents in 3600s', reason: 'limit' });
  });
});

describe('Alertmanager webhook', () => {
  it('captures once for a firing alert, ignores the resolved one, and deduplicates within the cooldown', async () => {
    const d = await daemon({ extra: 'alerts: { profiles: [allocs], cooldown: 10m }' });
    const payload = {
      receiver: 'nats-autoprof',
      status: 'firing',
      alerts: [
        {
          status: 'firing',
          labels: { alertname: 'NatsHighCpu', server_name: 'api-a', severity: 'warning' },
          annotations: { summary: 'NATS server api-a uses too much CPU' },
          startsAt: '2026-11-26T15:30:00Z',
          endsAt: '0001-01-01T00:00:00Z',
          generatorURL: 'http://prometheus:9090/graph',
          fingerprint: 'a1b2c3d4e5f60718',
        },
        {
          status: 'resolved',
          labels: { alertname: 'NatsHighMemory', server_name: 'api-a' },
          annotations: {},
          startsAt: '2026-11-26T15:00:00Z',
          endsAt: '2026-11-26T15:20:00Z',
          generatorURL: 'http://prometheus:9090/graph',
          fingerprint: '0f0e0d0c0b0a0908',
        },
      ],
      groupLabels: { alertname: 'NatsHighCpu' },
      commonLabels: { alertname: 'NatsHighCpu' },
      commonAnnotations: {},
      externalURL: 'http://alertmanager:9093',
      version: '4',
      groupKey: '{}:{alertname="NatsHighCpu"}',
      truncatedAlerts: 0,
    };
    const r = await api(d, 'POST', '/api/v1/alerts/alertmanager', payload);
    assert.equal(r.status, 200);
    const results = r.json['results'] as { result: string; id?: string }[];
    assert.deepEqual(results.map((x) => x.result), ['captured', 'resolved']);
    const m = await incidentDone(d, results[0]?.id as string);
    assert.equal(m['reason'], 'alert');
    assert.deepEqual(m['alert'], {
      name: 'NatsHighCpu',
      fingerprint: 'a1b2c3d4e5f60718',
      labels: { alertname: 'NatsHighCpu', server_name: 'api-a', severity: 'warning' },
      annotations: { summary: 'NATS server api-a uses too much CPU' },
    });
    assert.deepEqual((m['files'] as string[]).sort(), ['allocs.pb.gz', 'varz.json']);

    const again = await api(d, 'POST', '/api/v1/alerts/alertmanager', payload);
    assert.deepEqual((again.json['results'] as { result: string }[]).map((x) => x.result), ['deduplicated', 'resolved']);
    const unknown = await api(d, 'POST', '/api/v1/alerts/alertmanager', { ...payload, alerts: [{ ...payload.alerts[0], fingerprint: 'ffff', labels: { alertname: 'X', instance: '10.9.9.9:8222' } }] });
    assert.equal(unknown.status, 200);
    assert.deepEqual((unknown.json['results'] as { result: string }[]).map((x) => x.result), ['unknown_server']);
    const byInstance = await api(d, 'POST', '/api/v1/alerts/alertmanager', {
      ...payload,
      alerts: [{ ...payload.alerts[0], fingerprint: 'eeee', labels: { alertname: 'Y', instance: srv.monitorUrl.replace('http://', '') } }],
    });
    const byInstanceResults = byInstance.json['results'] as { result: string; server: string; id: string }[];
    assert.deepEqual(byInstanceResults.map((x) => [x.result, x.server]), [['captured', 'api-a']]);
    // Wait for that incident to be written, not for a while.
    await incidentDone(d, byInstanceResults[0]?.id as string);
    assert.equal(incidents(join(d.dir, 'profiles')).filter((i) => i.manifest.reason === 'alert').length, 2);
    const metrics = await d.metrics();
    assert.match(metrics, /nats_autoprof_alerts_received_total\{result="captured"\} 2/);
    assert.match(metrics, /nats_autoprof_alerts_received_total\{result="deduplicated"\} 1/);
    assert.match(metrics, /nats_autoprof_alerts_received_total\{result="resolved"\} 2/);
    assert.match(metrics, /nats_autoprof_alerts_received_total\{result="unknown_server"\} 1/);
    const bad = await api(d, 'POST', '/api/v1/alerts/alertmanager', { version: '3', alerts: [] });
    assert.equal(bad.status, 400);
    assert.equal(bad.json['error'], 'unsupported webhook payload version "3"; expected "4"');
  });
});

describe('rule state through the API', () => {
  it('shows pending with a countdown, then fired, then cooling after a reload raises the threshold', async () => {
    const d = await daemon({ triggers: '[ { name: mem-rule, metric: mem, above: 1MiB, for: 3s, cooldown: 10m, profiles: [goroutine] } ]' });
    const view = async (): Promise<Record<string, unknown>> => {
      const r = await api(d, 'GET', '/api/v1/triggers');
      return (r.json['triggers'] as Record<string, unknown>[])[0] as Record<string, unknown>;
    };
    const pending = await waitFor(async () => {
      const v = await view();
      return v?.['state'] === 'pending' ? v : undefined;
    }, { what: 'pending' });
    assert.equal(pending['server'], 'api-a');
    assert.equal(pending['trigger'], 'mem-rule');
    assert.equal(pending['above'], 1024 * 1024);
    assert.ok(typeof pending['fires_in_ms'] === 'number' && pending['fires_in_ms'] > 0 && pending['fires_in_ms'] <= 3_000, String(pending['fires_in_ms']));
    assert.ok((pending['value'] as number) > 1024 * 1024);
    const fired = await waitFor(async () => {
      const v = await view();
      return v?.['state'] === 'fired' ? v : undefined;
    }, { what: 'fired', timeoutMs: 10_000 });
    assert.ok(fired['last_fired_at']);
    d.writeConfig(config({ triggers: '[ { name: mem-rule, metric: mem, above: 64GiB, for: 3s, cooldown: 10m, profiles: [goroutine] } ]' }).config);
    d.proc.kill('SIGHUP');
    const cooling = await waitFor(async () => {
      const v = await view();
      return v?.['state'] === 'cooling' ? v : undefined;
    }, { what: 'cooling' });
    assert.equal(cooling['last_fired_at'], fired['last_fired_at'], 'rule state survived the reload');
    assert.ok(cooling['cooldown_until']);
  });
});
