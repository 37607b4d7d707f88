import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { GZIP_SYNC_MAX_BYTES, HttpServer } from '../../../src/api/http-server.js';
import type { HttpAuthConfig } from '../../../src/config/types.js';
import { createLogger } from '../../../src/log.js';

function get(port: number, path: string, gzip: boolean): Promise<{ encoding: string | undefined; vary: string | undefined; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: gzip ? { 'accept-encoding': 'gzip' } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (b: Buffer) => chunks.push(b));
      res.on('end', () => resolve({ encoding: res.headers['content-encoding'], vary: res.headers['vary'], body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('compressible replies: gzipped on the event loop when small, on the pool when large', () => {
  // Below and above the size at which the reply goes from gzipSync to the thread pool.
  const small = Array.from({ length: 200 }, (_, i) => `m{i="${i}"} ${i}`).join('\n');
  const large = Array.from({ length: 12_000 }, (_, i) => `metric_name{server="s-${i}"} ${i * 1.5}`).join('\n');
  let server: HttpServer;
  let port: number;
  before(async () => {
    assert.ok(small.length < GZIP_SYNC_MAX_BYTES && large.length > 4 * GZIP_SYNC_MAX_BYTES);
    server = new HttpServer({
      host: '127.0.0.1',
      port: 0,
      tls: undefined,
      auth: () => ({ metrics: false }) as unknown as HttpAuthConfig,
      log: createLogger('error'),
      routes: [
        { method: 'GET', path: /^\/small$/, name: 'small', access: 'open', handle: async () => ({ status: 200, text: small, contentType: 'text/plain', compressible: true }) },
        { method: 'GET', path: /^\/large$/, name: 'large', access: 'open', handle: async () => ({ status: 200, text: large, contentType: 'text/plain', compressible: true }) },
      ],
    });
    port = ((await server.start()) as AddressInfo).port;
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
