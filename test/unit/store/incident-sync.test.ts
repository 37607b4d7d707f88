/**
 * IncidentSync against an in-memory bucket (the real one is test/integration/object-store.test.ts): the
 * manifest uploaded last, failed uploads retried and counted while local retention keeps them, upload
 * markers naming their bucket, each replica following the bucket's retention for its own uploaded copies,
 * and a bucket that cannot be read being "unavailable", not "not found".
 */
import * as assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';

import { UnavailableError } from '../../../src/errors.js';
import { IncidentStore } from '../../../src/store/incident-store.js';
import { IncidentSync, type IncidentBucket } from '../../../src/store/incident-sync.js';
import type { BucketObject } from '../../../src/store/upload-plan.js';
import { testManifest } from '../../helpers/manifest.js';

const T = Date.UTC(2026, 11, 4, 2, 0, 0, 0);
const log = pino({ level: 'silent' });

/** A bucket in a Map; `failing` makes every call reject, as an unreachable JetStream does. */
class MemoryBucket implements IncidentBucket {
  readonly objects = new Map<string, Uint8Array>();
  /** Every put, in order. */
  readonly puts: string[] = [];
  failing = false;
  gets = 0;
  constructor(readonly name: string) {}
  #check(): void {
    if (this.failing) throw new Error('no responders');
  }
  async put(name: string, data: Uint8Array): Promise<void> {
    this.#check();
    this.puts.push(name);
    this.objects.set(name, data);
  }
  async get(name: string): Promise<Uint8Array | undefined> {
    this.#check();
    this.gets++;
    return this.objects.get(name);
  }
  async list(): Promise<BucketObject[]> {
    this.#check();
    return [...this.objects].map(([name, d]) => ({ name, size: d.length }));
  }
  async delete(name: string): Promise<void> {
    this.#check();
    this.objects.delete(name);
  }
  async withLease(_key: string, fn: () => Promise<void>): Promise<boolean> {
    this.#check();
    await fn();
    return true;
  }
}


let base: string;
before(async () => {
  base = await mkdtemp(join(tmpdir(), 'autoprof-sync-'));
});
after(async () => {
  await rm(base, { recursive: true, force: true });
});

let n = 0;
async function replica(bucket: IncidentBucket): Promise<{ store: IncidentStore; sync: IncidentSync; dir: string }> {
  const dir = join(base, `r${n++}`);
  const store = new IncidentStore({ dir, log });
  await store.init();
  const sync = new IncidentSync({ store, bucket, log, onUpload: () => undefined });
  return { store, sync, dir };
}

async function addIncident(store: IncidentStore, server: string, atMs: number): Promise<string> {
  const w = await store.begin(server, atMs, 'manual');
  await w.writeFile('varz.json', `{"server":"${server}"}`);
  return (await w.commit(testManifest(server, T))).id;
}

describe('IncidentSync: markers, following the bucket, unavailability', () => {
  it('an upload marker holds the bucket name; pointed at another bucket, start() uploads again', async () => {
    const first = new MemoryBucket('first');
    const a = await replica(first);
    const id = await addIncident(a.store, 'n1', T);
    assert.equal(await a.sync.upload(id), 'ok');
    assert.equal(await readFile(join(a.dir, '.uploaded', id), 'utf8'), 'first');
    // Same disk, another bucket: the marker of "first" does not count.
    const second = new MemoryBucket('second');
    const again = new IncidentSync({ store: a.store, bucket: second, log, onUpload: () => undefined });
    await again.start();
    assert.deepEqual([...again.pending()], [id]);
    await again.idle();
    assert.ok(second.objects.has(`${id}/incident.json`));
    assert.ok(second.objects.has(`${id}/varz.json`));
    await again.stop();
  });

  it('an incident this replica uploaded that left the bucket is deleted here too; one never uploaded stays', async () => {
    const bucket = new MemoryBucket('shared');
    const a = await replica(bucket);
    const gone = await addIncident(a.store, 'n1', T);
    const kept = await addIncident(a.store, 'n1', T + 1000);
    const waiting = await addIncident(a.store, 'n2', T + 2000);
    assert.equal(await a.sync.upload(gone), 'ok');
    assert.equal(await a.sync.upload(kept), 'ok');
    // Another replica's retention deletes `gone` from the bucket (manifest first, then the rest).
    for (const name of [...bucket.objects.keys()]) if (name.startsWith(`${gone}/`)) bucket.objects.delete(name);
    assert.deepEqual(await a.sync.followBucket(), [gone]);
    const left = (await a.store.list()).map((e) => e.id).sort();
    assert.deepEqual(left, [kept, waiting].sort());
    assert.deepEqual((await readdir(join(a.dir, '.uploaded'))).sort(), [kept]);
    // Nothing more to follow: idempotent.
    assert.deepEqual(await a.sync.followBucket(), []);
  });

  it('an incident the bucket retention deleted is not uploaded again when its replica restarts, before or after following', async () => {
    const bucket = new MemoryBucket('shared');
    const a = await replica(bucket);
    const id = await addIncident(a.store, 'n1', T);
    assert.equal(await a.sync.upload(id), 'ok');
    await a.sync.stop();
    // Another replica's retention deletes it from the bucket; this replica restarts before following.
    for (const name of [...bucket.objects.keys()]) if (name.startsWith(`${id}/`)) bucket.objects.delete(name);
    const puts = bucket.puts.length;
    const restarted = new IncidentSync({ store: a.store, bucket, log, onUpload: () => undefined });
    await restarted.start();
    assert.deepEqual([...restarted.pending()], [], 'its marker says it was uploaded to this bucket');
    await restarted.idle();
    assert.equal(bucket.puts.length, puts, 'nothing uploaded again');
    // Following the bucket then deletes the local copy and its marker; a second restart has nothing to do.
    assert.deepEqual(await restarted.followBucket(), [id]);
    await restarted.stop();
    const again = new IncidentSync({ store: a.store, bucket, log, onUpload: () => undefined });
    await again.start();
    await again.idle();
    assert.equal(bucket.puts.length, puts);
    assert.deepEqual(await a.store.list(), []);
    await again.stop();
  });

  it('a local incident whose directory was deleted outside the daemon is not listed; its bucket copy is, once uploaded', async () => {
    const bucket = new MemoryBucket('shared');
    const a = await replica(bucket);
    const uploaded = await addIncident(a.store, 'n1', T);
    const local = await addIncident(a.store, 'n1', T + 1000);
    assert.equal(await a.sync.upload(uploaded), 'ok');
    a.sync.stop();
    for (const id of [uploaded, local]) {
      const e = (await a.store.list()).find((x) => x.id === id);
      await rm(e!.path, { recursive: true });
    }
    const page = await a.sync.page({ limit: 10 });
    assert.deepEqual(page?.incidents.map((e) => [e.id, e.path.includes('/.remote/')]), [[uploaded, true]], 'the bucket still has one; the other is gone');
    assert.deepEqual((await a.store.list()).map((e) => e.id), [], 'both dropped from the local index');
  });

  it('a listing that fails after a newer one started leaves the newer one in the cache', async () => {
    /** The first list() is held until released, then fails; the others answer at once. */
    class HeldBucket extends MemoryBucket {
      lists = 0;
      release: (() => void) | undefined;
      override async list(): Promise<BucketObject[]> {
        this.lists++;
        if (this.lists === 1) {
          await new Promise<void>((r) => (this.release = r));
          throw new Error('no responders');
        }
        return super.list();
      }
    }
    const bucket = new HeldBucket('shared');
    const a = await replica(bucket);
    const id = await addIncident(a.store, 'n1', T);
    const first = a.sync.page({ limit: 10 }); // listing 1, held
    await new Promise((r) => setImmediate(r));
    assert.equal(await a.sync.upload(id), 'ok'); // an upload drops the cached listing
    assert.deepEqual((await a.sync.page({ limit: 10 }))?.incidents.map((e) => e.id), [id]); // listing 2
    bucket.release?.();
    assert.deepEqual((await first)?.incidents.map((e) => e.id), [id], 'the local incident, while the bucket failed');
    await a.sync.page({ limit: 10 });
    assert.equal(bucket.lists, 2, 'the third page reuses listing 2');
  });

  it("a downloaded copy of another replica's incident leaves the cache when the incident leaves the bucket", async () => {
    const bucket = new MemoryBucket('shared');
    const a = await replica(bucket);
    const b = await replica(bucket);
    const id = await addIncident(a.store, 'n1', T);
    assert.equal(await a.sync.upload(id), 'ok');
    const path = await b.sync.resolveFile(id, 'varz.json');
    assert.ok(path !== undefined && path.startsWith(join(b.dir, '.remote', id)), String(path));
    assert.equal(await readFile(path, 'utf8'), '{"server":"n1"}');
    const gets = bucket.gets;
    assert.equal(await b.sync.resolveFile(id, 'varz.json'), path, 'the second read is served from the cache');
    assert.equal(bucket.gets, gets);
    for (const name of [...bucket.objects.keys()]) bucket.objects.delete(name);
    await b.sync.followBucket();
    assert.deepEqual(await readdir(join(b.dir, '.remote')), []);
    assert.equal(await b.sync.read(id), undefined, 'gone from the bucket: not found');
  });

  it('a bucket that cannot be read: another replica\'s incident is "unavailable" (a 503), never "not found"; local ones are served', async () => {
    const bucket = new MemoryBucket('shared');
    const a = await replica(bucket);
    const b = await replica(bucket);
    const theirs = await addIncident(a.store, 'n1', T);
    const mine = await addIncident(b.store, 'n2', T + 1000);
    assert.equal(await a.sync.upload(theirs), 'ok');
    bucket.failing = true;
    await assert.rejects(b.sync.read(theirs), UnavailableError);
    await assert.rejects(b.sync.openFile(theirs, 'varz.json'), UnavailableError);
    assert.equal((await b.sync.read(mine))?.server.name, 'n2');
    // The listing falls back to the local incidents.
    const page = await b.sync.page({ limit: 10 });
    assert.deepEqual(page?.incidents.map((e) => e.id), [mine]);
    // And a failed follow deletes nothing.
    await assert.rejects(b.sync.followBucket());
    assert.deepEqual((await b.store.list()).map((e) => e.id), [mine]);
  });
});

describe('IncidentSync: uploads', () => {
  it('uploads every file, the manifest last', async () => {
    const bucket = new MemoryBucket('shared');
    const a = await replica(bucket);
    const w = await a.store.begin('n1', T, 'manual');
    await w.writeFile('varz.json', '{}');
    await w.writeFile('allocs.pb.gz', 'zz');
    const id = (await w.commit({ ...testManifest('n1', T), files: ['varz.json', 'allocs.pb.gz'] })).id;
    assert.equal(await a.sync.upload(id), 'ok');
    assert.deepEqual(bucket.puts, [`${id}/allocs.pb.gz`, `${id}/varz.json`, `${id}/incident.json`]);
    assert.equal(Buffer.from(bucket.objects.get(`${id}/allocs.pb.gz`) as Uint8Array).toString(), 'zz');
  });

  it('a failed upload is counted, logged once, retried until it lands; local retention keeps it meanwhile', async () => {
    const bucket = new MemoryBucket('shared');
    bucket.failing = true;
    const lines: { msg: string; id?: string }[] = [];
    const logged = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as { msg: string }) });
    const dir = join(base, `r${n++}`);
    const results: string[] = [];
    let sync: IncidentSync | undefined;
    const store = new IncidentStore({ dir, log, onCommit: (id) => sync?.enqueue(id), keep: () => sync?.pending() ?? new Set<string>() });
    await store.init();
    sync = new IncidentSync({ store, bucket, log: logged, onUpload: (r) => void results.push(r), maxRetryMs: 20 });
    await sync.start();
    const id = await addIncident(store, 'n1', T);
    const older = await addIncident(store, 'n2', T - 1000);
    // Both wait; a policy that would delete everything deletes nothing that waits.
    // Each has failed at least once and one of them again (a loaded machine may take a while).
    for (let i = 0; i < 500 && results.filter((r) => r === 'error').length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(results.filter((r) => r === 'error').length >= 3, results.join());
    assert.deepEqual([...sync.pending()].sort(), [id, older].sort());
    const pruned = await store.prune({ maxIncidentsPerServer: 100, maxTotalSizeBytes: 1e12, maxAgeMs: 1 }, T + 10 * 3_600_000);
    assert.deepEqual(pruned.deleted, []);
    assert.equal(lines.filter((l) => l.msg.startsWith('incident upload to the object store failed') && l.id === id).length, 1, 'logged once per incident');
    // JetStream is back: both land, the retries are said once each, and retention may delete them now.
    bucket.failing = false;
    await sync.idle();
    assert.deepEqual(sync.pending().size, 0);
    assert.equal(results.filter((r) => r === 'ok').length, 2);
    assert.ok(bucket.objects.has(`${id}/incident.json`) && bucket.objects.has(`${older}/incident.json`));
    assert.ok(lines.some((l) => l.msg === 'incident uploaded to the object store after retries' && l.id === id));
    const after = await store.prune({ maxIncidentsPerServer: 100, maxTotalSizeBytes: 1e12, maxAgeMs: 1 }, T + 10 * 3_600_000);
    assert.deepEqual(after.deleted.map((d) => d.id).sort(), [id, older].sort());
    await sync.stop();
  });

  it("an incident deleted locally before its upload is 'gone', not retried", async () => {
    const bucket = new MemoryBucket('shared');
    const a = await replica(bucket);
    const id = await addIncident(a.store, 'n1', T);
    assert.equal(await a.store.remove(id, 'test'), true);
    assert.equal(await a.sync.upload(id), 'gone');
    assert.deepEqual(bucket.puts, []);
  });

  it("a page of the bucket's incidents reads the manifests it lists (and a few ahead), not every manifest of the bucket", async () => {
    const bucket = new MemoryBucket('shared');
    const a = await replica(bucket);
    const b = await replica(bucket);
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      const id = await addIncident(a.store, `n${i % 3}`, T + i * 1000);
      assert.equal(await a.sync.upload(id), 'ok');
      ids.push(id);
    }
    const before = bucket.gets;
    const page = await b.sync.page({ limit: 5 });
    assert.deepEqual(page?.incidents.map((e) => e.id), ids.slice(-5).reverse());
    assert.equal(page?.incidents[0]?.server, 'n2', 'the server name comes from the manifest');
    assert.equal(page?.next, ids.at(-5));
    const read = bucket.gets - before;
    assert.ok(read >= 6 && read <= 6 + 16, `${read} manifests read for a page of 5`);
    // A filter reads on until it has its page; the server filter needs no manifest.
    const n1 = await b.sync.page({ limit: 3, server: 'n1' });
    assert.deepEqual(n1?.incidents.map((e) => e.id), ids.filter((_, i) => i % 3 === 1).slice(-3).reverse());
  });
});
