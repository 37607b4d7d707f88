/** The POST bodies, checked with zod: the first problem in documented order, with the API's exact 400 messages. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseWebhook } from '../../../src/api/alertmanager.js';
import { BadRequest, parseCaptureBody } from '../../../src/api/bodies.js';

const PROFILES = 'cpu, allocs, heap, goroutine, block, mutex, threadcreate, allocs_delta';

function refused(f: () => unknown): string {
  try {
    f();
  } catch (err) {
    assert.ok(err instanceof BadRequest, String(err));
    return err.message;
  }
  assert.fail('accepted');
}

describe('capture body', () => {
  it('reads a server, a selection, profiles, cpu_duration and note', () => {
    assert.deepEqual(parseCaptureBody({ server: 'a' }), { server: 'a', select: undefined, profiles: ['cpu', 'allocs'], cpuDurationMs: undefined, note: undefined });
    assert.deepEqual(parseCaptureBody({ select: { names: ['n*'] }, profiles: ['heap'], cpu_duration: '1m30s', note: 'x' }), {
      server: undefined,
      select: { names: ['n*'], clusters: [], tags: [] },
      profiles: ['heap'],
      cpuDurationMs: 90_000,
      note: 'x',
    });
  });

  const cases: [unknown, string][] = [
    [[], 'the body must be a JSON object like {"server": "nats-a", "profiles": ["cpu", "allocs"]}'],
    [null, 'the body must be a JSON object like {"server": "nats-a", "profiles": ["cpu", "allocs"]}'],
    [{ server: 'a', extra: 1, profiles: 'x' }, 'unknown field "extra"; allowed: server, select, profiles, cpu_duration, note'],
    [{ profiles: 'x' }, 'give exactly one of "server" (a server name) or "select" ({names, clusters, tags})'],
    [{ server: 'a', select: {} }, 'give exactly one of "server" (a server name) or "select" ({names, clusters, tags})'],
    [{ server: 'a', profiles: [] }, `"profiles" must be a non-empty list of: ${PROFILES}`],
    [{ server: 'a', profiles: 'cpu' }, `"profiles" must be a non-empty list of: ${PROFILES}`],
    [{ server: 'a', profiles: ['cpu', 'cpu', 'cpuu'] }, 'profile "cpu" is listed twice'],
    [{ server: 'a', profiles: ['cpuu', 'cpu', 'cpu'] }, `unknown profile "cpuu"; use any of: ${PROFILES}`],
    [{ server: 'a', profiles: [[[[1]]]] }, `unknown profile (a list); use any of: ${PROFILES}`],
    [{ server: 'a', cpu_duration: 5 }, '"cpu_duration" must be a duration string like "5s"'],
    [{ server: 'a', cpu_duration: 'soon' }, '"cpu_duration": "soon" is not a duration; use a number with a unit: 250ms, 5s, 10m, 1h, 7d'],
    [{ server: 'a', cpu_duration: '6m' }, '"cpu_duration" must be between 1s and 5m, got 6m'],
    [{ server: 'a', note: 'n'.repeat(1001), cpu_duration: 'soon' }, '"cpu_duration": "soon" is not a duration; use a number with a unit: 250ms, 5s, 10m, 1h, 7d'],
    [{ server: 'a', note: 'n'.repeat(1001) }, '"note" must be a string of at most 1000 characters'],
    [{ server: '' }, '"server" must be a server name'],
    [{ server: 7, note: 1 }, '"note" must be a string of at most 1000 characters'],
    [{ select: [] }, '"select" must be an object like {"names": ["nats-*"], "clusters": ["east"], "tags": ["az:eu-1"]}'],
    [{ select: { name: ['x'] } }, 'select: unknown field "name"; allowed: names, clusters, tags'],
    [{ select: { names: 'x' } }, 'select.names must be a list of strings'],
    [{ select: { names: [], tags: [1] } }, 'select.tags must be a list of strings'],
  ];
  for (const [body, message] of cases) {
    it(`${JSON.stringify(body).slice(0, 80)} -> ${message.slice(0, 60)}`, () => {
      assert.equal(refused(() => parseCaptureBody(body)), message);
    });
  }
});

describe('Alertmanager webhook body', () => {
  it('reads alerts with common labels under their own, and a fingerprint or a hash of the labels', () => {
    const w = parseWebhook({ version: '4', commonLabels: { server_name: 'a', x: '1' }, alerts: [{ status: 'firing', labels: { alertname: 'High', x: '2' }, fingerprint: 'f1' }, { status: 'resolved' }] });
    assert.equal(w.version, '4');
    assert.deepEqual(w.alerts[0], { status: 'firing', name: 'High', fingerprint: 'f1', labels: { server_name: 'a', x: '2', alertname: 'High' }, annotations: {} });
    assert.match(w.alerts[1]?.fingerprint ?? '', /^[0-9a-f]{16}$/);
    assert.deepEqual(parseWebhook(JSON.parse('{"alerts":[{"status":"firing","labels":{"__proto__":"x","a":"b"}}]}')).alerts[0]?.labels, { a: 'b' });
  });

  const cases: [unknown, string][] = [
    [[], 'the body must be a JSON object (an Alertmanager webhook payload)'],
    [{ version: '3', alerts: 'x' }, 'unsupported webhook payload version "3"; expected "4"'],
    [{ version: 4, alerts: [] }, 'unsupported webhook payload version 4; expected "4"'],
    [{ version: [[[]]], alerts: [] }, 'unsupported webhook payload version (a list); expected "4"'],
    [{ alerts: {} }, '"alerts" must be a list'],
    [{ alerts: Array(10_001).fill({ status: 'resolved' }) }, 'too many alerts in one payload (10001, at most 10000)'],
    [{ alerts: [{ status: 'x' }], commonLabels: [] }, 'commonLabels must be an object of strings'],
    [{ alerts: [1] }, 'alerts[0] must be an object'],
    [{ alerts: [{ status: 'firing' }, { status: 'FIRING', labels: 1 }] }, 'alerts[1].status must be "firing" or "resolved"'],
    [{ alerts: [{ status: 'firing', labels: { a: 'b', c: 1 }, fingerprint: 1 }] }, 'alerts[0].labels.c must be a string'],
    [{ alerts: [{ status: 'firing', annotations: { ['k'.repeat(150)]: {} } }] }, `alerts[0].annotations.${'k'.repeat(100)}... must be a string`],
    [{ alerts: [{ status: 'firing', fingerprint: 1 }] }, 'alerts[0].fingerprint must be a string'],
    [JSON.parse('{"alerts":[{"status":"firing","labels":{"__proto__":{"server_name":"fz"}}}]}'), 'alerts[0].labels.__proto__ must be a string'],
  ];
  for (const [body, message] of cases) {
    it(`${JSON.stringify(body).slice(0, 80)} -> ${message.slice(0, 60)}`, () => {
      assert.equal(refused(() => parseWebhook(body)), message);
    });
  }
});
