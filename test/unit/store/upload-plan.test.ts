import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { RetentionPolicy } from '../../../src/store/retention.js';
import {
  completeIncidents,
  objectName,
  parseObjectName,
  pendingUploads,
  planBucketRetention,
  retryDelayMs,
  uploadOrder,
  type BucketObject,
} from '../../../src/store/upload-plan.js';

const A = 'nats-1~20261204T020000.000Z-manual';
const B = 'nats-1~20261204T030000.000Z-high-cpu';
const C = 'nats-2~20261204T040000.000Z-alert';
const H = 3_600_000;
const T0 = Date.UTC(2026, 11, 4, 2, 0, 0, 0);

function objects(id: string, files: Record<string, number>): BucketObject[] {
  return Object.entries(files).map(([f, size]) => ({ name: objectName(id, f), size }));
}

const LOOSE: RetentionPolicy = { maxIncidentsPerServer: 100, maxTotalSizeBytes: 1e12, maxAgeMs: 1e12 };

describe('upload plan: object names', () => {
  it('an object name parses back to its incident id and file', () => {
    assert.equal(objectName(A, 'cpu.pb.gz'), `${A}/cpu.pb.gz`);
    assert.deepEqual(parseObjectName(objectName(A, 'cpu.pb.gz')), { id: A, file: 'cpu.pb.gz' });
  });

  it('foreign objects are not taken for incident files', () => {
    for (const name of ['cpu.pb.gz', `/${A}`, `${A}/`, `${A}/x/y`, 'not-an-id/cpu.pb.gz', '']) assert.equal(parseObjectName(name), undefined, name);
  });
});

describe('upload plan: order and waiting', () => {
  it('incident.json goes last, once, after the other files in name order', () => {
    assert.deepEqual(uploadOrder(['varz.json', 'incident.json', 'cpu.pb.gz', 'cpu.pb.gz']), ['cpu.pb.gz', 'varz.json', 'incident.json']);
    assert.deepEqual(uploadOrder([]), ['incident.json']);
  });

  it('pending uploads: those without a marker, oldest first (ties by id)', () => {
    const local = [
      { id: C, startedAtMs: T0 + 2 * H },
      { id: B, startedAtMs: T0 + H },
      { id: A, startedAtMs: T0 },
      { id: 'nats-0~20261204T020000.000Z-manual', startedAtMs: T0 },
    ];
    assert.deepEqual(pendingUploads(local, new Set([B])), ['nats-0~20261204T020000.000Z-manual', A, C]);
    assert.deepEqual(pendingUploads(local, new Set([A, B, C, 'nats-0~20261204T020000.000Z-manual'])), []);
  });

  it('retry delay: 1 s doubling, capped', () => {
    assert.deepEqual([1, 2, 3, 4, 7].map((a) => retryDelayMs(a)), [1_000, 2_000, 4_000, 8_000, 60_000]);
    assert.equal(retryDelayMs(1_000), 60_000);
    assert.equal(retryDelayMs(3, 3_000), 3_000);
    assert.equal(retryDelayMs(0), 1_000);
  });
});

describe('upload plan: what a listing holds', () => {
  it('only incidents whose manifest object exists are complete; foreign objects are ignored', () => {
    const listing = [
      ...objects(A, { 'cpu.pb.gz': 100, 'incident.json': 10 }),
      // B's upload is in progress (or was interrupted): its manifest is not there yet.
      ...objects(B, { 'cpu.pb.gz': 50, 'varz.json': 5 }),
      { name: 'something-else', size: 1 },
    ];
    const complete = completeIncidents(listing);
    assert.equal(complete.length, 1);
    assert.deepEqual(complete[0], { id: A, serverDir: 'nats-1', startedAtMs: T0, bytes: 110, objects: [`${A}/cpu.pb.gz`, `${A}/incident.json`] });
  });

  it('retention over the bucket: the policy of the disk, each deleted incident\'s manifest first', () => {
    const listing = [
      ...objects(A, { 'incident.json': 10, 'cpu.pb.gz': 100, 'varz.json': 5 }),
      ...objects(B, { 'incident.json': 10, 'cpu.pb.gz': 100 }),
      ...objects(C, { 'incident.json': 10 }),
    ];
    // Count: one per server keeps the newest of nats-1 (B) and C.
    const byCount = planBucketRetention(listing, { ...LOOSE, maxIncidentsPerServer: 1 }, T0 + 3 * H);
    assert.deepEqual(byCount.plan.delete, [{ id: A, reason: 'count' }]);
    assert.deepEqual(byCount.deleteObjects, [`${A}/incident.json`, `${A}/cpu.pb.gz`, `${A}/varz.json`]);
    // Age: older than 1.5 h at T0 + 3 h: A and B.
    const byAge = planBucketRetention(listing, { ...LOOSE, maxAgeMs: 1.5 * H }, T0 + 3 * H);
    assert.deepEqual(byAge.plan.delete.map((d) => [d.id, d.reason]).sort(), [[A, 'age'], [B, 'age']].sort());
    assert.equal(byAge.deleteObjects.filter((n) => n.endsWith('/incident.json')).length, 2);
    for (const id of [A, B]) assert.ok(byAge.deleteObjects.indexOf(`${id}/incident.json`) < byAge.deleteObjects.indexOf(`${id}/cpu.pb.gz`));
    // Size: 245 bytes in all; at most 130 keeps the newest that fit (C 10 + B 110).
    const bySize = planBucketRetention(listing, { ...LOOSE, maxTotalSizeBytes: 130 }, T0 + 3 * H);
    assert.deepEqual(bySize.plan.delete, [{ id: A, reason: 'size' }]);
    // Nothing to do.
    assert.deepEqual(planBucketRetention(listing, LOOSE, T0 + 3 * H).deleteObjects, []);
  });

  it('an incomplete upload is neither listed nor deleted by retention (its uploader finishes it)', () => {
    const listing = [...objects(A, { 'cpu.pb.gz': 100 }), ...objects(B, { 'incident.json': 10 })];
    const r = planBucketRetention(listing, { ...LOOSE, maxAgeMs: 1 }, T0 + 10 * H);
    assert.deepEqual(r.deleteObjects, [`${B}/incident.json`]);
  });
});
