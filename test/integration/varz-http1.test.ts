/**
 * The poller's own HTTP/1.1 client (src/watch/http1.ts) against a real nats-server whose varz is over 2 KB:
 * Go's net/http then frames it chunked (checked on the wire here), and the client must read it, keep one
 * connection for every poll, and come back after the server restarts on the same port.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { ServerConfig } from '../../src/config/types.js';
import { VarzClient } from '../../src/watch/varz.js';
import { cleanupTempDirs, startServer, type NatsServer } from '../helpers/nats-server.js';

/** The head of one raw GET /varz answer. */
function rawHead(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    s.on('error', reject);
    s.on('data', (b) => {
      got += b.toString('latin1');
      const end = got.indexOf('\r\n\r\n');
      if (end >= 0) {
        s.destroy();
        resolve(got.slice(0, end));
      }
    });
    s.write(`GET /varz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  });
}

describe('polling a real nats-server whose varz is chunked', () => {
  let srv: NatsServer;
  const tags = Array.from({ length: 100 }, (_, i) => `rack:r${String(i).padStart(3, '0')}`);
  const client = new VarzClient();
  before(async () => {
    srv = await startServer({ name: 'chunky', tags, clusterName: 'c1' });
  });
  after(async () => {
    await client.close();
    await srv?.stop();
    cleanupTempDirs();
  });

  it('reads the chunked varz, on one kept-alive connection, and again after a restart', async () => {
    const head = await rawHead(srv.ports.monitor);
    assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(head, /\r\nTransfer-Encoding: chunked(\r\n|$)/i, `nats-server frames a varz over 2 KB chunked:\n${head}`);

    const server: ServerConfig = { url: `http://127.0.0.1:${srv.ports.monitor}`, name: undefined, headers: {}, basicAuth: undefined, bearerToken: undefined, tls: undefined, profUrl: undefined };
    const opts = { timeoutMs: 5_000, maxBodyBytes: 4 << 20 };
    for (let i = 0; i < 3; i++) {
      const r = await client.fetch(server, opts);
      assert.ok(r.body.length > 2048, `varz is ${r.body.length} bytes`);
      assert.equal(r.varz.serverName, 'chunky');
      assert.equal(r.varz.cluster, 'c1');
      assert.deepEqual(r.varz.tags, tags);
      assert.deepEqual(JSON.parse(Buffer.from(r.body).toString('utf8')).tags, tags, 'the body kept for the incident is the whole document');
    }
    assert.equal(client.openConnections, 1);

    // The server restarts on the same ports: the kept connection is gone; the next poll opens a new one.
    await srv.stop();
    await srv.start();
    assert.equal((await client.fetch(server, opts)).varz.serverName, 'chunky');
    assert.equal(client.openConnections, 1);
  });
});
