/**
 * Polling a real nats-server's HTTPS monitoring port (`https_port` with `tls {}`), with a CA made by openssl:
 * when the server's certificate moves to a new CA and a reload points at the rotated CA file, the next
 * poll verifies with the new CA (it used to keep the agent built from the old one, keyed by URL alone).
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { ServerConfig, TlsConfig } from '../../src/config/types.js';
import { PollError } from '../../src/errors.js';
import { VarzClient } from '../../src/watch/varz.js';
import { removeTempDirs, startDaemon, waitFor } from '../helpers/daemon.js';
import { freePort, natsServerBin } from '../helpers/nats-server.js';

const run = promisify(execFile);

/** A CA (`<name>-ca.pem`) and a server certificate for 127.0.0.1 signed by it (`<name>-cert.pem`, `-key.pem`). */
async function makeCa(dir: string, name: string): Promise<void> {
  const p = (s: string): string => join(dir, `${name}-${s}`);
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name} test CA`, '-keyout', p('ca-key.pem'), '-out', p('ca.pem')]);
  await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', p('key.pem'), '-out', p('csr.pem')]);
  writeFileSync(p('ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
  await run('openssl', ['x509', '-req', '-in', p('csr.pem'), '-CA', p('ca.pem'), '-CAkey', p('ca-key.pem'), '-CAcreateserial', '-days', '2', '-extfile', p('ext.cnf'), '-out', p('cert.pem')]);
}

/** nats-server with only an HTTPS monitoring port, serving the certificate of CA `name`. */
class TlsMonitor {
  #proc: ChildProcess | undefined;
  constructor(
    readonly dir: string,
    readonly httpsPort: number,
    readonly clientPort: number,
  ) {}

  async start(name: string): Promise<void> {
    const conf = join(this.dir, `server-${name}.conf`);
    writeFileSync(
      conf,
      [
        'server_name: tls-mon',
        `listen: 127.0.0.1:${this.clientPort}`,
        `https: 127.0.0.1:${this.httpsPort}`,
        `tls { cert_file: "${join(this.dir, `${name}-cert.pem`)}", key_file: "${join(this.dir, `${name}-key.pem`)}" }`,
      ].join('\n'),
    );
    const proc = spawn(await natsServerBin(), ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#proc = proc;
    let log = '';
    proc.stderr?.on('data', (b: Buffer) => (log += b.toString()));
    // Listening once the server logs its HTTPS monitoring port (state, not time).
    await waitFor(() => {
      if (proc.exitCode !== null) throw new Error(`nats-server exited: ${log}`);
      return log.includes('Starting https monitor') || undefined;
    }, { what: 'the https monitor', timeoutMs: 10_000 });
  }

  async stop(): Promise<void> {
    const proc = this.#proc;
    this.#proc = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await exited;
  }
}

describe('polling an HTTPS monitoring port of a real nats-server', () => {
  let dir: string;
  let mon: TlsMonitor;
  const client = new VarzClient();
  const opts = { timeoutMs: 5_000, maxBodyBytes: 4 << 20 };
  const server = (tls: TlsConfig): ServerConfig => ({
    url: `https://127.0.0.1:${mon.httpsPort}`, name: undefined, headers: {}, basicAuth: undefined, bearerToken: undefined, tls, profUrl: undefined,
  });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'varz-tls-'));
    await Promise.all([makeCa(dir, 'old'), makeCa(dir, 'new')]);
    mon = new TlsMonitor(dir, await freePort(), await freePort());
    await mon.start('old');
  });
  after(async () => {
    await client.close();
    await mon?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('verifies with the CA file as it is after a reload: a connection verified with the replaced CA is never reused, and is closed', async () => {
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, readFileSync(join(dir, 'old-ca.pem')));
    const before = server({ ca, cert: undefined, key: undefined, insecure: false });
    assert.equal((await client.fetch(before, opts)).varz.serverName, 'tls-mon');
    assert.equal((await client.fetch(before, opts)).varz.serverName, 'tls-mon');
    assert.equal(client.openConnections, 1, 'one kept-alive connection');

    // The operator rotates the CA file in place and reloads (same path, new content, new config objects)
    // while the server still serves the old CA's certificate: the poll verifies again, with the new CA,
    // and fails; the kept connection verified with the old CA is not used.
    const verifyError = (err: unknown): boolean => {
      assert.ok(err instanceof PollError);
      assert.equal(err.message, `https://127.0.0.1:${mon.httpsPort}/varz could not be reached: UNABLE_TO_VERIFY_LEAF_SIGNATURE`);
      return true;
    };
    writeFileSync(ca, readFileSync(join(dir, 'new-ca.pem')));
    const after = server({ ca, cert: undefined, key: undefined, insecure: false });
    await assert.rejects(client.fetch(after, opts), verifyError);
    assert.equal(await client.retain([after]), 1, 'the connection verified with the old CA is closed');
    assert.equal(client.openConnections, 0);

    // The server moves to the new CA: the rotated file verifies it; the old one does not (verification is on).
    await mon.stop();
    await mon.start('new');
    assert.equal((await client.fetch(after, opts)).varz.serverName, 'tls-mon');
    assert.equal(client.openConnections, 1);
    writeFileSync(ca, readFileSync(join(dir, 'old-ca.pem')));
    await assert.rejects(client.fetch(server({ ca, cert: undefined, key: undefined, insecure: false }), opts), verifyError);
  });

  it('the daemon: after the server moves to another CA, a SIGHUP with the rotated CA file brings it back up', async () => {
    // The server serves the "new" CA's certificate (previous test); the daemon trusts that CA.
    const ca = join(dir, 'daemon-ca.pem');
    writeFileSync(ca, readFileSync(join(dir, 'new-ca.pem')));
    const config = `
http: { listen: "127.0.0.1:{{PORT}}" }
poll: { interval: 250ms, timeout: 250ms }
servers: [ { url: "https://127.0.0.1:${mon.httpsPort}", tls: { ca: "${ca}" } } ]
storage: { dir: "{{DIR}}/profiles" }
`;
    const d = await startDaemon({ config });
    try {
      await waitFor(async () => (await d.metric('nats_autoprof_up', { server: 'tls-mon' })) === 1, { what: 'up 1 over https' });
      // The server's certificate moves back to the "old" CA: the daemon's CA no longer verifies it.
      await mon.stop();
      await mon.start('old');
      const errors = (await d.metric('nats_autoprof_polls_total', { server: 'tls-mon', result: 'error' })) ?? 0;
      await waitFor(async () => ((await d.metric('nats_autoprof_polls_total', { server: 'tls-mon', result: 'error' })) ?? 0) >= errors + 2, { what: 'failed polls' });
      assert.equal(await d.metric('nats_autoprof_up', { server: 'tls-mon' }), 0);
      // The CA file rotated in place, then a reload (the same config text): polls verify with the new content.
      writeFileSync(ca, readFileSync(join(dir, 'old-ca.pem')));
      d.writeConfig(config);
      d.proc.kill('SIGHUP');
      await waitFor(async () => (await d.metric('nats_autoprof_up', { server: 'tls-mon' })) === 1, { what: 'up 1 after the reload' });
    } finally {
      await d.stop();
      removeTempDirs();
    }
  });
});
