/**
 * The long-lived system-account connection against a real nats-server: stop() closes it in every path,
 * in particular when stop() runs while the connect is still pending (issue 12, item 2).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as tcpConnect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { SystemAccount } from '../../../src/capture/nats-connection.js';
import type { SystemAccountConfig } from '../../../src/config/types.js';
import { Secret } from '../../../src/secret.js';
import { SYS_PASSWORD, SYS_USER, cleanupTempDirs, startServer, type NatsServer } from '../../helpers/nats-server.js';

const log = pino({ level: 'silent' });

function sysConfig(url: string): SystemAccountConfig {
  return {
    urls: [url],
    user: SYS_USER,
    password: new Secret(SYS_PASSWORD),
    token: undefined,
    creds: undefined,
    nkeySeed: undefined,
    tls: undefined,
    // The handshake limit of one connect: far longer than the gate below is held.
    timeoutMs: 10_000,
    discover: false,
    select: { names: [], clusters: [], tags: [] },
    stallMs: 100,
    forgetAfterMs: 60_000,
    profUrls: {},
  };
}

/** Connections of ours (the client names itself `nats-autoprof`) that the server lists in /connz. */
async function ourConnections(srv: NatsServer): Promise<number> {
  const res = await fetch(`${srv.monitorUrl}/connz`);
  const body = (await res.json()) as { connections?: { name?: string }[] };
  return (body.connections ?? []).filter((c) => c.name === 'nats-autoprof').length;
}

/** Waits until the server lists none of our connections; fails after `ms` with the count it last saw. */
async function waitNoConnections(srv: NatsServer, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const n = await ourConnections(srv);
    if (n === 0) return;
    // The server drops a connection once it reads the client's close; anything left after the deadline leaked.
    if (Date.now() > deadline) assert.fail(`${n} connection(s) from nats-autoprof still open ${ms} ms after stop() resolved`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A TCP gate in front of the real server: it accepts at once but passes nothing (so the client's connect
 * stays pending, waiting for INFO) until `release()`; then it splices each held socket to the server.
 */
class Gate {
  readonly server: Server;
  readonly held: Socket[] = [];
  accepted = 0;
  #open = false;
  #upstreamPort: number;
  readonly #pairs: Socket[] = [];

  constructor(upstreamPort: number) {
    this.#upstreamPort = upstreamPort;
    this.server = createServer((client) => {
      this.accepted++;
      this.#pairs.push(client);
      client.on('error', () => undefined);
      if (this.#open) this.#splice(client);
      else this.held.push(client);
      this.server.emit('accepted');
    });
  }

  async listen(): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    const addr = this.server.address();
    if (addr === null || typeof addr === 'string') throw new Error('no address');
    return `nats://127.0.0.1:${addr.port}`;
  }

  release(): void {
    this.#open = true;
    for (const c of this.held.splice(0)) this.#splice(c);
  }

  /** Cuts every connection through the gate: a client still alive would reconnect. */
  dropAll(): void {
    for (const s of this.#pairs.splice(0)) s.destroy();
  }

  #splice(client: Socket): void {
    const up = tcpConnect(this.#upstreamPort, '127.0.0.1');
    this.#pairs.push(up);
    up.on('error', () => client.destroy());
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
    client.pipe(up);
    up.pipe(client);
  }

  async close(): Promise<void> {
    this.dropAll();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

describe('SystemAccount.stop() closes the connection in every path (real nats-server)', () => {
  let srv: NatsServer;
  before(async () => {
    srv = await startServer({ name: 'sa1', profPort: false });
  });
  after(async () => {
    await srv?.stop();
    cleanupTempDirs();
  });

  it('stop() while the first connect is pending: the connection that arrives afterwards is closed, and never reconnects', async () => {
    const gate = new Gate(srv.ports.client);
    const url = await gate.listen();
    const changes: boolean[] = [];
    const sa = new SystemAccount({ config: sysConfig(url), log, onConnectedChange: (c) => changes.push(c) });
    try {
      const accepted = once(gate.server, 'accepted');
      sa.start();
      await accepted; // the client is now waiting for the server's INFO
      const stopped = sa.stop();
      gate.release(); // the connect completes after stop() has begun
      await stopped;
      assert.equal(sa.connected, false);
      assert.equal(sa.connection, undefined);
      await waitNoConnections(srv);
      // A client still alive would reconnect (reconnect_time_wait is 1 s) after its connection is cut.
      // Absence can only be observed over a window: 2.5 s here.
      gate.dropAll();
      await new Promise((r) => setTimeout(r, 2_500));
      assert.equal(gate.accepted, 1, 'no new connection after stop()');
      assert.equal(await ourConnections(srv), 0);
      assert.deepEqual(changes, [false], 'never reported as connected');
    } finally {
      await sa.stop();
      await gate.close();
    }
  });

  it('stop() does not wait for a connect that hangs; the connection it brings later is closed by itself', async () => {
    const gate = new Gate(srv.ports.client);
    const url = await gate.listen();
    const sa = new SystemAccount({ config: sysConfig(url), log, onConnectedChange: () => undefined });
    try {
      const accepted = once(gate.server, 'accepted');
      sa.start();
      await accepted;
      const held = gate.held[0];
      assert.ok(held);
      // The handshake limit is 10 s; stop() gives it 200 ms.
      await sa.stop(200);
      assert.equal(held.destroyed, false, 'stop() resolved while the connect was still pending');
      gate.release();
      // The connect completes after stop() resolved: the loop closes it.
      await once(held, 'close');
      await waitNoConnections(srv);
      assert.equal(sa.connected, false);
    } finally {
      await gate.close();
    }
  });

  it('stop() right after start() against a real server leaves no connection', async () => {
    const sa = new SystemAccount({ config: sysConfig(srv.natsUrl), log, onConnectedChange: () => undefined });
    sa.start();
    await sa.stop();
    assert.equal(sa.connected, false);
    await waitNoConnections(srv);
  });

  it('stop() while connected closes the connection; stopping twice is safe', async () => {
    const sa = new SystemAccount({ config: sysConfig(srv.natsUrl), log, onConnectedChange: () => undefined });
    sa.start();
    assert.equal(await sa.waitConnected(10_000), true);
    assert.equal(await ourConnections(srv), 1);
    await sa.stop();
    await sa.stop();
    assert.equal(sa.connected, false);
    await waitNoConnections(srv);
  });
});
