/**
 * /metrics honours Accept-Encoding: gzip (as Prometheus sends it), and only then; both encodings carry the
 * same samples. Scraped with raw node:http so nothing decompresses behind the test's back.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { Daemon, removeTempDirs, startDaemon, waitFor } from '../helpers/daemon.js';
import { cleanupTempDirs, startServer, type NatsServer } from '../helpers/nats-server.js';
import { promtoolCheck } from '../helpers/promtool.js';

interface Scrape {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function scrape(url: string, headers: Record<string, string>, method = 'GET'): Promise<Scrape> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/metrics`, { method, headers, signal: AbortSignal.timeout(10_000) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (b: Buffer) => chunks.push(b));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Series identity (name and labels) -> value, comments dropped. */
function samples(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), line.slice(sp + 1));
  }
  return out;
}

/**
 * Series whose value moves between two scrapes a moment apart: the process's own figures, the API counter, and
 * the watched server's own CPU and memory (a poll can land between the two scrapes, every 500 ms).
 */
const MOVING = /^nats_autoprof_(process_|nodejs_|api_requests_total|poll_|polls_total|last_poll_success|server_cpu_percent|server_memory_bytes)/;

describe('/metrics with and without Accept-Encoding: gzip', () => {
  let srv: NatsServer;
  let daemon: Daemon;

  before(async () => {
    srv = await startServer({ name: 'gzip-a' });
    daemon = await startDaemon({
      config: `
http:
  listen: 127.0.0.1:{{PORT}}
poll:
  interval: 500ms
  timeout: 400ms
servers:
  - url: ${srv.monitorUrl}
storage:
  dir: {{DIR}}/profiles
`,
    });
    await waitFor(async () => (await daemon.metric('nats_autoprof_up', { server: 'gzip-a' })) === 1, { what: 'up 1' });
  });
  after(async () => {
    await daemon?.stop();
    await srv?.stop();
    cleanupTempDirs();
    removeTempDirs();
  });

  it('answers gzip when asked, identity otherwise, with the same samples and Vary: Accept-Encoding', async () => {
    const plain = await scrape(daemon.url, {});
    const zipped = await scrape(daemon.url, { 'accept-encoding': 'deflate, gzip;q=1.0, *;q=0.5' });
    assert.equal(plain.status, 200);
    assert.equal(zipped.status, 200);
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(zipped.headers['content-encoding'], 'gzip');
    assert.equal(plain.headers['vary'], 'Accept-Encoding');
    assert.equal(zipped.headers['vary'], 'Accept-Encoding');
    assert.equal(plain.headers['content-type'], zipped.headers['content-type']);
    assert.equal(Number(zipped.headers['content-length']), zipped.body.length);
    assert.equal(Number(plain.headers['content-length']), plain.body.length);

    const a = samples(plain.body.toString('utf8'));
    const unzipped = gunzipSync(zipped.body).toString('utf8');
    const b = samples(unzipped);
    assert.ok(zipped.body.length < plain.body.length / 3, `gzip ${zipped.body.length} bytes, identity ${plain.body.length}`);
    assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
    const stable = (m: Map<string, string>): [string, string][] => [...m].filter(([k]) => !MOVING.test(k)).sort();
    assert.ok(stable(a).length > 5);
    assert.deepEqual(stable(b), stable(a));
    assert.equal(b.get('nats_autoprof_up{server="gzip-a"}'), '1');
    assert.deepEqual(await promtoolCheck(unzipped), { code: 0, output: '' });
  });

  it('answers identity when gzip is refused (q=0) or not offered', async () => {
    for (const ae of ['gzip;q=0', 'br', 'identity']) {
      const r = await scrape(daemon.url, { 'accept-encoding': ae });
      assert.equal(r.headers['content-encoding'], undefined, ae);
      assert.match(r.body.toString('utf8'), /^# HELP /, ae);
    }
  });

  it('HEAD gives the headers of the encoding asked for, without a body', async () => {
    const r = await scrape(daemon.url, { 'accept-encoding': 'gzip' }, 'HEAD');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-encoding'], 'gzip');
    assert.equal(r.body.length, 0);
  });
});
