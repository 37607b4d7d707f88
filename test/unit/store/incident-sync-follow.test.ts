/**
 * IncidentSync against an in-memory bucket: upload markers name their bucket, each replica follows the
 * bucket's retention for its own uploaded copies, and a bucket that cannot be read is "unavailable", not
 * "not found". (The upload order, retries and listing are in incident-sync.test.ts.)
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
import type { IncidentManifest } from '../../../src/store/manifest.js';
import type { BucketObject } from '../../../src/store/upload-plan.js';

const T = Date.UTC(2026, 11, 4, 2, 0, 0, 0);
const log = pino({ level: 'silent' });

/** A bucket in a Map; `failing` makes every call reject, as an unreachable JetStream does. */
class MemoryBucket implements IncidentBucket {
  readonly objects = new Map<string, Uint8Array>();
  failing = false;
  gets = 0;
  constructor(readonly name: string) {}
  #check(): void {
    if (this.failing) throw new Error('no responders');
  }
  async put(name: string, data: Uint8Array): Promise<void> {
    this.#check();
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

function manifest(server: string): IncidentManifest {
  return {
    version: 1,
    id: 'placeholder',
    server: { name: server, id: null, cluster: null, version: '2.10.27', tags: [], url: null },
    reason: 'manual',
    trigger: null,
    triggers: [],
    alert: null,
    note: null,
    via: 'prof_port',
    started_at: new Date(T).toISOString(),
    finished_at: new Date(T + 1000).toISOString(),
    status: 'ok',
    profiles: [],
    files: [],
  };
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
  return (await w.commit(manifest(server))).id;
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
