/**
 * Hardening: hostile input to the HTTP API. Seeded random bodies (JSON of every type and depth, random and
 * invalid UTF-8 bytes, huge strings, 10k-deep nesting, 1e309, __proto__ keys) to both POST endpoints,
 * oversized bodies, wrong methods on every route, malformed Authorization headers, and path traversal in
 * incident ids and file names, sent raw (node:http, so `..` is not normalised). Nothing may answer 5xx;
 * every 4xx is a JSON {error}; the daemon stays healthy. Set HARDENING_SEED to replay a run.
 */
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { removeTempDirs, startDaemon, tempDir, waitFor, type Daemon } from '../helpers/daemon.js';
import { startFakeMonitor, type FakeMonitor } from '../helpers/fake-monitor.js';
import { startFakePprof, type FakePprof } from '../helpers/fake-pprof.js';
import { incidents, tree } from '../helpers/incidents.js';
import { prng } from '../helpers/prng.js';

const TOKEN = 'fuzz-api-token-7d3a91';
const SEED = Number(process.env['HARDENING_SEED'] || 0x5eed1234);
let monitor: FakeMonitor;
/** A second watched server with a realistic (longer) name, for the glob case. */
let monitor2: FakeMonitor;
let pprof: FakePprof;
let d: Daemon;
/** A complete incident, for the traversal cases. */
let id: string;


interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request exactly as given: raw path, any method, optional body sent with or without content-length. */
function raw(method: string, path: string, o: { headers?: Record<string, string>; body?: Buffer; chunked?: boolean; auth?: boolean; timeoutMs?: number; keepAlive?: boolean } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...(o.auth === false ? {} : { authorization: `Bearer ${TOKEN}` }), ...o.headers };
    if (o.body && !o.chunked) headers['content-length'] = String(o.body.length);
    let answered = false;
    // Without keep-alive the client sends "Connection: close"; then an early answer is followed by a close.
    const agent = o.keepAlive ? new Agent({ keepAlive: true, maxSockets: 1 }) : false;
    const req = request({ host: '127.0.0.1', port: d.port, method, path, headers, agent }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (b: Buffer) => chunks.push(b));
      res.on('end', () => {
        if (agent) agent.destroy();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', reject);
    });
    const timeoutMs = o.timeoutMs ?? 20_000;
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path.slice(0, 80)}: no answer within ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      // An early answer (413 while we still upload) may close the connection under our writes: the answer
      // is what counts. Give it a moment to arrive before calling the request failed.
      if (err.code === 'EPIPE' || err.code === 'ECONNRESET') {
        setTimeout(() => (answered ? undefined : reject(err)), 500);
        return;
      }
      reject(err);
    });
    if (!o.body) {
      req.end();
    } else if (o.chunked) {
      // Transfer-Encoding: chunked, 64 KiB at a time, respecting backpressure.
      const body = o.body;
      let off = 0;
      const pump = (): void => {
        while (off < body.length) {
          const part = body.subarray(off, off + 65_536);
          off += part.length;
          if (!req.write(part)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    } else {
      req.end(o.body);
    }
  });
}

/** The invariant for every answer: never 5xx; every 4xx is a JSON object with a non-empty "error". */
function assertSane(r: Reply, what: string, method = 'GET'): void {
  assert.ok(r.status >= 200 && r.status < 500, `${what}: HTTP ${r.status} ${r.body.slice(0, 300)}`);
  if (r.status >= 400 && method !== 'HEAD') {
    assert.match(String(r.headers['content-type']), /^application\/json/, `${what}: content-type of a ${r.status}`);
    let doc: unknown;
    try {
      doc = JSON.parse(r.body);
    } catch {
      assert.fail(`${what}: ${r.status} body is not JSON: ${r.body.slice(0, 200)}`);
    }
    assert.ok(typeof doc === 'object' && doc !== null && typeof (doc as { error?: unknown }).error === 'string', `${what}: no {error} in ${r.body.slice(0, 200)}`);
    assert.ok((doc as { error: string }).error.length > 0, `${what}: empty error`);
    assert.doesNotMatch(r.body, /\n\s+at .+\(.*:\d+:\d+\)/, `${what}: a stack trace in the answer`);
  }
}

before(async () => {
  monitor = await startFakeMonitor('varz', { name: 'fz-fake' });
  monitor2 = await startFakeMonitor('varz', { name: 'nats-east-prod-0001' });
  pprof = await startFakePprof({ delayMs: 20 });
  const dir = tempDir();
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  d = await startDaemon({
    dir,
    config: `
http:
  listen: "127.0.0.1:{{PORT}}"
  auth: { bearer_token_file: token }
poll: { interval: 500ms, timeout: 400ms }
servers:
  - { name: fz, url: "${monitor.url}", prof_url: "${pprof.url}" }
  - { name: nats-east-prod-0001, url: "${monitor2.url}", prof_url: "${pprof.url}" }
triggers: []
capture: { via: prof_port, limit: { count: 1000, window: 1h } }
storage: { dir: "{{DIR}}/profiles" }
`,
  });
  await waitFor(async () => (await fetch(`${d.url}/readyz`)).status === 200, { what: 'ready' });
  const r = await raw('POST', '/api/v1/captures', { body: Buffer.from(JSON.stringify({ server: 'fz', profiles: ['allocs'] })) });
  assert.equal(r.status, 202, r.body);
  id = (JSON.parse(r.body) as { id: string }).id;
  await waitFor(() => incidents(join(d.dir, 'profiles')).some((i) => i.manifest.id === id), { what: 'the first incident' });
});

after(async () => {
  await d?.stop('SIGKILL');
  await monitor?.close();
  await monitor2?.close();
  await pprof?.close();
  removeTempDirs();
});

const KEYS = [
  'server', 'select', 'profiles', 'cpu_duration', 'note', 'names', 'clusters', 'tags', 'alerts', 'version', 'status', 'labels',
  'annotations', 'fingerprint', 'commonLabels', 'alertname', 'server_name', 'instance', '__proto__', 'constructor', 'prototype',
  'toString', 'hasOwnProperty', 'valueOf', '', ' ', '\u0000', '\ud800', 'é', '🙂',
];

function randomString(rnd: () => number, max: number): string {
  const n = Math.floor(rnd() * max);
  let s = '';
  for (let i = 0; i < n; i++) {
    const k = rnd();
    if (k < 0.6) s += String.fromCharCode(0x20 + Math.floor(rnd() * 95));
    else if (k < 0.75) s += String.fromCharCode(Math.floor(rnd() * 0x20));
    else if (k < 0.85) s += String.fromCharCode(0xd800 + Math.floor(rnd() * 0x800)); // lone surrogates
    else s += String.fromCodePoint(Math.floor(rnd() * 0x10ffff) & ~0x800);
  }
  return s;
}

/** A random JSON text: any type, any depth, with keys and values the handlers look at. */
function randomJson(rnd: () => number, depth: number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const k = rnd();
  if (depth <= 0 || k < 0.3) {
    return pick([
      () => 'null', () => 'true', () => 'false', () => '0', () => '-0', () => '1e309', () => '-1e309', () => '1e-400', () => '123456789012345678901234567890',
      () => String(Math.floor(rnd() * 1e6) - 5e5), () => String(rnd() * 1e300), () => JSON.stringify(randomString(rnd, 40)),
      () => JSON.stringify(pick(['fz', 'cpu', 'allocs', '5s', '0s', '16s', '1h', 'firing', 'resolved', '4', '3', 'fz-fake', 'nats-*', '*', '127.0.0.1'])),
    ])();
  }
  if (k < 0.6) {
    const n = Math.floor(rnd() * 5);
    return `[${Array.from({ length: n }, () => randomJson(rnd, depth - 1)).join(',')}]`;
  }
  const n = Math.floor(rnd() * 6);
  return `{${Array.from({ length: n }, () => `${JSON.stringify(rnd() < 0.8 ? pick(KEYS) : randomString(rnd, 12))}:${randomJson(rnd, depth - 1)}`).join(',')}}`;
}

const TEMPLATES: unknown[] = [
  { server: 'fz', profiles: ['allocs'], cpu_duration: '1s', note: 'fuzz' },
  { select: { names: ['fz', 'nats-*'], clusters: ['east'], tags: ['az:eu-1'] }, profiles: ['goroutine', 'heap'] },
  {
    version: '4',
    status: 'firing',
    receiver: 'nats-autoprof',
    alerts: [
      { status: 'firing', labels: { alertname: 'NatsHighCpu', server_name: 'fz' }, annotations: { summary: 's' }, fingerprint: 'f00d', startsAt: '2026-11-26T15:30:00Z' },
      { status: 'resolved', labels: { alertname: 'NatsHighMem', instance: '127.0.0.1:8222' }, annotations: {}, fingerprint: '' },
    ],
    commonLabels: { alertname: 'NatsHighCpu' },
    groupLabels: {},
    truncatedAlerts: 0,
  },
];

/** A valid-shaped body with one value (or key) replaced by random JSON text: reaches the deeper checks. */
function mutated(rnd: () => number): string {
  const MARK = '\u0000MUTATION\u0000';
  const doc = JSON.parse(JSON.stringify(TEMPLATES[Math.floor(rnd() * TEMPLATES.length)])) as unknown;
  const paths: (string | number)[][] = [];
  const walk = (v: unknown, path: (string | number)[]): void => {
    if (path.length > 0) paths.push(path);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(doc, []);
  const path = paths[Math.floor(rnd() * paths.length)] as (string | number)[];
  let parent = doc as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  const last = path[path.length - 1] as string | number;
  if (rnd() < 0.2 && !Array.isArray(parent)) {
    // Rename the key instead of replacing the value.
    const value = parent[last];
    delete parent[last];
    parent[KEYS[Math.floor(rnd() * KEYS.length)] as string] = value;
    return JSON.stringify(doc);
  }
  parent[last] = MARK;
  return JSON.stringify(doc).replace(JSON.stringify(MARK), randomJson(rnd, 1 + Math.floor(rnd() * 4)));
}

/** ~300 bodies, each sent to both POST endpoints. */
function corpus(seed: number): { label: string; body: Buffer }[] {
  const rnd = prng(seed);
  const out: { label: string; body: Buffer }[] = [];
  const text = (label: string, s: string): void => void out.push({ label, body: Buffer.from(s, 'utf8') });
  for (let i = 0; i < 100; i++) text(`random json #${i}`, randomJson(rnd, 1 + Math.floor(rnd() * 7)));
  for (let i = 0; i < 100; i++) text(`mutated valid body #${i}`, mutated(rnd));
  for (let i = 0; i < 30; i++) {
    const n = 1 + Math.floor(rnd() * 4096);
    const b = Buffer.alloc(n);
    for (let j = 0; j < n; j++) b[j] = Math.floor(rnd() * 256);
    out.push({ label: `random bytes #${i} (${n})`, body: b });
  }
  // Invalid UTF-8 inside otherwise valid JSON strings, and around it.
  const bad = [Buffer.from([0xff, 0xfe]), Buffer.from([0xc0, 0xaf]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xf4, 0x90, 0x80, 0x80]), Buffer.from([0x80])];
  for (const [i, seq] of bad.entries()) {
    out.push({ label: `invalid utf-8 in "server" #${i}`, body: Buffer.concat([Buffer.from('{"server":"fz'), seq, Buffer.from('"}')]) });
    out.push({ label: `invalid utf-8 in a label #${i}`, body: Buffer.concat([Buffer.from('{"alerts":[{"status":"firing","labels":{"server_name":"'), seq, Buffer.from('"}}]}')]) });
    out.push({ label: `invalid utf-8 outside strings #${i}`, body: Buffer.concat([Buffer.from('{"server":'), seq, Buffer.from('}')]) });
  }
  // Shapes chosen to reach deep into the handlers.
  const deepArr = (n: number): string => '['.repeat(n) + ']'.repeat(n);
  const deepObj = (n: number): string => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
  const fixed: [string, string][] = [
    ['empty', ''],
    ['whitespace', ' \n\t '],
    ['BOM then JSON', '\ufeff{"server":"fz"}'],
    ['null', 'null'],
    ['1e309', '1e309'],
    ['cpu_duration 1e309', '{"server":"fz","cpu_duration":1e309}'],
    ['cpu_duration "1e309s"', '{"server":"fz","cpu_duration":"1e309s"}'],
    ['cpu_duration "-5s"', '{"server":"fz","cpu_duration":"-5s"}'],
    ['cpu_duration "9007199254740993ms"', '{"server":"fz","cpu_duration":"9007199254740993ms"}'],
    ['__proto__ as key', '{"__proto__":{"server":"fz","profiles":["allocs"]}}'],
    ['__proto__ next to server', '{"server":"fz","__proto__":{"isAdmin":true}}'],
    ['constructor as server', '{"server":"constructor"}'],
    ['__proto__ as server', '{"server":"__proto__"}'],
    ['toString as server', '{"server":"toString"}'],
    ['duplicate keys', '{"server":"nope","server":"fz","profiles":["allocs"],"profiles":["cpuu"]}'],
    ['deep arrays 10k', deepArr(10_000)],
    ['deep objects 10k', deepObj(10_000)],
    ['deep arrays 400k', deepArr(400_000)],
    ['deep select', `{"select":${deepObj(10_000)}}`],
    // Regression test (this was a bug, now fixed): routes.ts parseProfiles renders the bad entry with JSON.stringify -> RangeError -> 500.
    ['deep profiles', `{"server":"fz","profiles":${deepArr(10_000)}}`],
    ['deep profile entry', `{"server":"fz","profiles":["allocs",${deepObj(10_000)}]}`],
    // Regression test (this was a bug, now fixed): alertmanager.ts parseWebhook renders a bad "version" with JSON.stringify -> RangeError -> 500.
    ['deep version', `{"version":${deepArr(10_000)},"alerts":[]}`],
    ['deep version object', `{"version":${deepObj(10_000)},"alerts":[]}`],
    ['deep alerts', `{"alerts":${deepArr(10_000)}}`],
    ['deep labels', `{"alerts":[{"status":"firing","labels":${deepObj(10_000)}}]}`],
    ['deep annotations', `{"alerts":[{"status":"firing","labels":{"server_name":"nobody"},"annotations":${deepObj(10_000)}}]}`],
    ['labels with __proto__', '{"alerts":[{"status":"firing","labels":{"__proto__":"x","server_name":"nobody"}}]}'],
    ['labels __proto__ object', '{"alerts":[{"status":"firing","labels":{"__proto__":{"server_name":"fz"}}}]}'],
    ['commonLabels __proto__', '{"commonLabels":{"__proto__":{"server_name":"fz"}},"alerts":[{"status":"firing"}]}'],
    ['alert status weird', '{"alerts":[{"status":"FIRING"}]}'],
    ['alerts 10001', `{"alerts":[${Array(10_001).fill('{"status":"resolved"}').join(',')}]}`],
    ['fingerprint number', '{"alerts":[{"status":"firing","fingerprint":1e309}]}'],
    ['version 4 number', '{"version":4,"alerts":[]}'],
    ['huge note', JSON.stringify({ server: 'fz', note: 'n'.repeat(1_000_000) })],
    ['huge server name', JSON.stringify({ server: 's'.repeat(1_000_000) })],
    ['huge profile name', JSON.stringify({ server: 'fz', profiles: ['p'.repeat(1_000_000)] })],
    ['huge alert name', JSON.stringify({ alerts: [{ status: 'firing', labels: { alertname: 'a'.repeat(1_000_000), server_name: 'nobody' } }] })],
    ['huge fingerprint', JSON.stringify({ alerts: [{ status: 'resolved', fingerprint: 'f'.repeat(1_000_000) }] })],
    ['many select names', JSON.stringify({ select: { names: Array(100_000).fill('*') } })],
    ['many tags', JSON.stringify({ select: { tags: Array.from({ length: 50_000 }, (_, i) => `t${i}`) } })],
  ];
  for (const [label, s] of fixed) text(label, s);
  return out;
}

describe('hostile API input', () => {
  it(`~300 seeded random bodies to both POST endpoints never give 5xx (seed ${SEED})`, async () => {
    const bodies = corpus(SEED);
    assert.ok(bodies.length >= 280, `${bodies.length} bodies`);
    const seen = new Map<number, number>();
    for (const [i, { label, body }] of bodies.entries()) {
      // Each body to both endpoints; every third one without content-length (chunked).
      for (const path of ['/api/v1/captures', '/api/v1/alerts/alertmanager']) {
        const r = await raw('POST', path, { body, chunked: i % 3 === 0, headers: { 'content-type': 'application/json' } });
        assertSane(r, `seed ${SEED} body ${i} (${label}) -> ${path}`, 'POST');
        seen.set(r.status, (seen.get(r.status) ?? 0) + 1);
      }
    }
    console.log(`[measure] fuzz seed ${SEED}: ${bodies.length} bodies x 2 endpoints; statuses ${JSON.stringify(Object.fromEntries([...seen].sort()))}`);
    assert.ok((seen.get(400) ?? 0) > 200, 'most random bodies are refused as bad requests');
    assert.ok((seen.get(200) ?? 0) + (seen.get(202) ?? 0) > 5, 'some mutated bodies are still valid and accepted');
  });

  it('answers 413 with JSON for a 2 MiB body, with and without content-length, and stays usable', async () => {
    const big = Buffer.from(JSON.stringify({ server: 'fz', note: 'x'.repeat(2 * 1024 * 1024) }));
    for (const path of ['/api/v1/captures', '/api/v1/alerts/alertmanager']) {
      for (const chunked of [false, true]) {
        // keep-alive, as Alertmanager and curl send it: the daemon answers early and drains the rest.
        const r = await raw('POST', path, { body: big, chunked, keepAlive: true });
        assertSane(r, `2 MiB ${chunked ? 'chunked' : 'with content-length'} -> ${path}`, 'POST');
        assert.equal(r.status, 413, `${path} chunked=${chunked}`);
        assert.match((JSON.parse(r.body) as { error: string }).error, /^request body too large \(/);
      }
    }
    // Just under the cap is read and judged on its content.
    const justUnder = Buffer.from(JSON.stringify({ server: 'fz', note: 'x'.repeat(1024 * 1024 - 40) }));
    assert.ok(justUnder.length <= 1024 * 1024);
    const r = await raw('POST', '/api/v1/captures', { body: justUnder });
    assert.equal(r.status, 400);
    assert.equal((JSON.parse(r.body) as { error: string }).error, '"note" must be a string of at most 1000 characters');
  });

  it('answers 405 with JSON and an Allow header for a wrong method on every route', async () => {
    const getRoutes = ['/metrics', '/healthz', '/readyz', '/api/v1/servers', '/api/v1/triggers', '/api/v1/incidents', `/api/v1/incidents/${id}`, `/api/v1/incidents/${id}/files/incident.json`];
    const postRoutes = ['/api/v1/captures', '/api/v1/alerts/alertmanager'];
    const cases: [string, string, string][] = [
      ...getRoutes.flatMap((p) => ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'].map((m): [string, string, string] => [m, p, 'GET'])),
      ...postRoutes.flatMap((p) => ['GET', 'HEAD', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'].map((m): [string, string, string] => [m, p, 'POST'])),
    ];
    for (const [method, path, allow] of cases) {
      const r = await raw(method, path, method === 'PUT' || method === 'PATCH' ? { body: Buffer.from('{"server":"fz"}') } : {});
      assertSane(r, `${method} ${path}`, method);
      assert.equal(r.status, 405, `${method} ${path}`);
      assert.equal(r.headers['allow'], allow, `${method} ${path}: Allow`);
      if (method !== 'HEAD') assert.equal((JSON.parse(r.body) as { error: string }).error, `method ${method} is not allowed here; use ${allow}`);
    }
    // HEAD on a GET route is a GET without a body.
    const head = await raw('HEAD', '/api/v1/servers');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  });

  it('refuses missing, empty, wrong, Basic and malformed tokens with 401 JSON; accepts the scheme in any case', async () => {
    const root = join(d.dir, 'profiles');
    // Captures accepted during the fuzzing may still be running: count once they are written.
    await waitFor(() => !tree(root).some((p) => p.includes('.tmp-')), { what: 'captures in progress to finish' });
    const before = incidents(root).length;
    const routes: [string, string][] = [
      ['GET', '/api/v1/servers'], ['GET', '/api/v1/triggers'], ['GET', '/api/v1/incidents'], ['GET', `/api/v1/incidents/${id}`],
      ['GET', `/api/v1/incidents/${id}/files/incident.json`], ['POST', '/api/v1/captures'], ['POST', '/api/v1/alerts/alertmanager'],
    ];
    const body = Buffer.from(JSON.stringify({ server: 'fz', profiles: ['allocs'], alerts: [{ status: 'firing', labels: { server_name: 'fz' } }] }));
    const refused: [string, Record<string, string>, string][] = [
      ['none', {}, 'missing "Authorization: Bearer <token>" header'],
      ['empty', { authorization: '' }, 'missing "Authorization: Bearer <token>" header'],
      ['scheme only', { authorization: 'Bearer' }, 'invalid bearer token'],
      ['scheme and space', { authorization: 'Bearer ' }, 'invalid bearer token'],
      ['wrong', { authorization: 'Bearer wrong' }, 'invalid bearer token'],
      ['one char more', { authorization: `Bearer ${TOKEN}x` }, 'invalid bearer token'],
      ['one char less', { authorization: `Bearer ${TOKEN.slice(0, -1)}` }, 'invalid bearer token'],
      ['upper-cased token', { authorization: `Bearer ${TOKEN.toUpperCase()}` }, 'invalid bearer token'],
      ['token twice', { authorization: `Bearer ${TOKEN} ${TOKEN}` }, 'invalid bearer token'],
      ['Basic user:token', { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` }, 'invalid bearer token'],
      ['Basic token', { authorization: `Basic ${TOKEN}` }, 'invalid bearer token'],
      ['no scheme', { authorization: TOKEN }, 'invalid bearer token'],
      ['Token scheme', { authorization: `Token ${TOKEN}` }, 'invalid bearer token'],
      ['Bearer: with colon', { authorization: `Bearer: ${TOKEN}` }, 'invalid bearer token'],
      ['token in another header', { 'x-api-token': TOKEN }, 'missing "Authorization: Bearer <token>" header'],
      ['latin-1 bytes', { authorization: `Bearer ${TOKEN}\u00e9` }, 'invalid bearer token'],
      ['very long', { authorization: `Bearer ${'t'.repeat(8_000)}` }, 'invalid bearer token'],
    ];
    for (const [method, path] of routes) {
      for (const [label, headers, error] of refused) {
        const r = await raw(method, path, { auth: false, headers, ...(method === 'POST' ? { body } : {}) });
        assertSane(r, `${label}: ${method} ${path}`, method);
        assert.equal(r.status, 401, `${label}: ${method} ${path}`);
        assert.equal((JSON.parse(r.body) as { error: string }).error, error, `${label}: ${method} ${path}`);
        assert.equal(r.headers['www-authenticate'], 'Bearer realm="nats-autoprof"');
        assert.ok(!r.body.includes(TOKEN), 'the token is never echoed');
      }
      // RFC 7235: the scheme is case-insensitive.
      for (const scheme of ['bearer', 'BEARER', 'bEaReR']) {
        const r = await raw(method, path, { auth: false, headers: { authorization: `${scheme} ${TOKEN}` }, ...(method === 'POST' ? { body: Buffer.from('[]') } : {}) });
        assertSane(r, `${scheme}: ${method} ${path}`, method);
        assert.equal(r.status, method === 'POST' ? 400 : 200, `${scheme} scheme: ${method} ${path}`);
      }
    }
    // The open endpoints stay open; nothing was captured by the refused requests.
    for (const p of ['/metrics', '/healthz', '/readyz']) assert.equal((await raw('GET', p, { auth: false })).status, 200, p);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(!tree(root).some((p) => p.includes('.tmp-')), 'no capture in progress');
    assert.equal(incidents(root).length, before, 'no capture started without the token');
  });

  it('refuses path traversal in incident ids and file names, raw, encoded, double-encoded, with backslashes and NUL', async () => {
    const inc = `/api/v1/incidents/${id}`;
    const cases: [string, number][] = [
      // ids
      ['/api/v1/incidents/..', 400],
      ['/api/v1/incidents/.', 400],
      ['/api/v1/incidents/../../../../etc/passwd', 404],
      ['/api/v1/incidents/..%2f..%2f..%2fetc%2fpasswd', 400],
      ['/api/v1/incidents/%2e%2e%2f%2e%2e%2fetc%2fpasswd', 400],
      ['/api/v1/incidents/%2E%2E', 400],
      ['/api/v1/incidents/%2e%2e', 400],
      ['/api/v1/incidents/%252e%252e%252f%252e%252e%252fetc%252fpasswd', 404],
      ['/api/v1/incidents/%252e%252e', 404],
      ['/api/v1/incidents/..%5c..%5cetc%5cpasswd', 400],
      ['/api/v1/incidents/..\\..\\etc\\passwd', 400],
      ['/api/v1/incidents/%00', 400],
      [`${inc}%00`, 400],
      [`${inc}%00.json`, 400],
      ['/api/v1/incidents/fz~..', 404],
      ['/api/v1/incidents/..~..', 404],
      ['/api/v1/incidents/fz~%2e%2e', 404],
      ['/api/v1/incidents/%2e%2e~%2e%2e', 404],
      ['/api/v1/incidents/fz~..%2f..%2f..', 400],
      ['/api/v1/incidents/fz%7e..%2fetc', 400],
      ['/api/v1/incidents/.tmp-x~y', 404],
      ['/api/v1/incidents/%ZZ', 400],
      ['/api/v1/incidents/%', 400],
      [`/api/v1/incidents/${'a'.repeat(8_000)}`, 404],
      [`/api/v1/incidents/fz~${'a'.repeat(8_000)}`, 404],
      [`/api/v1/incidents/${'%2e%2e%2f'.repeat(800)}etc`, 400],
      // files
      [`${inc}/files/..`, 400],
      [`${inc}/files/.`, 400],
      [`${inc}/files/%2e%2e`, 400],
      [`${inc}/files/..%2fincident.json`, 400],
      [`${inc}/files/..%2f..%2f..%2f..%2fetc%2fpasswd`, 400],
      [`${inc}/files/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd`, 400],
      [`${inc}/files/%252e%252e%252fincident.json`, 404],
      [`${inc}/files/..%5cincident.json`, 400],
      [`${inc}/files/..\\incident.json`, 400],
      [`${inc}/files/incident.json%00`, 400],
      [`${inc}/files/incident.json%00.pb.gz`, 400],
      [`${inc}/files/%2fetc%2fpasswd`, 400],
      [`${inc}/files/.%2fincident.json`, 400],
      [`${inc}/files//etc/passwd`, 404],
      [`${inc}/files/../../../etc/passwd`, 404],
      [`${inc}/files/incident.json/..`, 404],
      [`${inc}/files/INCIDENT.JSON`, 404],
      [`${inc}/files/.tmp-x`, 404],
      [`${inc}/files/nope.pb.gz`, 404],
      [`${inc}/files/${'f'.repeat(8_000)}`, 404],
      ['/api/v1/incidents/..%2f..%2f/files/passwd', 400],
      ['/api/v1/incidents/fz~..%2f..%2f..%2fetc/files/passwd', 400],
      ['/api/v1/incidents/fz~../files/incident.json', 404],
      // query parameters that name files
      ['/api/v1/incidents?server=..%2F..%2F..%2Fetc', 200],
      ['/api/v1/incidents?server=..', 200],
      ['/api/v1/incidents?before=..%2F..', 400],
      ['/api/v1/incidents?before=fz~..', 400],
      ['/api/v1/incidents?limit=1e309', 400],
      ['/api/v1/incidents?limit=-1', 400],
      ['/api/v1/incidents?limit=', 400],
      // other spellings of the path
      ['//api/v1/incidents', 404],
      ['/api/v1//incidents', 404],
      ['/api/v1/incidents/', 404],
      ['/API/V1/INCIDENTS', 404],
      [`http://127.0.0.1/api/v1/incidents/..`, 404],
      // valid, differently spelled: allowed
      [`${inc}/files/incident.json`, 200],
      [`${inc}/files/%69ncident.json`, 200],
      [`/api/v1/incidents/${id.replace('~', '%7E')}`, 200],
      [`${inc}/files/allocs.pb.gz`, 200],
      [`${inc}/files/varz.json`, 200],
    ];
    for (const [path, status] of cases) {
      const r = await raw('GET', path);
      assertSane(r, `GET ${path.slice(0, 120)}`);
      assert.equal(r.status, status, `GET ${path.slice(0, 120)}: ${r.body.slice(0, 200)}`);
      assert.doesNotMatch(r.body, /root:x:0:0|"bearer_token|nats-autoprof\.yaml/, `GET ${path.slice(0, 120)}: leaked a file`);
    }
  });

  it('is still healthy afterwards: /healthz 200, process alive, no handler failure, no 5xx counted', async () => {
    assert.equal(d.proc.exitCode, null, 'the daemon is still running');
    assert.equal((await raw('GET', '/healthz', { auth: false })).status, 200);
    const servers = await raw('GET', '/api/v1/servers');
    assert.equal(servers.status, 200);
    assert.deepEqual((JSON.parse(servers.body) as { servers: { up: boolean }[] }).servers.map((x) => x.up), [true, true], 'polling went on');
    // A valid capture still works after all that.
    const r = await raw('POST', '/api/v1/captures', { body: Buffer.from('{"server":"fz","profiles":["goroutine"]}') });
    assert.ok(r.status === 202 || r.status === 409, `${r.status} ${r.body}`);
    assert.deepEqual(d.logsWith('HTTP handler failed'), []);
    const text = await d.metrics();
    // /readyz answers 503 by design until every server has been polled once; no other route may 5xx.
    const fiveHundreds = text.split('\n').filter((l) => /^nats_autoprof_api_requests_total\{[^}]*code="5\d\d"\}/.test(l) && !l.includes('route="readyz"'));
    assert.deepEqual(fiveHundreds, []);
    assert.match(text, /nats_autoprof_api_requests_total\{route="captures",code="400"\} [1-9]/);
  });

  // Regression test (this was a bug, now fixed): src/watch/fleet.ts globMatch turns each `*` into `.*` of a backtracking
  // RegExp, so a select name made of many stars (or `*a*a*a…`) takes exponential time against a longer
  // server name and blocks the event loop: no polling, no API, no /healthz. This test failed (timed out)
  // before globMatch became a linear-time matcher. It runs last because a regression would block the daemon.
  it('answers a pathological select glob promptly (no catastrophic backtracking)', async () => {
    for (const names of [['*'.repeat(24) + '!'], ['*a'.repeat(12) + '!'], ['?*'.repeat(12) + '!'], ['*'.repeat(5_000) + 'x']]) {
      const started = Date.now();
      const r = await raw('POST', '/api/v1/captures', { body: Buffer.from(JSON.stringify({ select: { names }, profiles: ['allocs'] })), timeoutMs: 5_000 });
      const ms = Date.now() - started;
      assertSane(r, `select.names ${names[0]?.slice(0, 30)}…`, 'POST');
      assert.equal(r.status, 404, r.body);
      assert.equal((JSON.parse(r.body) as { error: string }).error, 'no watched server matches "select"');
      assert.ok(ms < 2_000, `select.names ${names[0]?.slice(0, 30)}… took ${ms} ms`);
    }
    const h = await raw('GET', '/healthz', { auth: false, timeoutMs: 2_000 });
    assert.equal(h.status, 200);
  });
});
