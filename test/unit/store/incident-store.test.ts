import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { StorageError } from '../../../src/errors.js';
import { IncidentStore, TooLargeError } from '../../../src/store/incident-store.js';
import type { IncidentManifest } from '../../../src/store/manifest.js';
import { parseManifest } from '../../../src/store/manifest.js';
import { testManifest } from '../../helpers/manifest.js';

const T = Date.UTC(2026, 10, 26, 15, 30, 0, 123);
const H = 3_600_000;

interface LogLine {
  level: number;
  msg: string;
  path?: string;
}

function testLogger(): { log: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { log, lines };
}

function manifest(over: Partial<IncidentManifest> = {}): IncidentManifest {
  return testManifest('nats-1', T, { finished_at: new Date(T + 2000).toISOString(), ...over });
}

async function* chunks(parts: (string | Error)[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) {
    await new Promise((r) => setImmediate(r));
    if (p instanceof Error) throw p;
    yield Buffer.from(p);
  }
}

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

let base: string;
before(async () => {
  base = await mkdtemp(join(tmpdir(), 'autoprof-store-'));
});
after(async () => {
  await rm(base, { recursive: true, force: true });
});

let n = 0;
async function newStore(): Promise<{ store: IncidentStore; dir: string; lines: LogLine[] }> {
  const dir = join(base, `s${n++}`);
  const { log, lines } = testLogger();
  const store = new IncidentStore({ dir, log });
  await store.init();
  return { store, dir, lines };
}

/** Commits an incident with one file of `size` bytes. */
async function addIncident(store: IncidentStore, server: string, startedAtMs: number, label = 'manual', size = 10): Promise<string> {
  const w = await store.begin(server, startedAtMs, label);
  await w.writeFile('varz.json', 'x'.repeat(size));
  return (await w.commit(manifest({ server: { ...manifest().server, name: server } }))).id;
}

describe('IncidentStore writing', () => {
  it('begin -> writeFile -> writeStream -> commit leaves the final dir, its files and manifest, and no tmp dir', async () => {
    const { store, dir } = await newStore();
    const w = await store.begin('nats 1', T, 'cpu_high');
    assert.equal(w.serverDir, 'nats_1');
    assert.equal(w.dirName, '20261126T153000.123Z-cpu_high');
    assert.equal(w.id, 'nats_1~20261126T153000.123Z-cpu_high');
    assert.equal(w.tmpPath, join(dir, 'nats_1', '.tmp-20261126T153000.123Z-cpu_high'));
    assert.deepEqual(await w.writeFile('varz.json', '{"cpu":1}'), { bytes: 9, sha256: sha('{"cpu":1}') });
    assert.deepEqual(await w.writeStream('cpu.pb.gz', chunks(['ab', 'cd', 'e']), 5), { bytes: 5, sha256: sha('abcde') });
    const res = await w.commit(manifest({ files: ['ignored'] }));
    const finalPath = join(dir, 'nats_1', '20261126T153000.123Z-cpu_high');
    assert.deepEqual(res, { path: finalPath, id: 'nats_1~20261126T153000.123Z-cpu_high', pageUrl: undefined });
    assert.deepEqual((await readdir(join(dir, 'nats_1'))).sort(), ['20261126T153000.123Z-cpu_high']);
    assert.deepEqual((await readdir(finalPath)).sort(), ['cpu.pb.gz', 'incident.json', 'varz.json']);
    assert.equal(await readFile(join(finalPath, 'cpu.pb.gz'), 'utf8'), 'abcde');
    const text = await readFile(join(finalPath, 'incident.json'), 'utf8');
    assert.match(text, /^\{\n {2}"version": 1,/);
    const m = parseManifest(JSON.parse(text));
    assert.equal(m?.id, res.id);
    assert.deepEqual(m?.files, ['cpu.pb.gz', 'varz.json']);
    assert.deepEqual(await store.read(res.id), m);
  });

  it('appends -1, -2 when the final name exists and puts the final id in the manifest', async () => {
    const { store, dir } = await newStore();
    const first = await addIncident(store, 'n1', T, 'alert');
    const second = await addIncident(store, 'n1', T, 'alert');
    const third = await addIncident(store, 'n1', T, 'alert');
    assert.equal(first, 'n1~20261126T153000.123Z-alert');
    assert.equal(second, 'n1~20261126T153000.123Z-alert-1');
    assert.equal(third, 'n1~20261126T153000.123Z-alert-2');
    assert.equal((await store.read(third))?.id, third);
    assert.equal((await readdir(join(dir, 'n1'))).length, 3);
  });

  it('with a page URL, the manifest and the commit carry the final id\'s page; without one, no page_url key', async () => {
    const dir = join(base, `s${n++}`);
    const pageUrl = (id: string): string => `https://autoprof.example.com/ui/#/incidents/${encodeURIComponent(id)}`;
    const store = new IncidentStore({ dir, log: testLogger().log, pageUrl });
    await store.init();
    await addIncident(store, 'n1', T, 'alert');
    const w = await store.begin('n1', T, 'alert');
    const c = await w.commit(manifest());
    assert.equal(c.id, 'n1~20261126T153000.123Z-alert-1');
    assert.equal(c.pageUrl, 'https://autoprof.example.com/ui/#/incidents/n1~20261126T153000.123Z-alert-1');
    const onDisk = JSON.parse(await readFile(join(c.path, 'incident.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(onDisk['page_url'], c.pageUrl);
    assert.equal((await store.read(c.id) as Record<string, unknown> | undefined)?.['page_url'], c.pageUrl);

    const plain = (await newStore()).store;
    const p = await (await plain.begin('n1', T, 'manual')).commit(manifest());
    assert.equal(p.pageUrl, undefined);
    assert.ok(!('page_url' in (JSON.parse(await readFile(join(p.path, 'incident.json'), 'utf8')) as object)));
  });

  it('two incidents in progress with the same name get separate tmp dirs', async () => {
    const { store } = await newStore();
    const a = await store.begin('n1', T, 'manual');
    const b = await store.begin('n1', T, 'manual');
    assert.notEqual(a.tmpPath, b.tmpPath);
    assert.equal(b.id, 'n1~20261126T153000.123Z-manual-1');
    const ids = [(await a.commit(manifest())).id, (await b.commit(manifest())).id];
    assert.deepEqual(ids, ['n1~20261126T153000.123Z-manual', 'n1~20261126T153000.123Z-manual-1']);
  });

  it('a stream that fails midway leaves no partial file and rethrows the source error', async () => {
    const { store } = await newStore();
    const w = await store.begin('n1', T, 'manual');
    const boom = new Error('connection reset');
    await assert.rejects(w.writeStream('cpu.pb.gz', chunks(['abc', boom]), 100), (err: unknown) => err === boom);
    assert.deepEqual(await readdir(w.tmpPath), []);
    await w.abort();
  });

  it('a stream beyond maxBytes throws TooLargeError and leaves no partial file', async () => {
    const { store } = await newStore();
    const w = await store.begin('n1', T, 'manual');
    await assert.rejects(w.writeStream('heap.pb.gz', chunks(['abc', 'def', 'ghi']), 5), (err: unknown) => {
      assert.ok(err instanceof TooLargeError);
      assert.equal(err.limit, 5);
      assert.equal(err.file, 'heap.pb.gz');
      assert.equal(err.message, 'heap.pb.gz is larger than the limit of 5 bytes');
      return true;
    });
    assert.deepEqual(await readdir(w.tmpPath), []);
    await w.abort();
  });

  it('an abort signal stops a stalled stream and leaves no partial file', async () => {
    const { store } = await newStore();
    const w = await store.begin('n1', T, 'manual');
    let returned = false;
    async function* stalled(): AsyncGenerator<Uint8Array> {
      try {
        yield Buffer.from('abc');
        await new Promise(() => undefined); // never settles
      } finally {
        returned = true;
      }
    }
    const ac = new AbortController();
    const reason = new Error('shutting down');
    setTimeout(() => ac.abort(reason), 20);
    await assert.rejects(w.writeStream('cpu.pb.gz', stalled(), 100, ac.signal), (err: unknown) => err === reason);
    assert.deepEqual(await readdir(w.tmpPath), []);
    assert.equal(returned, false); // the generator is stuck; we did not wait for it
    await assert.rejects(w.writeStream('cpu.pb.gz', chunks(['a']), 100, ac.signal), (err: unknown) => err === reason);
    assert.deepEqual(await readdir(w.tmpPath), []);
    await w.abort();
  });

  it('refuses unsafe file names', async () => {
    const { store } = await newStore();
    const w = await store.begin('n1', T, 'manual');
    for (const name of ['../x', 'a/b', '.hidden', '', '..', 'incident.json', 'a\\b']) {
      await assert.rejects(w.writeFile(name, 'x'), StorageError, name);
      await assert.rejects(w.writeStream(name, chunks(['x']), 10), StorageError, name);
    }
    assert.deepEqual(await readdir(w.tmpPath), []);
    await w.abort();
  });

  it('abort removes everything, is idempotent, and is a no-op after commit', async () => {
    const { store, dir } = await newStore();
    const w = await store.begin('n1', T, 'manual');
    await w.writeFile('varz.json', '{}');
    await w.abort();
    await w.abort();
    assert.deepEqual(await readdir(join(dir, 'n1')), []);
    await assert.rejects(w.writeFile('x.json', '{}'), StorageError);
    await assert.rejects(w.commit(manifest()), StorageError);

    const c = await store.begin('n1', T, 'manual');
    const { path } = await c.commit(manifest());
    await c.abort();
    assert.deepEqual(await readdir(path), ['incident.json']);
    await assert.rejects(c.writeFile('late.json', '{}'), /is committed/);
  });
});

describe('IncidentStore.init', () => {
  it('removes leftover .tmp-* dirs under every server dir, logs each once, returns them', async () => {
    const { store, dir } = await newStore();
    const kept = await addIncident(store, 'n1', T);
    const left = [join(dir, 'n1', '.tmp-20261126T150000.000Z-x'), join(dir, 'n2', '.tmp-20261126T150000.000Z-y')];
    for (const p of left) {
      await mkdir(p, { recursive: true });
      await writeFile(join(p, 'cpu.pb.gz'), 'partial');
    }
    const { log, lines } = testLogger();
    const nextRun = new IncidentStore({ dir, log });
    assert.deepEqual((await nextRun.init()).sort(), left);
    assert.deepEqual(
      lines.map((l) => [l.level, l.msg, l.path]),
      left.map((p) => [40, 'removed a half-written incident left by an earlier run', p]),
    );
    assert.deepEqual(
      (await nextRun.list()).map((e) => e.id),
      [kept],
    );
    assert.deepEqual(await nextRun.init(), []);
    assert.equal(lines.length, 2);
  });

  it('never removes its own incidents in progress', async () => {
    const { store, dir } = await newStore();
    const inProgress = await store.begin('n1', T, 'manual');
    const leftover = join(dir, 'n1', '.tmp-20261126T150000.000Z-x');
    await mkdir(leftover);
    assert.deepEqual(await store.init(), [leftover]);
    await inProgress.writeFile('varz.json', '{}');
    const { path } = await inProgress.commit(manifest());
    assert.deepEqual((await readdir(path)).sort(), ['incident.json', 'varz.json']);
  });

  it('throws StorageError naming the dir when it cannot be created', async () => {
    const file = join(base, 'a-regular-file');
    await writeFile(file, 'x');
    const dir = join(file, 'incidents');
    const store = new IncidentStore({ dir, log: testLogger().log });
    await assert.rejects(store.init(), (err: unknown) => {
      assert.ok(err instanceof StorageError);
      assert.equal(err.path, dir);
      assert.match(err.message, new RegExp(`^cannot create the incident directory ${dir}: ENOTDIR`));
      return true;
    });
  });

  it('throws StorageError when the dir is a regular file', async () => {
    const file = join(base, 'another-regular-file');
    await writeFile(file, 'x');
    const store = new IncidentStore({ dir: file, log: testLogger().log });
    await assert.rejects(store.init(), (err: unknown) => err instanceof StorageError && err.message.includes(file));
  });
});

describe('IncidentStore reading', () => {
  it('lists complete incidents newest first, with sizes, filtered by server', async () => {
    const { store, dir } = await newStore();
    const a = await addIncident(store, 'a', T, 'manual', 10);
    const b = await addIncident(store, 'b', T + 2000, 'cpu', 20);
    const c = await addIncident(store, 'a', T + 1000, 'alert', 30);
    const pending = await store.begin('a', T + 5000, 'manual');
    await mkdir(join(dir, 'a', 'not-an-incident'));
    await mkdir(join(dir, '.hidden-server', '20261126T153000.123Z-x'), { recursive: true });

    const all = await store.list();
    assert.deepEqual(
      all.map((e) => e.id),
      [b, c, a],
    );
    const first = all[0];
    assert.ok(first);
    assert.equal(first.server, 'b');
    assert.equal(first.serverDir, 'b');
    assert.equal(first.dirName, '20261126T153002.123Z-cpu');
    assert.equal(first.path, join(dir, 'b', '20261126T153002.123Z-cpu'));
    assert.equal(first.startedAtMs, T + 2000);
    const manifestBytes = (await readFile(join(first.path, 'incident.json'))).byteLength;
    assert.equal(first.bytes, 20 + manifestBytes);
    assert.deepEqual(first.summary, { reason: 'manual', trigger: null, triggers: [], alert: null, status: 'ok', finishedAt: new Date(T + 2000).toISOString(), files: ['varz.json'], profiles: [] });

    assert.deepEqual(
      (await store.list({ server: 'a' })).map((e) => e.id),
      [c, a],
    );
    assert.deepEqual(await store.list({ server: 'nope' }), []);
    await pending.abort();
  });

  it('lists an incident with a damaged manifest (summary undefined, logged at warn)', async () => {
    const { store: first, dir } = await newStore();
    const id = await addIncident(first, 'a', T);
    const path = join(dir, 'a', '20261126T153000.123Z-manual', 'incident.json');
    await writeFile(path, '{"version": 1, "trunc');
    const { log, lines } = testLogger();
    const store = new IncidentStore({ dir, log });
    await store.init();
    const [entry] = await store.list();
    assert.equal(entry?.id, id);
    assert.equal(entry?.summary, undefined);
    assert.equal(entry?.server, 'a');
    assert.equal(await store.read(id), undefined);
    assert.ok(lines.some((l) => l.level === 40 && l.msg === 'ignoring an invalid incident manifest' && l.path === path));
  });

  it('list on a store that does not exist yet is empty', async () => {
    const store = new IncidentStore({ dir: join(base, 'never-created'), log: testLogger().log });
    assert.deepEqual(await store.list(), []);
  });

  it('read returns undefined for unknown and invalid ids', async () => {
    const { store } = await newStore();
    const id = await addIncident(store, 'a', T);
    assert.equal((await store.read(id))?.id, id);
    for (const bad of ['a~20261126T153000.123Z-other', 'zz~x', '../a~x', 'a~..', 'a', '']) {
      assert.equal(await store.read(bad), undefined, bad);
    }
  });

  it('resolveFile returns absolute paths only for listed files of valid incidents', async () => {
    const { store, dir } = await newStore();
    const w = await store.begin('a', T, 'manual');
    await w.writeFile('varz.json', '{}');
    await w.writeFile('cpu.pb.gz', 'x');
    const { id } = await w.commit(manifest());
    // a stray file that is not in the manifest
    await writeFile(join(dir, 'a', '20261126T153000.123Z-manual', 'stray.txt'), 'x');
    const p = await store.resolveFile(id, 'cpu.pb.gz');
    assert.equal(p, join(dir, 'a', '20261126T153000.123Z-manual', 'cpu.pb.gz'));
    assert.ok(p && isAbsolute(p));
    assert.equal(await store.resolveFile(id, 'incident.json'), join(dir, 'a', '20261126T153000.123Z-manual', 'incident.json'));
    for (const file of ['../x', '../../a~20261126T153000.123Z-manual/varz.json', 'stray.txt', 'heap.pb.gz', '', '.', '..', 'a/varz.json']) {
      assert.equal(await store.resolveFile(id, file), undefined, file);
    }
    for (const bad of ['..~x', 'a~..', 'a/b~c', 'a~20261126T153000.123Z-nope', '']) {
      assert.equal(await store.resolveFile(bad, 'varz.json'), undefined, bad);
    }
  });
});

describe('IncidentStore.prune', () => {
  let store: IncidentStore;
  let dir: string;
  const ids: Record<string, string> = {};
  beforeEach(async () => {
    ({ store, dir } = await newStore());
    // a: 4 incidents 1..4 h old; b: 2 incidents 2 and 30 h old; all 100 bytes of data
    for (const [key, server, ageH] of [
      ['a1', 'a', 1],
      ['a2', 'a', 2],
      ['a3', 'a', 3],
      ['a4', 'a', 4],
      ['b2', 'b', 2.5],
      ['b30', 'b', 30],
    ] as const) {
      ids[key] = await addIncident(store, server, T - ageH * H, 'manual', 100);
    }
  });

  const remaining = async (): Promise<string[]> => (await store.list()).map((e) => e.id);
  const NONE = { maxIncidentsPerServer: Infinity, maxTotalSizeBytes: Infinity, maxAgeMs: Infinity };

  it('by age', async () => {
    const res = await store.prune({ ...NONE, maxAgeMs: 24 * H }, T);
    assert.deepEqual(res.deleted, [{ id: ids.b30, reason: 'age' }]);
    assert.equal(res.incidents, 5);
    assert.deepEqual(await remaining(), [ids.a1, ids.a2, ids.b2, ids.a3, ids.a4]);
    assert.deepEqual(await readdir(join(dir, 'b')), ['20261126T130000.123Z-manual']);
  });

  it('by count per server', async () => {
    const res = await store.prune({ ...NONE, maxIncidentsPerServer: 2 }, T);
    assert.deepEqual(res.deleted, [
      { id: ids.a4, reason: 'count' },
      { id: ids.a3, reason: 'count' },
    ]);
    assert.deepEqual(await remaining(), [ids.a1, ids.a2, ids.b2, ids.b30]);
  });

  it('by total size, reporting what is left', async () => {
    const before = await store.list();
    const per = before[0]?.bytes ?? 0;
    assert.ok(per > 100);
    const res = await store.prune({ ...NONE, maxTotalSizeBytes: per * 3 }, T);
    assert.deepEqual(
      res.deleted.map((d) => [d.id, d.reason]),
      [
        [ids.b30, 'size'],
        [ids.a4, 'size'],
        [ids.a3, 'size'],
      ],
    );
    assert.deepEqual(await remaining(), [ids.a1, ids.a2, ids.b2]);
    const after = await store.list();
    assert.equal(res.incidents, 3);
    assert.equal(res.totalBytes, after.reduce((s, e) => s + e.bytes, 0));
    // nothing half-deleted is left behind
    assert.deepEqual((await readdir(join(dir, 'b'))).filter((n) => n.startsWith('.')), []);
  });

  it('nothing to do', async () => {
    const res = await store.prune(NONE, T);
    assert.deepEqual(res.deleted, []);
    assert.equal(res.incidents, 6);
  });
});

describe('IncidentStore index', () => {
  const NONE = { maxIncidentsPerServer: Infinity, maxTotalSizeBytes: Infinity, maxAgeMs: Infinity };
  const fresh = async (dir: string): Promise<IncidentStore> => {
    const s = new IncidentStore({ dir, log: testLogger().log });
    await s.init();
    return s;
  };

  it('after commits and a prune, list() is what a restart scans from disk', async () => {
    const { store, dir } = await newStore();
    for (let i = 0; i < 6; i++) await addIncident(store, i % 2 === 0 ? 'a' : 'b', T + i * 1000, 'manual', 10 + i);
    await addIncident(store, 'a', T + 2000, 'manual', 7); // same name: gets -1
    await store.prune({ ...NONE, maxIncidentsPerServer: 3 }, T + 10_000);
    const kept = await store.list();
    assert.equal(kept.length, 6);
    assert.deepEqual(kept, await (await fresh(dir)).list());
    await addIncident(store, 'c', T + 9000, 'cpu', 1);
    assert.deepEqual(await store.list(), await (await fresh(dir)).list());
  });

  it('a commit, a prune and a page do not read the other incidents again', async () => {
    const { store, dir, lines } = await newStore();
    const a = await addIncident(store, 'a', T, 'manual', 10);
    const [before] = await store.list();
    // Damage a's manifest and add a file behind the store's back: only a rescan would notice.
    const aPath = join(dir, 'a', '20261126T153000.123Z-manual');
    await writeFile(join(aPath, 'incident.json'), 'not json');
    await writeFile(join(aPath, 'stray.bin'), 'x'.repeat(1000));
    const b = await addIncident(store, 'b', T + 1000, 'manual', 20);
    await store.prune(NONE, T);
    const page = await store.page({ limit: 10 });
    assert.deepEqual(page?.incidents.map((e) => e.id), [b, a]);
    assert.deepEqual(page?.incidents[1], before);
    assert.deepEqual(lines.filter((l) => l.msg === 'ignoring an invalid incident manifest'), []);
    // A restart does read it again.
    const again = (await (await fresh(dir)).list()).find((e) => e.id === a);
    assert.equal(again?.summary, undefined);
    assert.equal(again?.bytes, 1000 + 'not json'.length + 10);
  });

  it('page() cuts pages newest first, by server, and refuses an unknown "before"', async () => {
    const { store } = await newStore();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.unshift(await addIncident(store, i === 2 ? 'b' : 'a', T + i * 1000));
    const p1 = await store.page({ limit: 2 });
    assert.deepEqual(p1?.incidents.map((e) => e.id), ids.slice(0, 2));
    assert.equal(p1?.next, ids[1]);
    const p2 = await store.page({ limit: 2, before: ids[1] as string });
    assert.deepEqual(p2?.incidents.map((e) => e.id), ids.slice(2, 4));
    const p3 = await store.page({ limit: 2, before: p2?.next as string });
    assert.deepEqual(p3, { incidents: [(await store.list())[4]], next: null });
    assert.deepEqual((await store.page({ limit: 10, server: 'a' }))?.incidents.map((e) => e.id), [ids[0], ids[1], ids[3], ids[4]]);
    assert.deepEqual(await store.page({ limit: 10, server: 'nope' }), { incidents: [], next: null });
    assert.equal(await store.page({ limit: 2, before: 'a~20261126T153000.123Z-nope' }), undefined);
  });

  it('an incident directory deleted outside the store is dropped by the page that meets it, and by prune', async () => {
    const { store, lines } = await newStore();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.unshift(await addIncident(store, 'a', T + i * 1000));
    const all = await store.list();
    await rm(all[1]?.path as string, { recursive: true });
    const page = await store.page({ limit: 2 });
    assert.deepEqual(page?.incidents.map((e) => e.id), [ids[0], ids[2]]);
    assert.equal(page?.next, ids[2]);
    assert.deepEqual((await store.list()).map((e) => e.id), [ids[0], ids[2], ids[3]]);
    assert.ok(lines.some((l) => l.msg === 'an incident directory was deleted outside the daemon; dropped from the list' && l.path === all[1]?.path));
    // Prune: the oldest is gone already; retention does not fail on it and forgets it.
    await rm(all[3]?.path as string, { recursive: true });
    const res = await store.prune({ ...NONE, maxIncidentsPerServer: 1 }, T);
    assert.deepEqual(res.deleted.map((d) => d.id), [ids[3], ids[2]]);
    assert.deepEqual((await store.list()).map((e) => e.id), [ids[0]]);
    assert.equal(res.incidents, 1);
  });

  it('reads the disk once on first use when init() was not called, and keeps commits made meanwhile', async () => {
    const { store: writer, dir } = await newStore();
    const a = await addIncident(writer, 'a', T);
    const store = new IncidentStore({ dir, log: testLogger().log });
    const w = await store.begin('b', T + 1000, 'manual');
    await w.writeFile('varz.json', '{}');
    const listing = store.list();
    const { id: b } = await w.commit(manifest());
    assert.ok((await listing).some((e) => e.id === a));
    assert.deepEqual((await store.list()).map((e) => e.id), [b, a]);
  });
});
