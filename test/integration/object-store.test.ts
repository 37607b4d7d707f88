/**
 * Incidents shared through a JetStream object store (issue 17, guarantee 5), with three daemon replicas
 * (dist/main.js) on a real 3-node JetStream cluster and standalone nats-servers watched over HTTP:
 * - an incident captured by one replica is listed by the others and downloads from them, sha256 as in the
 *   manifest, the same bytes from each, and its profiles decode (also through the viewer's top table);
 * - the nats-server a replica's coordination connection uses is killed the moment an incident is committed
 *   (its upload is starting): the incident ends up complete in the store, and another replica never lists
 *   an incident any of whose files it cannot serve;
 * - with JetStream gone, a capture is written locally, its upload fails, is counted and waits; when the
 *   cluster is back it lands without anyone asking;
 * - retention applies to the bucket: beyond max_incidents_per_server, the oldest go from the bucket too.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';

import { Objm } from '@nats-io/obj';
import { connect } from '@nats-io/transport-node';
import { Profile } from 'pprof-format';

import { removeTempDirs, runCli, startDaemon, tempDir, waitFor, type Daemon } from '../helpers/daemon.js';
import { startJetStreamCluster } from '../helpers/nats-cluster.js';
import { APP_PASSWORD, APP_USER, cleanupTempDirs, startServer, type NatsServer } from '../helpers/nats-server.js';
import { promtoolCheck } from '../helpers/promtool.js';

const TOKEN = 'object-store-test-token';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const BUCKET = 'autoprof_incidents_test';
const KEEP = 2;

let cluster: NatsServer[] = [];
const watched: NatsServer[] = [];
const daemons = new Map<string, Daemon>();

before(async () => {
  // Each as it starts, so that `after` stops whatever did start when another one fails.
  const started = await Promise.allSettled([
    startJetStreamCluster(['o1', 'o2', 'o3'], 'objects').then((c) => void (cluster = c)),
    ...['w1', 'w2'].map((name) => startServer({ name, clusterName: name }).then((s) => void watched.push(s))),
  ]);
  for (const r of started) if (r.status === 'rejected') throw r.reason;
  watched.sort((a, b) => a.name.localeCompare(b.name));
  // ra reaches the cluster through o1 only (it learns the others from o1), so killing o1 cuts its connection.
  const [ra, rb, rc] = await Promise.all([
    startDaemon({ config: config('ra', [(cluster[0] as NatsServer).natsUrl]) }),
    startDaemon({ config: config('rb', cluster.map((x) => x.natsUrl)) }),
    startDaemon({ config: config('rc', cluster.map((x) => x.natsUrl)) }),
  ]);
  daemons.set('ra', ra);
  daemons.set('rb', rb);
  daemons.set('rc', rc);
  await waitFor(async () => ((await Promise.all([ra, rb, rc].map((d) => d.metric('nats_autoprof_coordination_members')))).every((m) => m === 3) ? true : undefined), {
    timeoutMs: 60_000,
    what: 'the three replicas to see each other',
  });
});
after(async () => {
  if (process.env['COORD_DEBUG']) for (const [n, d] of daemons) for (const l of d.logs) process.stdout.write(`# ${n} ${JSON.stringify(l).slice(0, 400)}\n`);
  await Promise.all([...daemons.values()].map((d) => d.stop('SIGKILL')));
  await Promise.all([...cluster, ...watched].map((s) => s.stop('SIGKILL')));
  cleanupTempDirs();
  removeTempDirs();
});

function config(instance: string, urls: string[]): string {
  return `
log: { level: info }
http: { listen: "127.0.0.1:{{PORT}}", auth: { bearer_token: ${TOKEN} } }
poll: { interval: 500ms, timeout: 400ms }
servers:
${watched.map((s) => `  - { url: "${s.monitorUrl}", name: ${s.name}, prof_url: "${s.profUrl}" }`).join('\n')}
capture: { via: prof_port }
storage:
  dir: "{{DIR}}/profiles"
  retention: { max_incidents_per_server: ${KEEP}, interval: 1s }
  object_store: { bucket: ${BUCKET}, replicas: 3, max_bytes: 64MiB }
coordination:
  url: [${urls.join(', ')}]
  user: ${APP_USER}
  password: ${APP_PASSWORD}
  instance: ${instance}
  heartbeat: 500ms
  lease_ttl: 3s
  replicas: 3
`;
}

function daemon(name: string): Daemon {
  return daemons.get(name) as Daemon;
}

async function api(d: Daemon, method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${d.url}${path}`, {
    method,
    headers: { ...AUTH, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(45_000),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

interface Listed {
  id: string;
  server: string;
  status: string | null;
}

async function listed(d: Daemon, server?: string): Promise<Listed[]> {
  const r = await api(d, 'GET', `/api/v1/incidents?limit=100${server ? `&server=${server}` : ''}`);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json['incidents'] as Listed[];
}

async function capture(d: Daemon, server: string, profiles: string[]): Promise<string> {
  const r = await api(d, 'POST', '/api/v1/captures', { server, profiles });
  assert.equal(r.status, 202, JSON.stringify(r.json));
  return r.json['id'] as string;
}

interface Manifest {
  id: string;
  status: string;
  files: string[];
  profiles: { name: string; file: string | null; sha256: string | null; bytes: number }[];
}

/**
 * Downloads every file of an incident from `d`; asserts that each profile's sha256 and size match the
 * manifest. 'unavailable' when `d` answered 503 (the bucket unreachable for now: ask again), never a 404.
 */
async function downloadAll(d: Daemon, id: string): Promise<{ manifest: Manifest; files: Map<string, Buffer> } | 'unavailable'> {
  const m = await api(d, 'GET', `/api/v1/incidents/${id}`);
  if (m.status === 503) return 'unavailable';
  assert.equal(m.status, 200, `${id}: ${JSON.stringify(m.json)}`);
  const manifest = m.json as unknown as Manifest;
  const files = new Map<string, Buffer>();
  for (const f of manifest.files) {
    // Longer than the daemon's own bound on a download (30 s): a slow bucket is its 503, not our abort.
    const res = await fetch(`${d.url}/api/v1/incidents/${id}/files/${f}`, { headers: AUTH, signal: AbortSignal.timeout(45_000) });
    if (res.status === 503) return 'unavailable';
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(res.status, 200, `${id}/${f} from ${d.url}: ${body.toString('utf8', 0, 300)}`);
    files.set(f, body);
  }
  for (const p of manifest.profiles) {
    if (!p.file) continue;
    const bytes = files.get(p.file);
    assert.ok(bytes, `${id}: ${p.file} is in profiles[] but not in files[]`);
    assert.equal(createHash('sha256').update(bytes).digest('hex'), p.sha256, `${id}/${p.file} sha256`);
    assert.equal(bytes.length, p.bytes);
  }
  return { manifest, files };
}

/** downloadAll, asked again while the answer is 503. */
async function downloadWhole(d: Daemon, id: string): Promise<{ manifest: Manifest; files: Map<string, Buffer> }> {
  return waitFor(async () => {
    const r = await downloadAll(d, id);
    return r === 'unavailable' ? undefined : r;
  }, { timeoutMs: 30_000, intervalMs: 250, what: `${id} to download from ${d.url}` });
}

/** The bucket's objects, read straight from JetStream. */
async function bucketObjects(): Promise<string[]> {
  const nc = await connect({ servers: cluster.map((s) => s.natsUrl), user: APP_USER, pass: APP_PASSWORD });
  try {
    const os = await new Objm(nc).open(BUCKET);
    return (await os.list()).filter((i) => !i.deleted).map((i) => i.name).sort();
  } finally {
    await nc.close();
  }
}

async function uploads(d: Daemon, result: string): Promise<number> {
  return (await d.metric('nats_autoprof_incident_uploads_total', { result })) ?? 0;
}

describe('incidents shared through a JetStream object store', () => {
  it('an incident captured by one replica is listed by the others and downloads from them, sha256 as in the manifest', async () => {
    const [ra, rb, rc] = [daemon('ra'), daemon('rb'), daemon('rc')];
    const okBefore = await uploads(ra, 'ok');
    const id = await capture(ra, 'w1', ['allocs', 'goroutine']);
    await waitFor(async () => ((await uploads(ra, 'ok')) > okBefore ? true : undefined), { timeoutMs: 30_000, what: 'the upload' });
    // Not on rb's disk: what rb serves comes from the bucket.
    assert.equal(existsSync(join(rb.dir, 'profiles', 'w1')), false);
    const seen = await waitFor(async () => (await listed(rb)).find((i) => i.id === id), { timeoutMs: 10_000, what: `rb to list ${id}` });
    assert.equal(seen.server, 'w1');
    assert.equal(seen.status, 'ok');
    const { manifest, files } = await downloadWhole(rb, id);
    assert.deepEqual(manifest.profiles.map((p) => p.name).sort(), ['allocs', 'goroutine']);
    const allocs = files.get('allocs.pb.gz');
    assert.ok(allocs);
    const decoded = Profile.decode(gunzipSync(allocs));
    assert.ok(decoded.sampleType.length >= 2 && decoded.sample.length > 0, 'the allocs profile decodes, with samples');
    // The viewer reads through the bucket too.
    // The third replica serves the same bytes.
    await waitFor(async () => (await listed(rc)).find((i) => i.id === id), { timeoutMs: 10_000, what: `rc to list ${id}` });
    const fromC = await downloadWhole(rc, id);
    assert.deepEqual(fromC.manifest, manifest);
    for (const [f, bytes] of files) assert.ok(bytes.equals(fromC.files.get(f) as Buffer), `${f} differs between rb and rc`);
    const top = await api(rb, 'GET', `/api/v1/incidents/${id}/profiles/allocs/top?limit=5`);
    assert.equal(top.status, 200, JSON.stringify(top.json));
    assert.ok((top.json['rows'] as unknown[]).length > 0, JSON.stringify(top.json).slice(0, 300));
    // This test's lease (3 s) is shorter than a stalled KV write (timeout 5 s) plus a heartbeat: said once at start.
    assert.equal(ra.logsWith(/^coordination\.timeout \(5000 ms\) plus heartbeat \(500 ms\) is not below lease_ttl \(3000 ms\)/).length, 1);
    // The upload metrics pass promtool like every other series.
    const text = await ra.metrics();
    assert.match(text, /^nats_autoprof_incident_uploads_total\{result="ok"\} [1-9]/m);
    assert.match(text, /^nats_autoprof_bucket_retention_deleted_total \d+$/m);
    const check = await promtoolCheck(text);
    assert.equal(check.code, 0, check.output);
    // The objects: one per file, the manifest among them.
    const objects = (await bucketObjects()).filter((n) => n.startsWith(`${id}/`));
    assert.deepEqual(objects, [...manifest.files, 'incident.json'].map((f) => `${id}/${f}`).sort());
  });

  it('the coordination server killed as an upload starts: the incident ends up complete, and no replica lists half of one', async () => {
    const [ra, rb] = [daemon('ra'), daemon('rb')];
    const o1 = cluster[0] as NatsServer;
    // rb checks every incident it lists, once: each file served, sha256 as in the manifest.
    const checked = new Set<string>();
    const problems: string[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        try {
          for (const i of await listed(rb)) {
            if (checked.has(i.id)) continue;
            const r = await downloadAll(rb, i.id).catch((err: unknown) => problems.push(`${i.id}: ${String(err)}`));
            // 503 while the cluster elects new leaders: check it again at the next round.
            if (r !== 'unavailable') checked.add(i.id);
          }
        } catch {
          // rb's listing itself may time out while the cluster elects a leader: try again
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const id = await capture(ra, 'w2', ['allocs', 'heap', 'goroutine']);
    const [serverDir, dirName] = id.split('~') as [string, string];
    const manifestPath = join(ra.dir, 'profiles', serverDir, dirName, 'incident.json');
    // The store calls for the upload on commit, the moment incident.json is in place.
    await waitFor(() => (existsSync(manifestPath) ? true : undefined), { timeoutMs: 30_000, intervalMs: 5, what: 'the local commit' });
    await o1.kill();
    try {
      await waitFor(async () => ((await listed(rb)).some((i) => i.id === id) ? true : undefined), { timeoutMs: 60_000, intervalMs: 250, what: `rb to list ${id} after o1 died` });
      // With one node of three gone the cluster elects new stream leaders, and reads can stall for a while.
      await waitFor(() => (checked.has(id) ? true : undefined), { timeoutMs: 90_000, intervalMs: 250, what: 'the watcher to check it' });
    } finally {
      watching = false;
      await watcher;
    }
    assert.deepEqual(problems, [], 'every incident rb listed was whole');
    const { manifest } = await downloadWhole(rb, id);
    assert.equal(manifest.profiles.filter((p) => p.file !== null).length, 3);
    process.stdout.write(`# upload across the kill: ok ${await uploads(ra, 'ok')}, error ${await uploads(ra, 'error')}\n`);
    await o1.start();
  });

  it('with JetStream gone, the capture is written locally, its upload fails, is counted, and lands when the cluster is back', async () => {
    // Only the replica that owned w1 at its last good view may capture it while JetStream is gone.
    const owns = async (d: Daemon): Promise<boolean> => ((await api(d, 'GET', '/api/v1/servers')).json['servers'] as { server: string }[]).some((x) => x.server === 'w1');
    const [owner, other] = await waitFor(async () => {
      const all = [...daemons.values()];
      const owners = [];
      for (const d of all) if (await owns(d)) owners.push(d);
      const o = owners[0];
      return owners.length === 1 && o ? ([o, all.find((d) => d !== o) as Daemon] as const) : undefined;
    }, { timeoutMs: 20_000, what: 'one owner of w1' });
    const errorsBefore = await uploads(owner, 'error');
    await Promise.all(cluster.map((s) => s.kill()));
    const id = await capture(owner, 'w1', ['goroutine']);
    const [serverDir, dirName] = id.split('~') as [string, string];
    await waitFor(() => (existsSync(join(owner.dir, 'profiles', serverDir, dirName, 'incident.json')) ? true : undefined), { timeoutMs: 30_000, what: 'the local incident' });
    await waitFor(async () => ((await uploads(owner, 'error')) > errorsBefore ? true : undefined), { timeoutMs: 60_000, what: 'a failed upload to be counted' });
    // Still listed and served by the replica that captured it.
    assert.ok((await listed(owner)).some((i) => i.id === id));
    assert.equal(owner.logsWith('incident upload to the object store failed; the local copy is kept and the upload retried').filter((l) => l['id'] === id).length, 1, 'logged once');
    await Promise.all(cluster.map((s) => s.start()));
    await waitFor(async () => ((await listed(other)).some((i) => i.id === id) ? true : undefined), { timeoutMs: 90_000, intervalMs: 500, what: `the other replica to list ${id} once JetStream is back` });
    await downloadWhole(other, id);
    assert.ok(owner.logsWith('incident uploaded to the object store after retries').some((l) => l['id'] === id));
  });

  it(`retention applies to the bucket: beyond ${KEEP} incidents of a server, the oldest leave the bucket too`, async () => {
    const rb = daemon('rb');
    // The cluster was killed and restarted by the test before: until rb's coordination is back, a server it did
    // not own at its last good view is refused (409). Wait for that, not for a fixed time.
    const first = await waitFor(async () => {
      const r = await api(rb, 'POST', '/api/v1/captures', { server: 'w2', profiles: ['goroutine'] });
      if (r.status === 202) return r.json['id'] as string;
      assert.equal(r.status, 409, JSON.stringify(r.json));
      return undefined;
    }, { timeoutMs: 60_000, intervalMs: 500, what: "rb's coordination to be back (a capture of w2 accepted)" });
    const ids: string[] = [];
    for (let i = 0; i < KEEP + 2; i++) {
      const id = i === 0 ? first : await capture(rb, 'w2', ['goroutine']);
      ids.push(id);
      await waitFor(async () => ((await api(rb, 'GET', `/api/v1/incidents/${id}`)).json['status'] === 'ok' ? true : undefined), { timeoutMs: 30_000, what: `${id} to finish` });
    }
    const newest = ids.slice(-KEEP).sort();
    await waitFor(async () => {
      const inBucket = new Set((await bucketObjects()).filter((n) => n.endsWith('/incident.json') && n.startsWith('w2~')).map((n) => n.slice(0, n.indexOf('/'))));
      return [...inBucket].sort().join() === newest.join() ? true : undefined;
    }, { timeoutMs: 30_000, what: `the bucket to keep only the ${KEEP} newest incidents of w2` });
    // No object of a deleted incident is left behind.
    const left = (await bucketObjects()).filter((n) => n.startsWith('w2~') && !newest.some((id) => n.startsWith(`${id}/`)));
    assert.deepEqual(left, []);
    for (const d of daemons.values()) assert.deepEqual((await waitFor(async () => {
      const l = (await listed(d, 'w2')).map((i) => i.id).sort();
      return l.join() === newest.join() ? l : undefined;
    }, { timeoutMs: 15_000, what: 'every replica to list the same two' })), newest);
  });

  it('a bucket the cluster has no room for: the daemon refuses to start (exit 1) and says which key to lower', async () => {
    const dir = tempDir();
    const file = join(dir, 'big.yaml');
    const text = config('big', cluster.map((x) => x.natsUrl)).replace(`bucket: ${BUCKET}, replicas: 3, max_bytes: 64MiB`, 'bucket: too_big, replicas: 3, max_bytes: 100GiB');
    writeFileSync(file, text.replaceAll('{{PORT}}', '0').replaceAll('{{DIR}}', dir));
    const r = await runCli(['run', '--config', file]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /JetStream cannot create object store "too_big" with 3 replica\(s\) and max_bytes 107374182400 .*lower storage\.object_store\.max_bytes/);
  });
});
