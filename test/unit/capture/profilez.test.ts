import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { CaptureError } from '../../../src/errors.js';
import { parseProfilezReply, profilezRequest, profilezSubject } from '../../../src/capture/profilez.js';
import { choosePath, profilezSupports, versionAtLeast } from '../../../src/capture/paths.js';
import { isLoopbackUrl, pprofPath } from '../../../src/capture/http-pprof.js';

const ctx = { server: 'n1', profile: 'cpu' };
const enc = (o: unknown): Uint8Array => new TextEncoder().encode(typeof o === 'string' ? o : JSON.stringify(o));

describe('PROFILEZ request', () => {
  it('targets one server by id', () => assert.equal(profilezSubject('NABC'), '$SYS.REQ.SERVER.NABC.PROFILEZ'));
  it('sends cpu duration as integer nanoseconds', () =>
    assert.deepEqual(JSON.parse(profilezRequest('cpu', 2_000)), { name: 'cpu', debug: 0, duration: 2_000_000_000 }));
  it('sends no duration for other profiles', () => assert.deepEqual(JSON.parse(profilezRequest('allocs', 5_000)), { name: 'allocs', debug: 0 }));
});

describe('PROFILEZ reply', () => {
  const gz = gzipSync(Buffer.from('profile bytes'));
  it('returns the bytes exactly as the server wrote them', () => {
    const out = parseProfilezReply(enc({ server: { name: 'n1' }, data: { profile: gz.toString('base64'), error: '' } }), ctx);
    assert.deepEqual(Buffer.from(out), gz);
  });
  const bad: [string, unknown, string, CaptureError['kind']][] = [
    ['not JSON', 'garbage{', 'PROFILEZ reply is not JSON (8 bytes)', 'invalid_reply'],
    ['no data', { server: {} }, 'PROFILEZ reply has no "data" object', 'invalid_reply'],
    ['top-level error', { error: { code: 400, description: 'bad request' } }, 'server refused the request: bad request (code 400)', 'server'],
    ['busy profiler', { data: { profile: null, error: 'Failed to start CPU profile: cpu profiling already in use' } }, 'server could not profile: Failed to start CPU profile: cpu profiling already in use', 'busy'],
    ['unknown profile', { data: { profile: null, error: 'Profile "x" not found' } }, 'server could not profile: Profile "x" not found', 'server'],
    ['null profile', { data: { profile: null, error: '' } }, 'PROFILEZ reply has no profile', 'invalid_reply'],
    ['not base64', { data: { profile: '!!!not base64!!!', error: '' } }, 'PROFILEZ "profile" is not base64', 'invalid_reply'],
    ['not gzip', { data: { profile: Buffer.from('plain text').toString('base64'), error: '' } }, 'PROFILEZ profile is not gzip-compressed protobuf (debug must be 0)', 'invalid_reply'],
  ];
  for (const [name, reply, message, kind] of bad) {
    it(`refuses ${name}`, () => {
      assert.throws(() => parseProfilezReply(enc(reply), ctx), (err: unknown) => {
        assert.ok(err instanceof CaptureError);
        assert.equal(err.message, message);
        assert.equal(err.kind, kind);
        assert.equal(err.retryable, kind === 'busy');
        return true;
      });
    });
  }
});

describe('capture paths', () => {
  it('compares versions', () => {
    assert.equal(versionAtLeast('2.10.19', [2, 10, 19]), true);
    assert.equal(versionAtLeast('2.10.18', [2, 10, 19]), false);
    assert.equal(versionAtLeast('v2.11.0-RC.1', [2, 10, 19]), true);
    assert.equal(versionAtLeast('garbage', [2, 0, 0]), false);
  });
  it('knows which versions give which profile over PROFILEZ', () => {
    assert.equal(profilezSupports('cpu', '2.10.18'), false);
    assert.equal(profilezSupports('allocs', '2.10.18'), true);
    assert.equal(profilezSupports('allocs', '2.9.25'), false);
  });
  const t = { serverId: 'NABC', version: '2.10.27', profUrl: 'http://127.0.0.1:65432' };
  it('auto prefers the system account', () => assert.deepEqual(choosePath('cpu', t, 'auto', 'up'), { ok: true, via: 'system_account' }));
  it('auto falls back to prof_port for an old server', () =>
    assert.deepEqual(choosePath('cpu', { ...t, version: '2.10.10' }, 'auto', 'up'), { ok: true, via: 'prof_port' }));
  it('auto uses prof_port without a system account', () => assert.deepEqual(choosePath('allocs', t, 'auto', 'none'), { ok: true, via: 'prof_port' }));
  it('auto with neither path says why', () =>
    assert.deepEqual(choosePath('cpu', { ...t, profUrl: undefined }, 'auto', 'none'), {
      ok: false,
      why: 'no system_account is configured, and the server has no prof_url',
    }));
  it('system_account refuses an old server', () =>
    assert.deepEqual(choosePath('cpu', { ...t, version: '2.10.18' }, 'system_account', 'up'), {
      ok: false,
      why: 'server version 2.10.18 cannot give "cpu" through PROFILEZ (needs 2.10.19 or newer)',
    }));
  it('auto uses prof_port while the system account is down', () =>
    assert.deepEqual(choosePath('cpu', t, 'auto', 'down'), { ok: true, via: 'prof_port' }));
  it('auto still tries the system account while it is down when there is no prof_url', () =>
    assert.deepEqual(choosePath('cpu', { ...t, profUrl: undefined }, 'auto', 'down'), { ok: true, via: 'system_account' }));
  it('prof_port needs a prof_url', () =>
    assert.deepEqual(choosePath('cpu', { ...t, profUrl: undefined }, 'prof_port', 'up'), { ok: false, why: 'the server has no prof_url' }));
});

describe('prof_port', () => {
  it('always sends an explicit number of seconds', () => {
    assert.equal(pprofPath('cpu', 5_000), '/debug/pprof/profile?seconds=5');
    assert.equal(pprofPath('cpu', 200), '/debug/pprof/profile?seconds=1');
    assert.equal(pprofPath('allocs', 5_000), '/debug/pprof/allocs');
  });
  it('knows loopback URLs', () => {
    for (const u of ['http://127.0.0.1:65432', 'http://localhost:1', 'http://[::1]:8080', 'http://127.9.9.9']) assert.equal(isLoopbackUrl(u), true, u);
    for (const u of ['http://10.0.0.1:65432', 'http://nats-a:65432', 'http://0.0.0.0:1', 'not a url']) assert.equal(isLoopbackUrl(u), false, u);
  });
});
