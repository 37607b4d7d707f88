/**
 * The incident viewer's data API against real nats-servers and the real daemon (issue 14):
 * GET /api/v1/servers/{name}/samples for a server watched over HTTP and one discovered through the system
 * account, and the filters of GET /api/v1/incidents over real incidents (a rule, manual captures, an alert).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { removeTempDirs, startDaemon, tempDir, waitFor, type Daemon } from '../helpers/daemon.js';
import { cleanupTempDirs, startServer, SYS_PASSWORD, SYS_USER, type NatsServer } from '../helpers/nats-server.js';

const TOKEN = 'viewer-data-token-3b7e';
/** http.external_url (written with a trailing slash, which the config drops). */
const EXTERNAL = 'https://autoprof.example.com/nats';
const pageOf = (id: string): string => `${EXTERNAL}/ui/#/incidents/${encodeURIComponent(id)}`;
let httpSrv: NatsServer;
let discSrv: NatsServer;
let d: Daemon;

interface Sample {
  at: string;
  cpu: number;
  mem: number;
}
interface Samples {
  server: string;
  interval_ms: number;
  history_ms: number;
  samples: Sample[];
}

const auth = (token = TOKEN): Record<string, string> => ({ authorization: `Bearer ${token}` });

async function get<T = Record<string, unknown>>(path: string, headers: Record<string, string> = auth()): Promise<{ status: number; json: T }> {
  const res = await fetch(`${d.url}${path}`, { headers, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, json: (await res.json()) as T };
}

async function post(path: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${d.url}${path}`, { method: 'POST', headers: { ...auth(), 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function done(id: string): Promise<void> {
  await waitFor(async () => (await get(`/api/v1/incidents/${encodeURIComponent(id)}`)).status === 200, { timeoutMs: 20_000, what: `incident ${id}` });
}

before(async () => {
  [httpSrv, discSrv] = await Promise.all([startServer({ name: 'vd-http' }), startServer({ name: 'vd-disc' })]);
  const dir = tempDir();
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  d = await startDaemon({ dir, config: config('ui: { history: 1m }', `[ { name: vd-http, url: "${httpSrv.monitorUrl}", prof_url: "${httpSrv.profUrl}" } ]`) });
  await waitFor(async () => (await fetch(`${d.url}/readyz`)).status === 200, { what: 'ready', timeoutMs: 20_000 });
  await waitFor(async () => ((await get<{ servers: unknown[] }>('/api/v1/servers')).json.servers.length === 2), { what: 'both servers watched', timeoutMs: 20_000 });
});

function config(ui: string, servers: string): string {
  return `
http:
  listen: "127.0.0.1:{{PORT}}"
  auth: { bearer_token_file: token }
  external_url: "${EXTERNAL}/"
${ui}
poll: { interval: 1s, timeout: 900ms }
servers: ${servers}
system_account: { url: "${discSrv.natsUrl}", user: ${SYS_USER}, password: ${SYS_PASSWORD}, discover: true }
triggers:
  - { name: mem-any, metric: mem, above: 1MiB, profiles: [goroutine], servers: [vd-http] }
alerts: { profiles: [heap] }
capture: { via: prof_port, limit: { count: 50, window: 1h } }
storage: { dir: "{{DIR}}/profiles" }
`;
}

after(async () => {
  await d?.stop('SIGKILL');
  await Promise.all([httpSrv?.stop(), discSrv?.stop()]);
  cleanupTempDirs();
  removeTempDirs();
});

describe('GET /api/v1/servers/{name}/samples', () => {
  for (const name of ['vd-http', 'vd-disc']) {
    it(`${name}: samples grow with polls, oldest first, within the history`, async () => {
      const first = await get<Samples>(`/api/v1/servers/${name}/samples`);
      assert.equal(first.status, 200);
      assert.equal(first.json.server, name);
      assert.equal(first.json.history_ms, 60_000);
      // 1m over 120 buckets is 500ms; polls come every 1s.
      assert.equal(first.json.interval_ms, 1_000);
      const n = first.json.samples.length;
      assert.ok(n >= 1, 'a watched server that answered has samples');
      const later = await waitFor(async () => {
        const r = await get<Samples>(`/api/v1/servers/${name}/samples`);
        return r.json.samples.length >= n + 2 ? r.json : undefined;
      }, { what: `two more samples of ${name}`, timeoutMs: 15_000 });
      const times = later.samples.map((s) => Date.parse(s.at));
      assert.ok(times.every((t, i) => i === 0 || t > (times[i - 1] as number)), 'oldest first, one per bucket');
      assert.ok((times.at(-1) as number) - (times[0] as number) <= 60_000);
      for (const s of later.samples) {
        assert.match(s.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        assert.ok(s.cpu >= 0 && Number.isFinite(s.cpu));
        assert.ok(s.mem > 1_000_000, `mem is bytes: ${s.mem}`);
      }
    });

    it(`${name}: the newest sample is the server's latest reading`, async () => {
      // Read the ring, the server list, the ring again: when no poll landed in between, the newest bucket's time
      // is the reading's, and (one poll per 500ms bucket) its values are the reading's values.
      const match = await waitFor(async () => {
        const a = await get<Samples>(`/api/v1/servers/${name}/samples`);
        const list = await get<{ servers: { server: string; sample: { cpu: number; mem: number; at: string } }[] }>('/api/v1/servers');
        const b = await get<Samples>(`/api/v1/servers/${name}/samples`);
        const s = list.json.servers.find((x) => x.server === name)?.sample;
        const last = a.json.samples.at(-1);
        if (!s || !last || last.at !== b.json.samples.at(-1)?.at || last.at !== s.at) return undefined;
        return { last, s };
      }, { what: 'a quiet moment between polls', timeoutMs: 15_000, intervalMs: 50 });
      // The ring keeps float32 (src/watch/sample-ring.ts): mem as the nearest float32, cpu to 7 digits.
      assert.deepEqual(match.last, { at: match.s.at, cpu: Number(Math.fround(match.s.cpu).toPrecision(7)), mem: Math.fround(match.s.mem) });
    });
  }

  it('vd-http: the values are those of the server\'s own /varz', async () => {
    const varz = (await (await fetch(`${httpSrv.monitorUrl}/varz`)).json()) as { mem: number; cpu: number; server_name: string };
    assert.equal(varz.server_name, 'vd-http');
    const { json } = await get<Samples>('/api/v1/servers/vd-http/samples');
    const last = json.samples.at(-1) as Sample;
    // The same process's resident memory, read a moment apart.
    assert.ok(last.mem > varz.mem / 2 && last.mem < varz.mem * 2, `ring ${last.mem} vs /varz ${varz.mem}`);
  });

  it('decodes the name, 404s an unknown server, 401s without the token', async () => {
    const encoded = await get<Samples>('/api/v1/servers/vd%2Dhttp/samples');
    assert.equal(encoded.status, 200);
    assert.equal(encoded.json.server, 'vd-http');
    const unknown = await get<{ error: string }>('/api/v1/servers/no-such-server/samples');
    assert.equal(unknown.status, 404);
    assert.match(unknown.json.error, /unknown server "no-such-server"/);
    const none = await get<{ error: string }>('/api/v1/servers/vd-http/samples', {});
    assert.equal(none.status, 401);
    assert.equal((await get('/api/v1/servers/vd-http/samples', auth('wrong'))).status, 401);
  });
});

describe('GET /api/v1/incidents filters', () => {
  interface Entry {
    id: string;
    page_url: string | null;
    reason: string;
    status: string;
    triggers: string[];
    profiles: string[];
  }
  type Page = { incidents: Entry[]; next: string | null };
  const manual: string[] = [];
  let triggered: string;
  let alerted: string;

  before(async () => {
    // The rule fires at the first poll (any nats-server uses more than 1MiB) and captures a goroutine profile.
    triggered = await waitFor(async () => (await get<Page>('/api/v1/incidents?reason=trigger')).json.incidents[0]?.id, { what: 'the rule incident', timeoutMs: 20_000 });
    // Captures of one server run one at a time: each waits for the previous one.
    for (const profiles of [['goroutine'], ['heap'], ['goroutine'], ['heap', 'goroutine'], ['goroutine']]) {
      const r = await waitFor(async () => {
        const x = await post('/api/v1/captures', { server: 'vd-http', profiles });
        return x.status === 202 ? x : undefined;
      }, { what: 'a manual capture to start', timeoutMs: 20_000 });
      assert.equal(r.json['page_url'], pageOf(r.json['id'] as string));
      manual.push(r.json['id'] as string);
      await done(r.json['id'] as string);
    }
    const alert = {
      status: 'firing',
      labels: { alertname: 'NatsHot', server_name: 'vd-http' },
      annotations: {},
      startsAt: '2026-12-03T16:00:00Z',
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://prometheus:9090/graph',
      fingerprint: 'vd0000000000001',
    };
    const a = await post('/api/v1/alerts/alertmanager', { version: '4', status: 'firing', receiver: 'autoprof', groupKey: '{}', truncatedAlerts: 0, groupLabels: {}, commonLabels: {}, commonAnnotations: {}, externalURL: 'http://am:9093', alerts: [alert] });
    assert.equal(a.status, 200, JSON.stringify(a.json));
    const result = (a.json['results'] as { id: string; page_url: string }[])[0];
    alerted = result?.id as string;
    assert.ok(alerted, JSON.stringify(a.json));
    assert.equal(result?.page_url, pageOf(alerted));
    await done(alerted);
  });

  /** Every page of a query, following next; each page but the last is full. */
  async function all(query: string, limit: number): Promise<Entry[]> {
    const out: Entry[] = [];
    let before = '';
    for (;;) {
      const r = await get<Page>(`/api/v1/incidents?${query}&limit=${limit}${before}`);
      assert.equal(r.status, 200, JSON.stringify(r.json));
      out.push(...r.json.incidents);
      if (r.json.next === null) return out;
      assert.equal(r.json.incidents.length, limit, `${query}: a page followed by another is full`);
      before = `&before=${encodeURIComponent(r.json.next)}`;
    }
  }

  it('reason, with paging', async () => {
    const m = await all('reason=manual', 2);
    assert.deepEqual(m.map((e) => e.id), [...manual].reverse());
    assert.ok(m.every((e) => e.reason === 'manual'));
    assert.deepEqual((await all('reason=trigger', 2)).map((e) => e.id), [triggered]);
    assert.deepEqual((await all('reason=alert', 2)).map((e) => e.id), [alerted]);
  });

  it('trigger: a rule that fired into the incident', async () => {
    const t = await all('trigger=mem-any', 5);
    assert.deepEqual(t.map((e) => e.id), [triggered]);
    assert.deepEqual(t[0]?.triggers, ['mem-any']);
    assert.deepEqual(await all('trigger=never-fired', 5), []);
  });

  it('profile: incidents with a file of that profile, each entry listing its profiles', async () => {
    const heap = await all('profile=heap', 1);
    assert.deepEqual(heap.map((e) => e.id), [alerted, manual[3], manual[1]]);
    assert.deepEqual(heap.map((e) => e.profiles), [['heap'], ['heap', 'goroutine'], ['heap']]);
    const goroutine = await all('profile=goroutine', 2);
    assert.deepEqual(goroutine.map((e) => e.id), [manual[4], manual[3], manual[2], manual[0], triggered]);
    assert.deepEqual(await all('profile=cpu', 2), []);
  });

  it('status and combined filters', async () => {
    const ok = await all('status=ok', 3);
    assert.equal(ok.length, 7);
    assert.ok(ok.every((e) => e.status === 'ok'));
    assert.deepEqual(await all('status=failed', 3), []);
    assert.deepEqual((await all('reason=manual&profile=heap&server=vd-http', 1)).map((e) => e.id), [manual[3], manual[1]]);
    assert.deepEqual(await all('reason=manual&server=vd-disc', 1), []);
  });

  it('400 names the parameter and what it allows; 401 without the token', async () => {
    const cases: [string, RegExp][] = [
      ['reason=cron', /^"reason" must be one of trigger, manual, alert; got "cron"$/],
      ['status=done', /^"status" must be one of ok, partial, failed; got "done"$/],
      ['profile=cpu2', /^"profile" must be one of cpu, allocs, heap, goroutine, /],
      ['trigger=Not_A_Rule', /^"trigger" must be a rule name/],
    ];
    for (const [q, message] of cases) {
      const r = await get<{ error: string }>(`/api/v1/incidents?${q}`);
      assert.equal(r.status, 400, q);
      assert.match(r.json.error, message);
    }
    assert.equal((await get('/api/v1/incidents?reason=manual', {})).status, 401);
  });
});

describe('http.external_url', () => {
  it('links each incident\'s viewer page: list entries, manifests, the capture log lines', async () => {
    const list = await get<{ incidents: { id: string; page_url: string | null }[] }>('/api/v1/incidents');
    assert.ok(list.json.incidents.length >= 7);
    for (const e of list.json.incidents) {
      assert.equal(e.page_url, pageOf(e.id));
      const m = await get(`/api/v1/incidents/${encodeURIComponent(e.id)}`);
      assert.equal(m.json['page_url'], pageOf(e.id), 'written into incident.json at capture time');
    }
    assert.match(pageOf('vd-http~20261203T160000.000Z-mem-any'), /^https:\/\/autoprof\.example\.com\/nats\/ui\/#\/incidents\/vd-http~20261203T160000\.000Z-mem-any$/);
    const capturing = d.logsWith('capturing')[0];
    assert.equal(capturing?.['page_url'], pageOf(capturing?.['incident'] as string));
    // The line written when an incident is on disk carries its link too (manual, alert and rule captures alike).
    const written = d.logsWith(/^incident written: /);
    assert.ok(written.length >= 7, `${written.length} "incident written" lines`);
    for (const w of written) assert.equal(w['page_url'], pageOf(w['incident'] as string));
  });
});

describe('reload (SIGHUP)', () => {
  it('a new ui.history re-buckets what is kept; cache_size waits for a restart; a removed server loses its samples', async () => {
    // Enough samples to tell a re-bucketed ring from a new one.
    const before = await waitFor(async () => {
      const r = (await get<Samples>('/api/v1/servers/vd-disc/samples')).json.samples;
      return r.length >= 6 ? r : undefined;
    }, { what: 'six samples', timeoutMs: 20_000 });
    d.writeConfig(config('ui: { history: 2m, cache_size: 128MiB }', '[]'));
    d.proc.kill('SIGHUP');
    const after = await waitFor(async () => {
      const r = await get<Samples>('/api/v1/servers/vd-disc/samples');
      return r.json.history_ms === 120_000 ? r.json : undefined;
    }, { what: 'the new history' });
    // 1s buckets now, polls 1s apart: neighbours may share a bucket, but nothing older is lost.
    assert.ok(after.samples.length >= before.length / 2, `${after.samples.length} samples after, ${before.length} before`);
    assert.ok(after.samples[0] !== undefined && Date.parse(after.samples[0].at) <= Date.parse((before[0] as Sample).at) + 1_000);
    const warning = d.logsWith(/configuration reloaded; changes to/)[0];
    assert.deepEqual(warning?.['keys'], ['ui.cache_size']);
    await waitFor(async () => (await get('/api/v1/servers/vd-http/samples')).status === 404, { what: 'vd-http to be forgotten' });
  });
});
