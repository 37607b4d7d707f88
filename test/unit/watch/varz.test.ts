import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ServerConfig, TlsConfig } from '../../../src/config/types.js';
import { PollError } from '../../../src/errors.js';
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
    assert.equal(v.now, '2026-11-26T16:19:36.877245739Z');
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

describe('VarzClient: TLS agents keyed by URL and the TLS files as loaded', () => {
  const server = (url: string, tls: TlsConfig): ServerConfig => ({ url, name: undefined, headers: {}, basicAuth: undefined, bearerToken: undefined, tls, profUrl: undefined });
  /** A poll that creates the server's agent (nothing listens there: the request itself fails). */
  const poll = async (client: VarzClient, s: ServerConfig): Promise<void> => {
    await assert.rejects(client.fetch(s, { timeoutMs: 2_000, maxBodyBytes: 1024 }), PollError);
  };

  it('reuses the agent while the files are unchanged, builds a new one when a reload rotates the CA, and closes agents no longer used', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'varz-tls-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, 'first CA');
    const port = await closedPort();
    const url = `https://127.0.0.1:${port}`;
    const other = `https://127.0.0.1:${port}/other`;
    const client = new VarzClient();
    t.after(() => client.close());
    const tls: TlsConfig = { ca, cert: undefined, key: undefined, insecure: false };

    const first = server(url, tls);
    await poll(client, first);
    await poll(client, first);
    assert.equal(client.tlsAgents, 1);

    // A reload with the same files: new config objects, the same agent.
    const same = server(url, { ...tls });
    await poll(client, same);
    assert.equal(client.tlsAgents, 1);
    assert.equal(await client.retain([same]), 0);

    // The CA file rotated, then a reload: a new agent; retain closes the one built from the old CA.
    writeFileSync(ca, 'second CA');
    const rotated = server(url, { ...tls });
    await poll(client, rotated);
    assert.equal(client.tlsAgents, 2);
    assert.equal(await client.retain([rotated]), 1);
    assert.equal(client.tlsAgents, 1);

    // insecure changes the key too; a second server has its own agent.
    const second = server(other, { ...tls, insecure: true });
    await poll(client, second);
    assert.equal(client.tlsAgents, 2);

    // The second server removed by a reload: its agent is closed, the first one kept.
    assert.equal(await client.retain([rotated]), 1);
    assert.equal(client.tlsAgents, 1);
    // Nothing watched over TLS any more: every agent closed.
    assert.equal(await client.retain([]), 1);
    assert.equal(client.tlsAgents, 0);
  });

  it('an unreadable CA file fails the poll with the read error and keeps no agent', async () => {
    const client = new VarzClient();
    try {
      const s = server('https://127.0.0.1:1', { ca: '/nonexistent/ca.pem', cert: undefined, key: undefined, insecure: false });
      await assert.rejects(client.fetch(s, { timeoutMs: 1_000, maxBodyBytes: 1024 }), { name: 'PollError', message: 'https://127.0.0.1:1/varz could not be reached: ENOENT' });
      assert.equal(client.tlsAgents, 0);
      assert.equal(await client.retain([s]), 0);
    } finally {
      await client.close();
    }
  });
});

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}
