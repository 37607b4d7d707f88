/**
 * The incident viewer's API (issue 14) against a real nats-server and the real daemon: two manual captures
 * of one server, then flame graph, top table, comparison and "previous" answer with trees whose totals
 * match decoding the downloaded profiles here with pprof-format; the second manifest says what grew, the
 * first has nothing to compare with; bad parameters are 400s that say why; the bearer token applies.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { Profile } from 'pprof-format';
import { removeTempDirs, startDaemon, tempDir, waitFor, type Daemon } from '../helpers/daemon.js';
import { APP_PASSWORD, APP_USER, cleanupTempDirs, startServer, SYS_PASSWORD, SYS_USER, type NatsServer } from '../helpers/nats-server.js';

const TOKEN = 'viewer-api-token-41b7';
const auth = { authorization: `Bearer ${TOKEN}` };
let srv: NatsServer;
let d: Daemon;
let first: string;
let second: string;

type Json = Record<string, unknown>;

async function get(path: string, headers: Record<string, string> = auth): Promise<{ status: number; json: Json; headers: Headers }> {
  const res = await fetch(`${d.url}${path}`, { headers, signal: AbortSignal.timeout(60_000) });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Json) : {}, headers: res.headers };
}

async function capture(): Promise<string> {
  const res = await fetch(`${d.url}/api/v1/captures`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ server: 'viewer-a', profiles: ['allocs', 'goroutine'] }),
  });
  const body = (await res.json()) as Json;
  assert.equal(res.status, 202, JSON.stringify(body));
  const id = String(body['id']);
  await waitFor(async () => (await get(`/api/v1/incidents/${encodeURIComponent(id)}`)).status === 200, { timeoutMs: 30_000, what: `incident ${id}` });
  return id;
}

/**
 * About 32 MB through the server's client code, so that its allocs profile is not only what the server
 * allocated while starting (sampled every 512 KiB, an idle server's profile may hold no nats-server frame).
 */
async function traffic(): Promise<void> {
  const nc = await connect({ servers: `127.0.0.1:${srv.ports.client}`, user: APP_USER, pass: APP_PASSWORD });
  try {
    let received = 0;
    nc.subscribe('viewer.load', { callback: () => void received++ });
    const payload = new Uint8Array(4096);
    for (let i = 0; i < 8_000; i++) nc.publish('viewer.load', payload);
    await nc.flush();
    await waitFor(() => received === 8_000, { timeoutMs: 20_000, what: 'the load to be delivered' });
  } finally {
    await nc.close();
  }
}

/** Total of the default sample type (default_sample_type, else the last), decoding the download ourselves. */
async function downloadedTotal(id: string, file: string, sampleType?: string): Promise<{ total: number; types: string[] }> {
  const res = await fetch(`${d.url}/api/v1/incidents/${encodeURIComponent(id)}/files/${file}`, { headers: auth });
  assert.equal(res.status, 200);
  const p = Profile.decode(gunzipSync(Buffer.from(await res.arrayBuffer())));
  const strings = p.stringTable.strings;
  const types = p.sampleType.map((t) => strings[Number(t.type)] as string);
  const wanted = sampleType ?? (Number(p.defaultSampleType) ? strings[Number(p.defaultSampleType)] : types[types.length - 1]);
  const index = types.indexOf(wanted as string);
  assert.ok(index >= 0);
  let total = 0;
  for (const s of p.sample) total += Number(s.value[index]);
  return { total, types };
}

before(async () => {
  srv = await startServer({ name: 'viewer-a' });
  const dir = tempDir();
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  d = await startDaemon({
    dir,
    config: `
http:
  listen: "127.0.0.1:{{PORT}}"
  auth: { bearer_token_file: token }
poll: { interval: 250ms, timeout: 200ms }
servers: [ { url: "${srv.monitorUrl}", prof_url: "${srv.profUrl}" } ]
system_account: { url: "${srv.natsUrl}", user: ${SYS_USER}, password: ${SYS_PASSWORD} }
triggers: []
storage: { dir: "{{DIR}}/profiles" }
`,
  });
  await waitFor(async () => (await get('/readyz')).status === 200, { what: 'ready', timeoutMs: 20_000 });
  await traffic();
  first = await capture();
  second = await capture();
});

after(async () => {
  await d?.stop('SIGKILL');
  await srv?.stop();
  cleanupTempDirs();
  removeTempDirs();
});

const enc = encodeURIComponent;

describe('profiles over the API', () => {
  it('the first incident has nothing to compare with (changes null); the second says what grew (a list)', async () => {
    const m1 = (await get(`/api/v1/incidents/${enc(first)}`)).json;
    const m2 = (await get(`/api/v1/incidents/${enc(second)}`)).json;
    const changes = (m: Json) => (m['profiles'] as Json[]).map((p) => [p['name'], p['changes']]);
    assert.deepEqual(changes(m1), [['allocs', null], ['goroutine', null]]);
    for (const [name, c] of changes(m2)) {
      assert.ok(Array.isArray(c), `${String(name)}: ${JSON.stringify(c)}`);
      for (const x of c as Json[]) {
        assert.equal(typeof x['function'], 'string');
        assert.ok((x['after_share'] as number) - (x['before_share'] as number) >= 0.0099, JSON.stringify(x));
      }
    }
    const line = d.logs.find((l) => l['incident'] === second && String(l.msg).startsWith('incident written: '));
    assert.ok(line, 'the capture log line');
  });

  for (const profile of ['allocs', 'goroutine']) {
    it(`${profile}: the flame graph's root total is the downloaded profile's total; a well-formed preorder tree`, async () => {
      const want = await downloadedTotal(first, `${profile}.pb.gz`);
      const r = await get(`/api/v1/incidents/${enc(first)}/profiles/${profile}/flamegraph`, { ...auth, 'accept-encoding': 'gzip' });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(r.headers.get('content-encoding'), 'gzip');
      assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
      const g = r.json as { incident: string; profile: string; sample_type: string; sample_types: { type: string }[]; total: number; names: string[]; nodes: number[][] };
      assert.equal(g.incident, first);
      assert.equal(g.profile, profile);
      assert.equal(g.sample_type, profile === 'allocs' ? 'alloc_space' : 'goroutine');
      assert.deepEqual(g.sample_types.map((t) => t.type), want.types);
      assert.equal(g.total, want.total);
      assert.ok(g.total > 0);
      assert.equal(g.names[0], 'root');
      assert.deepEqual(g.nodes[0], [0, want.total, 0, -1]);
      const childSum = new Map<number, number>();
      g.nodes.forEach(([, total, , parent], i) => {
        if (i > 0) assert.ok((parent as number) >= 0 && (parent as number) < i);
        childSum.set(parent as number, (childSum.get(parent as number) ?? 0) + (total as number));
      });
      g.nodes.forEach(([, total, self], i) => assert.equal(total, (self as number) + (childSum.get(i) ?? 0), `node ${i}`));
      assert.ok(g.names.some((n) => n.includes('nats-server')), 'nats-server frames');

      // Another sample type, and min_share 0 (no merging) keep the total of that type.
      if (profile === 'allocs') {
        const objects = await get(`/api/v1/incidents/${enc(first)}/profiles/allocs/flamegraph?sample_type=alloc_objects&min_share=0`);
        assert.equal(objects.status, 200);
        assert.equal(objects.json['total'], (await downloadedTotal(first, 'allocs.pb.gz', 'alloc_objects')).total);
        assert.ok(!(objects.json['names'] as string[]).includes('other'));
      }
    });
  }

  it('top: rows by flat, flat summing to the total, limit honoured', async () => {
    const want = await downloadedTotal(second, 'allocs.pb.gz');
    const all = await get(`/api/v1/incidents/${enc(second)}/profiles/allocs/top?limit=1000`);
    assert.equal(all.status, 200);
    const rows = all.json['rows'] as { function: string; flat: number; flat_share: number; cum: number; cum_share: number }[];
    assert.equal(all.json['total'], want.total);
    assert.equal(rows.reduce((a, r) => a + r.flat, 0), want.total);
    for (let i = 1; i < rows.length; i++) assert.ok((rows[i - 1] as { flat: number }).flat >= (rows[i] as { flat: number }).flat);
    const five = await get(`/api/v1/incidents/${enc(second)}/profiles/allocs/top?limit=5`);
    assert.deepEqual(five.json['rows'], rows.slice(0, 5));
  });

  it('compare: both totals match their downloads, merged root first, changes by |delta|', async () => {
    const base = await downloadedTotal(first, 'allocs.pb.gz');
    const target = await downloadedTotal(second, 'allocs.pb.gz');
    const r = await get(`/api/v1/compare?base=${enc(`${first}/allocs`)}&target=${enc(`${second}/allocs`)}`);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json['base'], { incident: first, profile: 'allocs', total: base.total });
    assert.deepEqual(r.json['target'], { incident: second, profile: 'allocs', total: target.total });
    assert.equal(r.json['sample_type'], 'alloc_space');
    assert.deepEqual((r.json['nodes'] as number[][])[0], [0, base.total, target.total, -1]);
    const changes = r.json['changes'] as { delta: number; base_share: number; target_share: number }[];
    assert.ok(changes.length <= 50);
    for (const c of changes) assert.ok(Math.abs(c.delta - (c.target_share - c.base_share)) < 1e-9);
  });

  it('previous: the second incident points at the first; the first at nothing', async () => {
    assert.deepEqual((await get(`/api/v1/incidents/${enc(second)}/previous?profile=allocs`)).json, { incident: first });
    assert.deepEqual((await get(`/api/v1/incidents/${enc(first)}/previous?profile=allocs`)).json, { incident: null });
    assert.deepEqual((await get(`/api/v1/incidents/${enc(second)}/previous?profile=cpu`)).json, { incident: null });
  });

  it('bad parameters are 400s that name the problem; unknown incidents and profiles 404', async () => {
    const fg = `/api/v1/incidents/${enc(first)}/profiles/allocs/flamegraph`;
    const cases: [string, number, string][] = [
      [`${fg}?min_share=2`, 400, '"min_share" must be a number from 0 to 1 (a share of the total, e.g. 0.001), got "2"'],
      [`${fg}?min_share=`, 400, '"min_share" must be a number from 0 to 1 (a share of the total, e.g. 0.001), got ""'],
      [`${fg}?sample_type=cpu`, 400, 'sample type "cpu" is not in the profile; it has: alloc_objects, alloc_space, inuse_objects, inuse_space'],
      [`${fg}?sample_type=%3Cb%3E`, 400, '"sample_type" must be a sample type name like "cpu" or "inuse_space", got "<b>"'],
      [`${fg}?minshare=0.1`, 400, 'unknown query parameter "minshare"; allowed: sample_type, min_share'],
      [`${fg}?min_share=0.1&min_share=0.2`, 400, 'query parameter "min_share" is given more than once'],
      [`/api/v1/incidents/${enc(first)}/profiles/allocs/top?limit=0`, 400, '"limit" must be a whole number from 1 to 1000, got "0"'],
      [`/api/v1/incidents/${enc(first)}/profiles/allocs/top?limit=1001`, 400, '"limit" must be a whole number from 1 to 1000, got "1001"'],
      [`/api/v1/compare?target=${enc(`${second}/allocs`)}`, 400, '"base" is required: an incident id and a profile name, like base=<incident id>/cpu'],
      [`/api/v1/compare?base=nope&target=${enc(`${second}/allocs`)}`, 400, '"base" must be an incident id and a profile name, like base=<incident id>/cpu; got "nope"'],
      [`/api/v1/compare?base=${enc(`${first}/goroutine`)}&target=${enc(`${second}/allocs`)}`, 400, 'sample type "alloc_space" is not in the base profile; it has: goroutine'],
      [`/api/v1/incidents/${enc(first)}/profiles/cpu/flamegraph`, 404, `incident "${first}" has no profile "cpu"; it has: allocs, goroutine`],
      [`/api/v1/incidents/viewer-a~20200101T000000.000Z-manual/profiles/allocs/top`, 404, 'unknown incident "viewer-a~20200101T000000.000Z-manual"'],
      [`/api/v1/incidents/nope/previous`, 404, 'unknown incident "nope"'],
      // Nothing outside the store is reachable: ids are checked, profiles are looked up in the manifest.
      [`/api/v1/incidents/${enc(first)}/profiles/..%2F..%2Fincident.json/flamegraph`, 400, 'invalid path segment: "../../incident.json"'],
      [`/api/v1/incidents/${enc(first)}/profiles/incident.json/top`, 404, `incident "${first}" has no profile "incident.json"; it has: allocs, goroutine`],
      [`/api/v1/compare?base=${enc('../../etc/passwd/cpu')}&target=${enc(`${second}/allocs`)}`, 400, '"base" must be an incident id and a profile name, like base=<incident id>/cpu; got "../../etc/passwd/cpu"'],
    ];
    for (const [path, status, error] of cases) {
      const r = await get(path);
      assert.deepEqual([r.status, r.json['error']], [status, error], path);
    }
  });

  it('needs the bearer token when one is configured', async () => {
    for (const path of [
      `/api/v1/incidents/${enc(first)}/profiles/allocs/flamegraph`,
      `/api/v1/incidents/${enc(first)}/profiles/allocs/top`,
      `/api/v1/compare?base=${enc(`${first}/allocs`)}&target=${enc(`${second}/allocs`)}`,
      `/api/v1/incidents/${enc(second)}/previous?profile=allocs`,
    ]) {
      const none = await get(path, {});
      assert.equal(none.status, 401, path);
      assert.equal(none.json['error'], 'missing "Authorization: Bearer <token>" header');
      assert.equal((await get(path, { authorization: 'Bearer wrong' })).status, 401, path);
    }
  });
});
