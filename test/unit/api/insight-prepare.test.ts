/**
 * A new incident's page answers are built right after it is written (InsightAnswers.prepare), in the real
 * profile worker thread on recorded profiles: the page's first requests are then answered from the cache,
 * with the same JSON the routes compute themselves; profiles too large, missing or unreadable are skipped.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { InsightAnswers, PAGE_TOP_LIMIT } from '../../../src/api/insight-routes.js';
import type { Route } from '../../../src/api/http-server.js';
import { ProfileWorker } from '../../../src/insight/profile-worker.js';
import type { IncidentManifest } from '../../../src/store/manifest.js';

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'profiles');
const ID = 'prep-a~20261203T221000.000Z_trigger';
const worker = new ProfileWorker();
after(() => worker.close());

const profile = (name: string, file: string | null, bytes: number) => ({ name, file, bytes });
const manifest = (profiles: { name: string; file: string | null; bytes: number }[]): IncidentManifest =>
  // Only what the viewer reads: the id and the profiles' names, files and sizes.
  ({ id: ID, server: { name: 'prep-a' }, profiles }) as unknown as IncidentManifest;

function setup(m: IncidentManifest, prepareMaxBytes?: number): { answers: InsightAnswers; calls: string[] } {
  const calls: string[] = [];
  const answers = new InsightAnswers({
    store: {
      read: async (id) => (id === m.id ? m : undefined),
      resolveFile: async (id, file) => (id === m.id && file !== 'gone.pb.gz' ? join(FIXTURES, file) : undefined),
      page: async () => ({ incidents: [], next: null }) as never,
    },
    profiles: {
      flamegraph: (input, o) => (calls.push(`flamegraph ${o.head.profile}`), worker.flamegraph(input, o)),
      top: (input, o) => (calls.push(`top ${o.head.profile} ${o.limit}`), worker.top(input, o)),
      compare: () => Promise.reject(new Error('not used')),
    },
    prepareMaxBytes,
  });
  return { answers, calls };
}

async function ask(routes: Route[], name: string, profileName: string, query = ''): Promise<string> {
  const route = routes.find((r) => r.name === name) as Route;
  const reply = await route.handle({ params: [ID, profileName], query: new URLSearchParams(query), body: async () => undefined });
  assert.equal(reply.status, 200);
  return (reply as { text: string }).text;
}

describe('InsightAnswers.prepare', () => {
  it("builds each profile's flame graph and the page's top table once; the page's requests are cache hits with the same answer", async () => {
    const m = manifest([profile('cpu', 'cpu.pb.gz', statSync(join(FIXTURES, 'cpu.pb.gz')).size), profile('heap', 'heap.pb.gz', statSync(join(FIXTURES, 'heap.pb.gz')).size)]);
    const { answers, calls } = setup(m);
    assert.equal(await answers.prepare(m), 2);
    assert.deepEqual(calls, ['flamegraph cpu', `top cpu ${PAGE_TOP_LIMIT}`, 'flamegraph heap', `top heap ${PAGE_TOP_LIMIT}`]);
    const routes = answers.routes();
    const flame = await ask(routes, 'incident_flamegraph', 'cpu');
    const top = await ask(routes, 'incident_top', 'cpu', `limit=${PAGE_TOP_LIMIT}`);
    assert.equal(calls.length, 4, 'the page asked nothing of the worker');
    assert.equal(answers.cache.hits, 2);

    // The same JSON as the routes build without preparing.
    const fresh = setup(m);
    assert.equal(await ask(fresh.answers.routes(), 'incident_flamegraph', 'cpu'), flame);
    assert.equal(await ask(fresh.answers.routes(), 'incident_top', 'cpu', `limit=${PAGE_TOP_LIMIT}`), top);
    assert.equal(JSON.parse(flame).incident, ID);

    // Anything else the page may ask (another sample type) is computed then.
    await ask(routes, 'incident_flamegraph', 'heap', 'sample_type=alloc_space');
    assert.equal(calls.length, 5);
  });

  it('skips a failed profile, one larger than prepareMaxBytes, a file that is gone, and one that is not a profile, without throwing', async () => {
    const m = manifest([
      profile('cpu', null, 0),
      profile('heap', 'heap.pb.gz', statSync(join(FIXTURES, 'heap.pb.gz')).size),
      profile('goroutine', 'gone.pb.gz', 10),
      profile('block', 'README.md', 10),
      profile('allocs', 'allocs.pb.gz', 10),
    ]);
    const { answers, calls } = setup(m, 1_000);
    assert.equal(await answers.prepare(m), 1);
    assert.deepEqual(calls, ['flamegraph block', 'flamegraph allocs', `top allocs ${PAGE_TOP_LIMIT}`]);
    assert.equal(answers.cache.size, 2, 'failures are not cached');
  });
});
