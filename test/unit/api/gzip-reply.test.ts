import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { GZIP_SYNC_MAX_BYTES, HttpServer, type Route } from '../../../src/api/http-server.js';
import type { HttpAuthConfig } from '../../../src/config/types.js';
import { createLogger } from '../../../src/log.js';

interface Got {
  status: number | undefined;
  encoding: string | undefined;
  vary: string | undefined;
  length: string | undefined;
  transfer: string | undefined;
  body: Buffer;
}

function get(port: number, path: string, gzip: boolean, method = 'GET'): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers: gzip ? { 'accept-encoding': 'gzip' } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (b: Buffer) => chunks.push(b));
      res.on('end', () =>
        resolve({
          status: res.statusCode,
          encoding: res.headers['content-encoding'],
          vary: res.headers['vary'],
          length: res.headers['content-length'],
          transfer: res.headers['transfer-encoding'],
          body: Buffer.concat(chunks),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** An API server on a free loopback port with these routes, open to all. */
async function serve(routes: Route[]): Promise<{ server: HttpServer; port: number }> {
  const server = new HttpServer({
    host: '127.0.0.1',
    port: 0,
    tls: undefined,
    auth: () => ({ metrics: false }) as unknown as HttpAuthConfig,
    log: createLogger('error'),
    routes,
  });
  return { server, port: ((await server.start()) as AddressInfo).port };
}

describe('compressible replies: gzipped on the event loop when small, on the pool when large', () => {
  // Below and above the size at which the reply goes from gzipSync to the thread pool.
  const small = Array.from({ length: 200 }, (_, i) => `m{i="${i}"} ${i}`).join('\n');
  const large = Array.from({ length: 12_000 }, (_, i) => `metric_name{server="s-${i}"} ${i * 1.5}`).join('\n');
  let server: HttpServer;
  let port: number;
  before(async () => {
    assert.ok(small.length < GZIP_SYNC_MAX_BYTES && large.length > 4 * GZIP_SYNC_MAX_BYTES);
    ({ server, port } = await serve([
      { method: 'GET', path: /^\/small$/, name: 'small', access: 'open', handle: async () => ({ status: 200, text: small, contentType: 'text/plain', compressible: true }) },
      { method: 'GET', path: /^\/large$/, name: 'large', access: 'open', handle: async () => ({ status: 200, text: large, contentType: 'text/plain', compressible: true }) },
    ]));
  });
  after(() => server.stop());

  for (const [path, text] of [['/small', () => small], ['/large', () => large]] as const) {
    it(`${path}: the gzipped body inflates to the identity body; identity without the header`, async () => {
      const zipped = await get(port, path, true);
      assert.equal(zipped.encoding, 'gzip');
      assert.equal(zipped.vary, 'Accept-Encoding');
      assert.ok(zipped.body.length < text().length / 3, 'compressed');
      assert.equal(gunzipSync(zipped.body).toString('utf8'), text());
      const plain = await get(port, path, false);
      assert.equal(plain.encoding, undefined);
      assert.equal(plain.vary, 'Accept-Encoding');
      assert.equal(plain.body.toString('utf8'), text());
    });
  }
});

describe('replies in pieces (/metrics): sent on as they come, never held whole', () => {
  const lines = (n: number): string[] => Array.from({ length: n }, (_, i) => `\nmetric_name{server="s-${i}"} ${i * 1.5}`);
  // Pieces of 500 lines, as the exposition writes a metric's series.
  const pieces = (n: number): string[] => {
    const all = lines(n);
    const out: string[] = [];
    for (let i = 0; i < all.length; i += 500) out.push(all.slice(i, i + 500).join(''));
    return out;
  };
  const small = pieces(200);
  const large = pieces(12_000);
  const source = (p: readonly string[], failAt?: number) =>
    async function* (): AsyncGenerator<string> {
      for (let i = 0; i < p.length; i++) {
        if (i === failAt) throw new Error('the source failed');
        yield p[i] as string;
      }
    };
  let server: HttpServer;
  let port: number;
  before(async () => {
    assert.ok(small.join('').length < GZIP_SYNC_MAX_BYTES && large.join('').length > 4 * GZIP_SYNC_MAX_BYTES);
    const route = (name: string, gen: () => AsyncGenerator<string>) => ({
      method: 'GET' as const,
      path: new RegExp(`^/${name}$`),
      name,
      access: 'open' as const,
      handle: async () => ({ status: 200, chunks: gen(), contentType: 'text/plain' }),
    });
    ({ server, port } = await serve([route('small', source(small)), route('large', source(large)), route('broken', source(large, 10))]));
  });
  after(() => server.stop());

  it('small: answered as a text reply (a length, gzip or not)', async () => {
    const zipped = await get(port, '/small', true);
    assert.equal(zipped.encoding, 'gzip');
    assert.equal(gunzipSync(zipped.body).toString('utf8'), small.join(''));
    assert.equal(Number(zipped.length), zipped.body.length);
    const plain = await get(port, '/small', false);
    assert.equal(plain.body.toString('utf8'), small.join(''));
    assert.equal(Number(plain.length), plain.body.length);
  });

  it('large, gzip: one gzip stream with a length, inflating to every piece in order', async () => {
    const zipped = await get(port, '/large', true);
    assert.equal(zipped.encoding, 'gzip');
    assert.equal(zipped.vary, 'Accept-Encoding');
    assert.equal(Number(zipped.length), zipped.body.length);
    assert.ok(zipped.body.length < large.join('').length / 3, 'compressed');
    assert.equal(gunzipSync(zipped.body).toString('utf8'), large.join(''));
  });

  it('large, identity: chunked transfer, every piece in order', async () => {
    const plain = await get(port, '/large', false);
    assert.equal(plain.encoding, undefined);
    assert.equal(plain.length, undefined);
    assert.equal(plain.transfer, 'chunked');
    assert.equal(plain.body.toString('utf8'), large.join(''));
  });

  it('HEAD: the head GET would give, without a body', async () => {
    const get0 = await get(port, '/large', true);
    const head = await get(port, '/large', true, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.encoding, 'gzip');
    assert.equal(head.length, get0.length);
    assert.equal(head.body.length, 0);
    const plain = await get(port, '/large', false, 'HEAD');
    assert.equal(plain.encoding, undefined);
    assert.equal(plain.body.length, 0);
  });

  it('a source that fails midway: no half body passed off as whole', async () => {
    const zipped = await get(port, '/broken', true);
    // gzip: nothing was sent before the failure, so the client gets the daemon's 500, not a partial 200.
    assert.equal(zipped.status, 500);
    assert.deepEqual(JSON.parse(zipped.body.toString('utf8')), { error: 'internal error' });
    const plain = await get(port, '/broken', false).catch((err: Error) => err);
    // identity: the head went out; the connection is cut, so the client sees an error (not a complete answer).
    assert.ok(plain instanceof Error, 'the cut answer is an error on the client');
  });
});
