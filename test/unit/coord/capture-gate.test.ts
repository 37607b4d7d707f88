/**
 * The capturer's gate hook (what coordination plugs into): a refusal after admission writes nothing, is
 * counted with the gate's reason (held_elsewhere), gives back the local limit slot and forgets the recent
 * incident; an accepted incident releases the gate when it is over, also when it failed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';

import { Capturer, type GateAnswer } from '../../../src/capture/capturer.js';
import type { CaptureRequest } from '../../../src/capture/request.js';
import { systemClock } from '../../../src/clock.js';
import { ProfileWorker } from '../../../src/insight/profile-worker.js';
import { Metrics } from '../../../src/metrics/registry.js';
import { IncidentStore } from '../../../src/store/incident-store.js';

const PROFILE = readFileSync(join(import.meta.dirname, '..', '..', 'fixtures', 'profiles', 'allocs.pb.gz'));
const dirs: string[] = [];
const worker = new ProfileWorker();
after(async () => {
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
  await worker.close();
});

function setup(answers: GateAnswer[]) {
  const dir = mkdtempSync(join(tmpdir(), 'gate-'));
  dirs.push(dir);
  const log = pino({ level: 'silent' });
  const metrics = new Metrics();
  const store = new IncidentStore({ dir, log, clock: systemClock });
  const events: string[] = [];
  const capturer = new Capturer({
    config: { via: 'prof_port', cpuDurationMs: 1_000, timeoutMs: 2_000, allocsWindowMs: 10_000, maxConcurrent: 2, limit: { count: 1, windowMs: 3_600_000 }, maxProfileBytes: 1 << 20 },
    retention: { maxIncidentsPerServer: 100, maxTotalSizeBytes: 1e12, maxAgeMs: 1e12 },
    store,
    systemAccount: undefined,
    pprof: {
      open: async () => {
        events.push('profile');
        return (async function* () {
          yield new Uint8Array(PROFILE);
        })();
      },
    },
    metrics,
    log,
    clock: systemClock,
    summarize: (input) => worker.summarize(input, 10),
    gate: {
      acquire: async (req) => {
        events.push(`acquire ${req.target.label}`);
        const a = answers.shift() as GateAnswer;
        return a.ok ? { ok: true, release: () => (events.push('release'), a.release()) } : a;
      },
    },
  });
  return { dir, store, metrics, capturer, events };
}

const req: CaptureRequest = {
  target: { key: 'http://a:8222', label: 'a', serverId: 'NA', version: '2.10.27', cluster: undefined, tags: [], url: 'http://a:8222', profUrl: 'http://127.0.0.1:1', snapshot: undefined },
  reason: 'manual',
  profiles: ['allocs'],
  cpuDurationMs: 1_000,
};

describe('the capture gate', () => {
  it('refused (held_elsewhere): nothing written, counted, the limit slot and the recent incident given back', async () => {
    const t = setup([{ ok: false, reason: 'held_elsewhere', message: 'a is being captured by replica r2' }, { ok: true, release: () => undefined }]);
    await t.store.init();
    const r = t.capturer.submit(req);
    assert.ok(r.accepted);
    const res = await r.done;
    assert.deepEqual(res.skipped, { reason: 'held_elsewhere', message: 'a is being captured by replica r2' });
    assert.equal(res.path, undefined);
    assert.deepEqual(t.events, ['acquire a']);
    assert.deepEqual(readdirSync(t.dir).filter((f) => !f.startsWith('.')), []);
    const skipped = (await t.metrics.capturesSkipped.get()).values.find((v) => v.labels['reason'] === 'held_elsewhere');
    assert.equal(skipped?.value, 1);
    assert.equal(t.capturer.recentIncident(req.target.key), undefined);
    // limit.count is 1: the refused incident did not use it up.
    assert.equal(t.capturer.remaining(), 1);
    const second = t.capturer.submit(req);
    assert.ok(second.accepted);
    const done = await second.done;
    assert.equal(done.manifest.status, 'ok');
    assert.deepEqual(t.events, ['acquire a', 'acquire a', 'profile', 'release']);
  });
});
