import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ServerConfig } from '../../../src/config/types.js';
import { Secret } from '../../../src/secret.js';
import { parseVarz, VarzClient, VarzParseError } from '../../../src/watch/varz.js';

const fixtures = join(import.meta.dirname, '..', '..', 'fixtures', 'varz');
const read = (name: string): string => readFileSync(join(fixtures, name), 'utf8');

describe('parseVarz on varz recorded from nats-server 2.10.27', () => {
  it('reads a clustered server with tags', () => {
    const v = parseVarz(read('2.10.27-cluster-tags.json'));
    assert.equal(v.serverId, 'NA626UZCOABVCP27OZC5654Y672GDW3LMYFKMBEWJUIP7P4YFNIZ67N2');
    assert.equal(v.serverName, 'fixture-a');
    assert.equal(v.cluster, 'east');
    assert.deepEqual(v.tags, ['az:eu-1', 'env:prod']);
    assert.equal(v.version, '2.10.27');
    assert.equal(v.cpu, 0);
    assert.equal(v.mem, 15183872);
    assert.equal(v.cores, 2);
    assert.equal(v.gomaxprocs, 2);
    assert.equal(v.gomemlimit, undefined);
  });

  it('reads a standalone server: no cluster name, no tags, name defaults to the id', () => {
    const v = parseVarz(read('2.10.27-standalone.json'));
    assert.equal(v.cluster, undefined);
    assert.deepEqual(v.tags, []);
    assert.equal(v.serverName, v.serverId);
    assert.match(v.serverId, /^N[A-Z0-9]{55}$/);
  });

  it('keeps gomemlimit when a newer server reports one', () => {
    const doc = JSON.parse(read('2.10.27-standalone.json')) as Record<string, unknown>;
    doc['gomemlimit'] = 1073741824;
    assert.equal(parseVarz(JSON.stringify(doc)).gomemlimit, 1073741824);
  });
});

describe('parseVarz refuses what is not varz', () => {
  const cases: [string, string, string][] = [
    ['truncated JSON', '{"server_id": "N', 'varz is not valid JSON'],
    ['an HTML page', '<html><body>502 Bad Gateway</body></html>', 'varz is not valid JSON'],
    ['a JSON array', '[1,2,3]', 'varz is not a JSON object'],
    ['JSON null', 'null', 'varz is not a JSON object'],
    ['JSON that is not varz', '{"hello": "world"}', 'varz field "server_id" is missing'],
    ['cpu as a string', '{"server_id":"NX","version":"2.10.27","cpu":"12","mem":1}', 'varz field "cpu" is not a number (string)'],
    ['no mem', '{"server_id":"NX","version":"2.10.27","cpu":1}', 'varz field "mem" is missing'],
    ['empty server_id', '{"server_id":"","version":"2.10.27","cpu":1,"mem":1}', 'varz field "server_id" is empty'],
  ];
  for (const [name, text, message] of cases) {
    it(name, () => {
      assert.throws(() => parseVarz(text), (err: unknown) => {
        assert.ok(err instanceof VarzParseError);
        assert.ok(err.message.startsWith(message), err.message);
        return true;
      });
    });
  }
});

describe('VarzClient: one kept-alive connection per endpoint', () => {
  const server = (url: string, o: Partial<ServerConfig> = {}): ServerConfig => ({ url, name: undefined, headers: {}, basicAuth: undefined, bearerToken: undefined, tls: undefined, profUrl: undefined, ...o });
  const opts = { timeoutMs: 2_000, maxBodyBytes: 1 << 20 };
  const varzText = read('2.10.27-cluster-tags.json');

  /** A monitoring endpoint answering `answer` (raw bytes after the request head), counting connections and recording request heads. */
  async function endpoint(answer: () => string = () => `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(varzText)}\r\n\r\n${varzText}`) {
    const heads: string[] = [];
    let connections = 0;
    const srv = createServer((sock) => {
      connections++;
      let got = '';
      sock.on('error', () => undefined);
      sock.on('data', (b) => {
        got += b.toString('latin1');
        while (got.includes('\r\n\r\n')) {
          heads.push(got.slice(0, got.indexOf('\r\n\r\n')));
          got = got.slice(got.indexOf('\r\n\r\n') + 4);
          sock.write(answer());
        }
      });
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, heads, connections: () => connections, close: () => srv.close() };
  }

  it('reuses the connection across polls and reloads (new config objects), and retain closes those of servers no longer watched', async (t) => {
    const a = await endpoint();
    const b = await endpoint();
    const client = new VarzClient();
    t.after(() => [a.close(), b.close(), client.close()]);
    for (let i = 0; i < 3; i++) assert.equal((await client.fetch(server(a.url), opts)).varz.serverName, 'fixture-a');
    await client.fetch(server(b.url), opts);
    assert.deepEqual([a.connections(), b.connections(), client.openConnections], [1, 1, 2]);
    // A reload: the same servers as new objects; nothing closed, the next poll reuses the connection.
    assert.equal(await client.retain([server(a.url), server(b.url)]), 0);
    await client.fetch(server(a.url), opts);
    assert.equal(a.connections(), 1);
    // b removed by a reload: its connection is closed.
    assert.equal(await client.retain([server(a.url)]), 1);
    await client.fetch(server(b.url), opts);
    assert.equal(b.connections(), 2);
  });

  it('sends the configured headers and credentials, and a host header', async (t) => {
    const a = await endpoint();
    const client = new VarzClient();
    t.after(() => [a.close(), client.close()]);
    const basicAuth = { username: 'mon', password: new Secret('pw') };
    await client.fetch(server(`${a.url}/base`, { headers: { 'X-Scope': new Secret('team-a') }, basicAuth }), opts);
    const [line, ...headers] = (a.heads[0] as string).split('\r\n');
    assert.equal(line, 'GET /base/varz HTTP/1.1');
    assert.deepEqual(headers.sort(), ['accept: application/json', `authorization: Basic ${Buffer.from('mon:pw').toString('base64')}`, `host: ${new URL(a.url).host}`, 'user-agent: nats-autoprof', 'x-scope: team-a']);
  });

  it('a malformed answer is an invalid poll; another status an http one', async (t) => {
    const bad = await endpoint(() => 'SSH-2.0-OpenSSH_9.2\r\n\r\n');
    const missing = await endpoint(() => 'HTTP/1.1 404 Not Found\r\nContent-Length: 19\r\n\r\n404 page not found\n');
    const client = new VarzClient();
    t.after(() => [bad.close(), missing.close(), client.close()]);
    await assert.rejects(client.fetch(server(bad.url), opts), { name: 'PollError', kind: 'invalid', message: `${bad.url}/varz sent a malformed HTTP answer: not an HTTP/1.x status line: "SSH-2.0-OpenSSH_9.2"` });
    await assert.rejects(client.fetch(server(missing.url), opts), { name: 'PollError', kind: 'http', message: `${missing.url}/varz answered HTTP 404` });
  });

  it('an unreadable CA file fails the poll with the read error and opens no connection', async () => {
    const client = new VarzClient();
    try {
      const s = server('https://127.0.0.1:1', { tls: { ca: '/nonexistent/ca.pem', cert: undefined, key: undefined, insecure: false } });
      await assert.rejects(client.fetch(s, { timeoutMs: 1_000, maxBodyBytes: 1024 }), { name: 'PollError', message: 'https://127.0.0.1:1/varz could not be reached: ENOENT' });
      assert.equal(client.openConnections, 0);
      assert.equal(await client.retain([s]), 0);
    } finally {
      await client.close();
    }
  });
});
