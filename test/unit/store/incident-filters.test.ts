/**
 * Filtered pages of the incident store (GET /api/v1/incidents?reason=&trigger=&status=&profile=): many
 * incidents across many pages, every filter alone and combined, checked against the same filter applied to
 * what was written; full pages while enough match, and `next` null exactly on the last page. The filters
 * read the index: they still work after the manifests are gone from disk.
 */
import * as assert from 'node:assert/strict';
import { mkdtemp, rm, unlink, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { IncidentStore, type IncidentFilter } from '../../../src/store/incident-store.js';
import type { IncidentManifest, IncidentReason, ProfileResult } from '../../../src/store/manifest.js';
import { prng } from '../../helpers/prng.js';

const T = Date.UTC(2026, 10, 26, 15, 30, 0, 0);
const REASONS: IncidentReason[] = ['trigger', 'manual', 'alert'];
const STATUSES: IncidentManifest['status'][] = ['ok', 'partial', 'failed'];
const RULES = ['high-cpu', 'high-mem', 'slow-consumers'];
const PROFILES = ['cpu', 'allocs', 'heap', 'goroutine'];

interface Written {
  id: string;
  server: string;
  reason: IncidentReason;
  status: IncidentManifest['status'];
  triggers: string[];
  /** Profiles with a file. */
  profiles: string[];
}

function profileResult(name: string, ok: boolean): ProfileResult {
  return { name, file: ok ? `${name}.pb.gz` : null, bytes: ok ? 3 : 0, sha256: null, duration_ms: 1, via: 'prof_port', error: ok ? null : 'timeout', top: [], sample_type: null };
}

let base: string;
let store: IncidentStore;
const written: Written[] = [];

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'autoprof-filters-'));
  store = new IncidentStore({ dir: base, log: pino({ level: 'silent' }) });
  await store.init();
  const rand = prng(14);
  for (let i = 0; i < 150; i++) {
    const server = `nats-${i % 3}`;
    const reason = REASONS[Math.floor(rand() * 3)] as IncidentReason;
    const status = STATUSES[Math.floor(rand() * 3)] as IncidentManifest['status'];
    const triggers = reason === 'trigger' ? RULES.filter(() => rand() < 0.5) : [];
    if (reason === 'trigger' && triggers.length === 0) triggers.push(RULES[i % 3] as string);
    const asked = PROFILES.filter(() => rand() < 0.5);
    const results = asked.map((p) => profileResult(p, status !== 'failed' && rand() < 0.8));
    // Some start in the same millisecond: the order falls back to the id.
    const startedAt = T + Math.floor(i / 2) * 1000;
    const w = await store.begin(server, startedAt, triggers[0] ?? reason);
    for (const r of results) if (r.file !== null) await w.writeFile(r.file, 'pb!');
    const trig = (name: string) => ({ name, metric: 'cpu', value: 90, above: 80, for_ms: 0 });
    const { id } = await w.commit({
      version: 1,
      id: 'placeholder',
      server: { name: server, id: null, cluster: null, version: '2.10.27', tags: [], url: null },
      reason,
      trigger: triggers[0] === undefined ? null : trig(triggers[0]),
      triggers: triggers.map(trig),
      alert: reason === 'alert' ? { name: 'NatsHot', fingerprint: `f${i}`, labels: {}, annotations: {} } : null,
      note: null,
      via: 'prof_port',
      started_at: new Date(startedAt).toISOString(),
      finished_at: new Date(startedAt + 500).toISOString(),
      status,
      profiles: results,
      files: [],
    });
    written.push({ id, server, reason, status, triggers, profiles: results.filter((r) => r.file !== null).map((r) => r.name) });
  }
});

after(async () => {
  await rm(base, { recursive: true, force: true });
});

/** `written` in the store's order, newest first (set by the first test, from list()). */
let ordered: Written[] = [];

/** What a filter must list, newest first, from what was written. */
function expected(f: IncidentFilter): string[] {
  return ordered
    .filter(
      (w) =>
        (f.server === undefined || w.server === f.server) &&
        (f.reason === undefined || w.reason === f.reason) &&
        (f.status === undefined || w.status === f.status) &&
        (f.trigger === undefined || w.triggers.includes(f.trigger)) &&
        (f.profile === undefined || w.profiles.includes(f.profile)),
    )
    .map((w) => w.id);
}

/** Every page of a filter, following `next`; checks that each page but the last is full. */
async function pages(f: IncidentFilter, limit: number): Promise<string[]> {
  const ids: string[] = [];
  let before: string | undefined;
  for (let n = 0; n < 1000; n++) {
    const page = await store.page({ ...f, limit, ...(before !== undefined ? { before } : {}) });
    assert.ok(page, `page after ${before} is missing`);
    ids.push(...page.incidents.map((e) => e.id));
    if (page.next === null) return ids;
    assert.equal(page.incidents.length, limit, `a page with a next page is full (filter ${JSON.stringify(f)})`);
    assert.equal(page.next, page.incidents.at(-1)?.id);
    before = page.next;
  }
  throw new Error('paging did not end');
}

describe('incident store filters', () => {
  it('an unfiltered list is every incident newest first, each with its profiles', async () => {
    const list = await store.list();
    assert.equal(list.length, 150);
    const byId = new Map(written.map((w) => [w.id, w]));
    ordered = list.map((e) => byId.get(e.id) as Written);
    assert.ok(ordered.every((w) => w !== undefined));
    // Newest first: by start time, then by id.
    assert.ok(list.every((e, i) => i === 0 || (list[i - 1]?.startedAtMs ?? 0) >= e.startedAtMs));
    for (const e of list) assert.deepEqual(e.summary?.profiles, byId.get(e.id)?.profiles);
    assert.deepEqual(await pages({}, 11), expected({}));
  });

  const filters: IncidentFilter[] = [
    ...REASONS.map((reason) => ({ reason })),
    ...STATUSES.map((status) => ({ status })),
    ...RULES.map((trigger) => ({ trigger })),
    ...PROFILES.map((profile) => ({ profile })),
    { trigger: 'no-such-rule' },
    { server: 'nats-1', reason: 'trigger' },
    { reason: 'trigger', trigger: 'high-mem', status: 'ok' },
    { server: 'nats-2', profile: 'cpu', status: 'partial' },
    { reason: 'manual', trigger: 'high-cpu' },
  ];
  for (const f of filters) {
    it(`pages of ${JSON.stringify(f)} are full, continue with next, and end exactly`, async () => {
      const want = expected(f);
      if (!('trigger' in f && f.trigger === 'no-such-rule') && !(f.reason === 'manual' && f.trigger !== undefined)) {
        assert.ok(want.length >= 5, `the corpus has too few matches for ${JSON.stringify(f)} to test paging (${want.length})`);
      } else {
        assert.equal(want.length, 0);
      }
      for (const limit of [1, 4, 50]) assert.deepEqual(await pages(f, limit), want, `limit ${limit}`);
    });
  }

  it('a "before" that does not pass the filter still places the page', async () => {
    const all = expected({});
    const ok = new Set(expected({ status: 'ok' }));
    const i = all.findIndex((id, k) => k > 10 && !ok.has(id));
    const page = await store.page({ status: 'ok', before: all[i] as string, limit: 3 });
    assert.deepEqual(page?.incidents.map((e) => e.id), all.slice(i + 1).filter((id) => ok.has(id)).slice(0, 3));
  });

  it('filters read the index, not the manifests: they still work with every incident.json gone', async () => {
    const want = expected({ profile: 'heap', reason: 'alert' });
    for (const e of await store.list()) await unlink(join(e.path, 'incident.json'));
    assert.deepEqual(await pages({ profile: 'heap', reason: 'alert' }, 3), want);
  });

  it('an incident without a readable manifest is listed unfiltered and matches no filter', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'autoprof-filters-bad-'));
    try {
      await mkdir(join(dir, 'nats-x', '20261126T160000.000Z-manual'), { recursive: true });
      await writeFile(join(dir, 'nats-x', '20261126T160000.000Z-manual', 'incident.json'), '{"not": "a manifest"}');
      const s = new IncidentStore({ dir, log: pino({ level: 'silent' }) });
      await s.init();
      assert.equal((await s.page({ limit: 10 }))?.incidents.length, 1);
      assert.deepEqual(await s.page({ limit: 10, status: 'ok' }), { incidents: [], next: null });
      assert.deepEqual(await s.page({ limit: 10, reason: 'manual' }), { incidents: [], next: null });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
