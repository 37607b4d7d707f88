import * as assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { describeChanges } from '../../../src/capture/incident-capture.js';
import { changesFinder } from '../../../src/insight/changes.js';
import { previousIncident } from '../../../src/insight/previous.js';
import { ProfileWorker } from '../../../src/insight/profile-worker.js';
import { IncidentStore } from '../../../src/store/incident-store.js';
import { parseManifest, type IncidentManifest, type ProfileResult } from '../../../src/store/manifest.js';
import { encodeProfile } from './make-profile.js';
import { testManifest } from '../../helpers/manifest.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), '../../fixtures/profiles');
const T = Date.UTC(2026, 10, 26, 15, 30, 0, 0);
const CPU: [string, string][] = [
  ['samples', 'count'],
  ['cpu', 'nanoseconds'],
];

function manifest(server: string, at: number, profiles: ProfileResult[]): IncidentManifest {
  return testManifest(server, at, { server: { name: server, id: null, cluster: null, version: null, tags: [], url: null }, profiles });
}

function result(name: string, bytes: number): ProfileResult {
  return { name, file: `${name}.pb.gz`, bytes, sha256: null, duration_ms: 1, via: 'prof_port', error: null, top: [], sample_type: null };
}

async function write(store: IncidentStore, server: string, at: number, files: Record<string, Uint8Array>): Promise<string> {
  const w = await store.begin(server, at, 'manual');
  for (const [f, data] of Object.entries(files)) await w.writeFile(f, data);
  const c = await w.commit(manifest(server, at, Object.entries(files).map(([f, data]) => result(f.replace('.pb.gz', ''), data.byteLength))));
  return c.id;
}

describe('capture-time changes against the previous incident', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'autoprof-changes-'));
  const lines: { msg: string; err?: string }[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as { msg: string }) });
  const store = new IncidentStore({ dir, log });
  await store.init();
  const worker = new ProfileWorker();
  after(async () => {
    await worker.close();
    await rm(dir, { recursive: true, force: true });
  });
  const find = changesFinder({ store, worker, maxBytes: 4 * 1024 * 1024, log });

  const before = encodeProfile({ types: CPU, samples: [{ stack: ['main', 'mapassign'], values: [1, 3] }, { stack: ['main', 'work'], values: [1, 97] }] });
  const now = encodeProfile({ types: CPU, samples: [{ stack: ['main', 'mapassign'], values: [1, 41] }, { stack: ['main', 'work'], values: [1, 59] }] });

  it('null for the first incident of a server; the newest earlier one with the profile otherwise', async () => {
    assert.equal(await find('nats-1', 'cpu', now), null);
    const first = await write(store, 'nats-1', T, { 'cpu.pb.gz': before });
    await write(store, 'nats-1', T + 1000, { 'allocs.pb.gz': await readFile(join(fixtures, 'allocs.pb.gz')) });
    await write(store, 'nats-2', T + 2000, { 'cpu.pb.gz': now });
    assert.deepEqual(await find('nats-1', 'cpu', now), [{ function: 'mapassign', before_share: 0.03, after_share: 0.41 }]);
    assert.deepEqual(await find('nats-1', 'cpu', before), []);
    assert.equal(await find('nats-1', 'heap', now), null);
    assert.equal(await previousIncident(store, { server: 'nats-1', profile: 'cpu', before: undefined }), first);
    assert.equal(await previousIncident(store, { server: 'nats-1', profile: 'cpu', before: first }), null);
  });

  it('null, with one warning, when the previous profile cannot be compared (other sample types, not a profile)', async () => {
    await write(store, 'nats-3', T, { 'cpu.pb.gz': await readFile(join(fixtures, 'goroutine.pb.gz')) });
    assert.equal(await find('nats-3', 'cpu', now), null);
    await write(store, 'nats-3', T + 1000, { 'cpu.pb.gz': Buffer.from('not a profile') });
    assert.equal(await find('nats-3', 'cpu', now), null);
    assert.deepEqual(
      lines.filter((l) => l.msg.startsWith('could not compare')).map((l) => l.err),
      ['sample type "cpu" is not in the base profile; it has: goroutine', 'profile is not a pprof protobuf (and not gzip): unsupported wire type 6'],
    );
  });

  it('null within its time bound when the worker does not answer (busy with other work)', async () => {
    const stuck = changesFinder({ store, worker: { growth: () => new Promise(() => undefined) }, maxBytes: 4 * 1024 * 1024, log, timeoutMs: 200 });
    const t = performance.now();
    assert.equal(await stuck('nats-1', 'cpu', now), null);
    assert.ok(performance.now() - t >= 190);
    assert.equal(lines.at(-1)?.err, 'no answer within 200 ms (the profile worker is busy or the profiles are large)');
  });

  it('a previous profile over maxBytes is not decoded', async () => {
    const small = changesFinder({ store, worker, maxBytes: 10, log });
    assert.equal(await small('nats-1', 'cpu', now), null);
  });
});

describe('parseManifest and changes', () => {
  it('a manifest written before `changes` existed reads as changes: null; a list is kept', () => {
    const old = JSON.parse(JSON.stringify(manifest('n', T, [result('cpu', 1)]))) as Record<string, unknown>;
    assert.equal(parseManifest(old)?.profiles[0]?.changes, null);
    const m = manifest('n', T, [{ ...result('cpu', 1), changes: [{ function: 'f', before_share: 0, after_share: 0.5 }] }]);
    assert.deepEqual(parseManifest(JSON.parse(JSON.stringify(m)))?.profiles[0]?.changes, [{ function: 'f', before_share: 0, after_share: 0.5 }]);
  });
});

describe('describeChanges (the capture log line)', () => {
  it('names each profile that grew, its first three changes, rounded percentages', () => {
    const grown = (fs: [string, number, number][]) => fs.map(([f, b, a]) => ({ function: f, before_share: b, after_share: a }));
    const line = describeChanges([
      { ...result('cpu', 1), changes: grown([['runtime.mapassign', 0.03, 0.41], ['a', 0.005, 0.0625], ['b', 0.1, 0.2], ['c', 0, 0.015]]) },
      { ...result('allocs', 1), changes: [] },
      { ...result('heap', 1), changes: null },
      { ...result('goroutine', 1), changes: grown([['runtime.gopark', 0.5, 0.9]]) },
    ]);
    assert.equal(line, 'cpu: runtime.mapassign 3% -> 41%, a 0.5% -> 6.3%, b 10% -> 20%; goroutine: runtime.gopark 50% -> 90%');
    assert.equal(describeChanges([{ ...result('cpu', 1), changes: null }]), '');
  });
});
