/**
 * Hardening: secrets never leak. Every kind of secret the configuration takes is set to a distinctive
 * value: monitoring headers (inline and from ${ENV}), basic_auth passwords (inline and password_file),
 * monitoring bearer tokens (inline and bearer_token_file), the system-account password, and the API token.
 * The fake monitoring endpoints refuse requests without them (so they are really sent), a real nats-server
 * is captured through the system account, the fakes through a fake prof_port. With log.level trace, none
 * of the values (nor their base64 forms) may appear in the logs, /metrics, `check` output, any API answer,
 * or any file of any incident.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { removeTempDirs, runCli, startDaemon, tempDir, waitFor, type Daemon } from '../helpers/daemon.js';
import { startFakeMonitor, type FakeMonitor } from '../helpers/fake-monitor.js';
import { startFakePprof, type FakePprof } from '../helpers/fake-pprof.js';
import { incidents } from '../helpers/incidents.js';
import { cleanupTempDirs, startServer, SYS_PASSWORD, SYS_USER, type NatsServer } from '../helpers/nats-server.js';

const S = {
  header: 'S3CRET-monitor-header-1',
  envHeader: 'S3CRET-env-header-7',
  basicPassword: 'S3CRET-basic-password-2',
  basicPasswordFile: 'S3CRET-basic-password-file-6',
  bearerFile: 'S3CRET-bearer-token-file-3',
  bearerInline: 'S3CRET-bearer-token-inline-5',
  apiToken: 'S3CRET-api-token-4',
  /** Sent to an endpoint that refuses it (401, echoing the request headers back). */
  refusedBearer: 'S3CRET-refused-bearer-8',
  /** Fixed by test/helpers/nats-server.ts, which defines the SYS account. */
  sysPassword: SYS_PASSWORD,
};

/** Every form in which a secret could escape: as is, base64, and the basic-auth credentials in base64. */
const FORMS: [string, string][] = [
  ...Object.entries(S).map(([k, v]): [string, string] => [k, v]),
  ...Object.entries(S).map(([k, v]): [string, string] => [`${k} (base64)`, Buffer.from(v).toString('base64')]),
  ['basic credentials (base64)', Buffer.from(`monitor:${S.basicPassword}`).toString('base64')],
  ['basic-file credentials (base64)', Buffer.from(`monitor2:${S.basicPasswordFile}`).toString('base64')],
  ['system account user:password', `${SYS_USER}:${SYS_PASSWORD}`],
];

function assertNoSecret(text: string | Buffer, where: string): void {
  const hay = typeof text === 'string' ? text : text.toString('latin1');
  for (const [name, value] of FORMS) {
    const at = hay.indexOf(value);
    assert.equal(at, -1, `${where} contains the ${name} secret: …${hay.slice(Math.max(0, at - 120), at + value.length + 40)}…`);
  }
}

let real: NatsServer;
let pprof: FakePprof;
const fakes: Record<string, FakeMonitor> = {};
let refusing: FakeMonitor;
let validConfig: string;
let d: Daemon;
let configFile: string;
const answers: { what: string; status: number; body: Buffer }[] = [];

/** GET or POST with the API token (or the given headers), recording the answer for the leak check. */
function call(method: string, path: string, o: { body?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const headers = o.headers ?? { authorization: `Bearer ${S.apiToken}` };
    const req = request({ host: '127.0.0.1', port: d.port, method, path, headers: { ...headers, ...(o.body ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (b: Buffer) => chunks.push(b));
      res.on('end', () => {
        const r = { status: res.statusCode ?? 0, body: Buffer.concat(chunks) };
        answers.push({ what: `${method} ${path} -> ${r.status}`, ...r });
        resolve(r);
      });
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

before(async () => {
  real = await startServer({ name: 'sec-real' });
  pprof = await startFakePprof({ delayMs: 20 });
  // Old enough (2.9) that `via: auto` takes profiles from the prof_url, not the system account.
  const old = { version: '2.9.25' };
  fakes['header'] = await startFakeMonitor('varz', { name: 'sec-header', varz: old, requireHeaders: { 'x-scope-orgid': S.header, 'x-tenant': S.envHeader } });
  fakes['basic'] = await startFakeMonitor('varz', { name: 'sec-basic', varz: old, requireHeaders: { authorization: `Basic ${Buffer.from(`monitor:${S.basicPassword}`).toString('base64')}` } });
  fakes['basicFile'] = await startFakeMonitor('varz', { name: 'sec-basic-file', varz: old, requireHeaders: { authorization: `Basic ${Buffer.from(`monitor2:${S.basicPasswordFile}`).toString('base64')}` } });
  fakes['bearerFile'] = await startFakeMonitor('varz', { name: 'sec-bearer-file', varz: old, requireHeaders: { authorization: `Bearer ${S.bearerFile}` } });
  fakes['bearerInline'] = await startFakeMonitor('varz', { name: 'sec-bearer-inline', varz: old, requireHeaders: { authorization: `Bearer ${S.bearerInline}` } });
  // Regression test (this was a bug, now fixed): a monitoring endpoint answering 401 crashes the daemon (src/watch/varz.ts destroys the
  // unread body without an 'error' listener; see hardening-endpoints.test.ts).
  refusing = await startFakeMonitor('varz', { name: 'sec-refused', requireHeaders: { authorization: 'Bearer something-else' }, echoOnRefuse: true });

  const dir = tempDir();
  writeFileSync(join(dir, 'api-token'), `${S.apiToken}\n`);
  writeFileSync(join(dir, 'monitor-token'), `${S.bearerFile}\n`);
  writeFileSync(join(dir, 'monitor-password'), `${S.basicPasswordFile}\n`);
  const f = fakes as Required<typeof fakes>;
  d = await startDaemon({
    dir,
    env: { SEC_TENANT: S.envHeader },
    config: `
log: { level: trace }
http:
  listen: "127.0.0.1:{{PORT}}"
  auth: { bearer_token_file: api-token }
poll: { interval: 300ms, timeout: 250ms }
servers:
  - { name: sec-real, url: "${real.monitorUrl}", prof_url: "${real.profUrl}" }
  - name: sec-header
    url: "${f['header']?.url}"
    prof_url: "${pprof.url}"
    headers: { X-Scope-OrgID: "${S.header}", X-Tenant: "\${SEC_TENANT}" }
  - name: sec-basic
    url: "${f['basic']?.url}"
    prof_url: "${pprof.url}"
    basic_auth: { username: monitor, password: "${S.basicPassword}" }
  - name: sec-basic-file
    url: "${f['basicFile']?.url}"
    prof_url: "${pprof.url}"
    basic_auth: { username: monitor2, password_file: monitor-password }
  - { name: sec-bearer-file, url: "${f['bearerFile']?.url}", prof_url: "${pprof.url}", bearer_token_file: monitor-token }
  - { name: sec-bearer-inline, url: "${f['bearerInline']?.url}", prof_url: "${pprof.url}", bearer_token: "${S.bearerInline}" }
  - { name: sec-refused, url: "${refusing.url}", bearer_token: "${S.refusedBearer}" }
system_account: { url: "${real.natsUrl}", user: ${SYS_USER}, password: "${SYS_PASSWORD}", discover: true }
triggers:
  - { name: low-mem, metric: mem, above: 1MiB, cooldown: 1h, profiles: [allocs, goroutine] }
capture: { via: auto }
storage: { dir: "{{DIR}}/profiles" }
`,
  });
  configFile = d.configFile;
  validConfig = readFileSync(configFile, 'utf8');
});

after(async () => {
  await d?.stop('SIGKILL');
  await real?.stop();
  await pprof?.close();
  await Promise.all(Object.values(fakes).map((x) => x.close()));
  await refusing?.close();
  cleanupTempDirs();
  removeTempDirs();
});

describe('secrets never leak', () => {
  it('the secrets really are sent: every fake endpoint received them and is up; the system account is connected', async () => {
    const root = join(d.dir, 'profiles');
    // One incident per server: the real one through the system account, the fakes through prof_port.
    await waitFor(() => incidents(root).length >= 6, { timeoutMs: 20_000, what: 'an incident for each of the 6 servers' });
    const found = incidents(root);
    assert.deepEqual(found.map((i) => i.manifest.server.name).sort(), ['sec-basic', 'sec-basic-file', 'sec-bearer-file', 'sec-bearer-inline', 'sec-header', 'sec-real']);
    for (const i of found) assert.equal(i.manifest.status, 'ok', `${i.manifest.server.name}: ${JSON.stringify(i.manifest.profiles.map((p) => p.error))}`);
    assert.equal(found.find((i) => i.manifest.server.name === 'sec-real')?.manifest.via, 'system_account', 'the real server was captured with the system-account password');
    assert.equal(await d.metric('nats_autoprof_system_account_connected'), 1);

    const sent = (f: FakeMonitor | undefined, header: string, value: string): void => {
      assert.ok(f);
      assert.ok(f.served > 0, `${header}: served ${f.served}`);
      assert.ok(f.headers.some((h) => h[header] === value), `${header}: ${value} was sent`);
    };
    sent(fakes['header'], 'x-scope-orgid', S.header);
    sent(fakes['header'], 'x-tenant', S.envHeader);
    sent(fakes['basic'], 'authorization', `Basic ${Buffer.from(`monitor:${S.basicPassword}`).toString('base64')}`);
    sent(fakes['basicFile'], 'authorization', `Basic ${Buffer.from(`monitor2:${S.basicPasswordFile}`).toString('base64')}`);
    sent(fakes['bearerFile'], 'authorization', `Bearer ${S.bearerFile}`);
    sent(fakes['bearerInline'], 'authorization', `Bearer ${S.bearerInline}`);
    for (const [name, f] of Object.entries(fakes)) assert.equal(f.refused, 0, `${name} never refused a request`);
    for (const s of ['sec-real', 'sec-header', 'sec-basic', 'sec-basic-file', 'sec-bearer-file', 'sec-bearer-inline']) {
      assert.equal(await d.metric('nats_autoprof_up', { server: s }), 1, s);
    }
    // The refusing endpoint got the secret, and said so in its 401 body; the daemon only reports the status.
    assert.ok(refusing.headers.some((h) => h['authorization'] === `Bearer ${S.refusedBearer}`));
    assert.ok(refusing.refused > 0);
    assert.equal(await d.metric('nats_autoprof_up', { server: 'sec-refused' }), 0);
    // The API token works (and is therefore the one configured).
    assert.equal((await call('GET', '/api/v1/servers')).status, 200);
  });

  it('no secret in any API answer, /metrics, or incident file', async () => {
    // Everything the API can show, including error answers and a manual capture.
    for (const p of ['/api/v1/servers', '/api/v1/triggers', '/api/v1/incidents?limit=1000', '/metrics', '/healthz', '/readyz']) {
      assert.equal((await call('GET', p)).status, 200, p);
    }
    const manual = await call('POST', '/api/v1/captures', { body: JSON.stringify({ server: 'sec-basic', profiles: ['heap'], note: 'leak check' }) });
    assert.equal(manual.status, 202, manual.body.toString());
    await waitFor(() => incidents(join(d.dir, 'profiles')).some((i) => i.manifest.reason === 'manual'), { what: 'the manual incident' });
    await call('POST', '/api/v1/captures', { body: JSON.stringify({ server: 'nope' }) });
    await call('POST', '/api/v1/captures', { body: '{bad json' });
    await call('POST', '/api/v1/alerts/alertmanager', { body: JSON.stringify({ alerts: [{ status: 'firing', labels: { server_name: 'sec-bearer-file' }, fingerprint: 'x1' }] }) });
    await call('GET', '/api/v1/servers', { headers: { authorization: 'Bearer wrong' } });
    await call('GET', '/api/v1/servers', { headers: { authorization: `Basic ${Buffer.from(`x:${S.apiToken}`).toString('base64')}` } });
    await call('GET', '/api/v1/servers', { headers: {} });
    await call('DELETE', '/api/v1/servers');
    const list = await call('GET', '/api/v1/incidents?limit=1000');
    const listed = (JSON.parse(list.body.toString()) as { incidents: { id: string; files: string[] }[] }).incidents;
    assert.ok(listed.length >= 7, `${listed.length} incidents listed`);
    let files = 0;
    for (const inc of listed) {
      const m = await call('GET', `/api/v1/incidents/${encodeURIComponent(inc.id)}`);
      assert.equal(m.status, 200);
      for (const f of ['incident.json', ...inc.files]) {
        const r = await call('GET', `/api/v1/incidents/${encodeURIComponent(inc.id)}/files/${f}`);
        assert.equal(r.status, 200, `${inc.id}/${f}`);
        files++;
      }
    }
    // After the captures, the metrics have every series (captures, skips, api requests).
    await call('GET', '/metrics');
    for (const a of answers) assertNoSecret(a.body, `the answer to ${a.what}`);
    console.log(`[measure] secrets: ${answers.length} API answers checked, ${files} incident files downloaded`);

    // Every file on disk under the storage directory, bytes as they are.
    const walk = (dir: string): string[] =>
      readdirSync(dir).flatMap((n) => {
        const p = join(dir, n);
        return statSync(p).isDirectory() ? walk(p) : [p];
      });
    const onDisk = walk(join(d.dir, 'profiles'));
    assert.ok(onDisk.filter((p) => p.endsWith('varz.json')).length >= 7, 'a varz.json per incident');
    for (const p of onDisk) assertNoSecret(readFileSync(p), p);
  });

  it('no secret in `check` output (valid or not), nor in any log line at trace level, across a failed and a good reload and shutdown', async () => {
    // The detector itself works: the configuration file does hold the secrets.
    assert.throws(() => assertNoSecret(validConfig, 'the config file'), /contains the header secret/);
    const check = await runCli(['check', '--config', configFile], { SEC_TENANT: S.envHeader });
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /\[redacted\]/, 'check shows that secrets are there, redacted');
    assertNoSecret(check.stdout + check.stderr, '`nats-autoprof check` output');

    // The same secrets in wrong places: in URLs, twice, with the wrong type. The problems are reported
    // without the values.
    const broken = validConfig
      .replace(`url: "${real.monitorUrl}"`, `url: "${real.monitorUrl.replace('http://', `http://monitor:${S.basicPassword}@`)}"`)
      .replace(`password: "${SYS_PASSWORD}", discover: true }`, `password: "${SYS_PASSWORD}", token: "${S.apiToken}", discover: true }`)
      .replace('auth: { bearer_token_file: api-token }', `auth: { bearer_token_file: api-token, bearer_token: "${S.apiToken}" }`)
      .replace(`bearer_token: "${S.bearerInline}" }`, `bearer_token: ["${S.bearerInline}"] }`)
      .replace(`prof_url: "${pprof.url}", bearer_token_file: monitor-token }`, `prof_url: "${pprof.url.replace('http://', `http://u:${S.bearerFile}@`)}", bearer_token_file: monitor-token }`)
      .replace(`X-Tenant: "\${SEC_TENANT}" }`, `X-Tenant: { nested: "${S.envHeader}" } }`);
    assert.notEqual(broken, validConfig);
    writeFileSync(configFile, broken);
    const bad = await runCli(['check', '--config', configFile], { SEC_TENANT: S.envHeader });
    assert.equal(bad.code, 2, bad.stdout + bad.stderr);
    assert.match(bad.stdout + bad.stderr, /6 problems/);
    assertNoSecret(bad.stdout + bad.stderr, '`nats-autoprof check` output for an invalid file');

    // A failed reload, then a good one, then a clean stop.
    let mark = d.logs.length;
    d.proc.kill('SIGHUP');
    await waitFor(() => d.logs.slice(mark).some((l) => l.msg === 'configuration reload failed; keeping the running configuration'), { what: 'the failed reload' });
    assert.equal(await d.metric('nats_autoprof_config_last_reload_success'), 0);
    writeFileSync(configFile, validConfig);
    mark = d.logs.length;
    d.proc.kill('SIGHUP');
    await waitFor(() => d.logs.slice(mark).some((l) => l.msg === 'configuration reloaded'), { what: 'the reload' });
    assert.equal(await d.stop(), 0);
    assert.ok(d.logs.length > 20, `${d.logs.length} log lines`);
    assert.equal(d.logsWith('server is down').filter((l) => l['server'] === 'sec-refused').length, 1, 'the refusing endpoint was logged');
    assertNoSecret(d.stdout, 'the daemon stdout (logs)');
    assertNoSecret(d.stderr, 'the daemon stderr');
    console.log(`[measure] secrets: ${d.logs.length} log lines (${d.stdout.length} bytes) checked at level trace`);
  });
});
