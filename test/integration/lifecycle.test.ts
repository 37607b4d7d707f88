/**
 * The CLI and the daemon's lifecycle as an operator meets them: check, help, version, exit codes,
 * SIGTERM, and SIGHUP reloads (bad and good).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, removeTempDirs, runCli, startDaemon, tempDir, waitFor, type Daemon } from '../helpers/daemon.js';
import { cleanupTempDirs, startServer, type NatsServer } from '../helpers/nats-server.js';

const pkg = (await import(join(ROOT, 'package.json'), { with: { type: 'json' } })) as { default: { version: string } };

describe('CLI', () => {
  after(removeTempDirs);

  it('check accepts config/example.yaml and prints the effective config', async () => {
    const r = await runCli(['check', '--config', join(ROOT, 'config', 'example.yaml')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^poll:\n {2}interval: 5s\n {2}timeout: 2s\n/m);
    assert.match(r.stdout, /max_total_size: 2GiB/);
  });

  it('check redacts secrets', async () => {
    const dir = tempDir();
    const file = join(dir, 'c.yaml');
    writeFileSync(file, 'servers:\n  - url: http://127.0.0.1:8222\n    bearer_token: very-secret-token-123\n');
    const r = await runCli(['check', '--config', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /very-secret-token-123/);
    assert.match(r.stdout, /bearer_token: "\[redacted\]"/);
  });

  it('check exits 2 on a bad file, naming the key, the line and a fix', async () => {
    const dir = tempDir();
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'poll:\n  interval: 5s\n  timeout: soon\n');
    const r = await runCli(['check', '--config', file]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`${file.replaceAll('/', '\\/')}:3:12: poll\\.timeout: `));
    assert.equal(r.stdout, '');
  });

  it('check exits 2 when the file does not exist', async () => {
    const r = await runCli(['check', '--config', '/nonexistent/nats-autoprof.yaml']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /\/nonexistent\/nats-autoprof\.yaml/);
  });

  it('uses $NATS_AUTOPROF_CONFIG when --config is not given', async () => {
    const r = await runCli(['check'], { NATS_AUTOPROF_CONFIG: join(ROOT, 'config', 'example.yaml') });
    assert.equal(r.code, 0, r.stderr);
  });

  it('--help and --version work on every command', async () => {
    for (const args of [['--help'], ['run', '--help'], ['check', '--help']]) {
      const r = await runCli(args);
      assert.equal(r.code, 0);
      assert.match(r.stdout, /Usage:/);
    }
    for (const args of [['--version'], ['run', '--version'], ['check', '--version']]) {
      const r = await runCli(args);
      assert.equal(r.code, 0);
      assert.equal(r.stdout, `${pkg.default.version}\n`);
    }
  });

  it('exits 2 on an unknown command or option', async () => {
    const a = await runCli(['frobnicate']);
    assert.equal(a.code, 2);
    assert.match(a.stderr, /unknown command "frobnicate"/);
    const b = await runCli(['run', '--no-such-flag']);
    assert.equal(b.code, 2);
    assert.match(b.stderr, /--no-such-flag/);
  });
});

describe('daemon lifecycle', () => {
  let a: NatsServer;
  let b: NatsServer;
  let daemon: Daemon;
  const base = (servers: string): string => `
http: { listen: "127.0.0.1:{{PORT}}" }
poll: { interval: 300ms, timeout: 250ms }
storage: { dir: "{{DIR}}/profiles" }
servers:
${servers}`;

  before(async () => {
    [a, b] = await Promise.all([startServer({ name: 'life-a' }), startServer({ name: 'life-b' })]);
    daemon = await startDaemon({ config: base(`  - url: ${a.monitorUrl}\n`) });
    await waitFor(async () => (await daemon.metric('nats_autoprof_up', { server: 'life-a' })) === 1, { what: 'life-a up' });
  });
  after(async () => {
    await daemon?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
    cleanupTempDirs();
    removeTempDirs();
  });

  it('SIGHUP with a broken file keeps the running config and reports the failure', async () => {
    daemon.writeConfig('poll:\n  interval: [not, a, duration]\n');
    daemon.proc.kill('SIGHUP');
    await waitFor(async () => (await daemon.metric('nats_autoprof_config_last_reload_success')) === 0, { what: 'reload failure metric' });
    const failure = daemon.logsWith(/configuration reload failed/)[0];
    assert.ok(failure, 'a log line for the failed reload');
    assert.match(String(failure['errors']), /poll\.interval/);
    const polls = (await daemon.metric('nats_autoprof_polls_total', { server: 'life-a', result: 'ok' })) ?? 0;
    await waitFor(async () => ((await daemon.metric('nats_autoprof_polls_total', { server: 'life-a', result: 'ok' })) ?? 0) > polls + 1, {
      what: 'polling to go on',
    });
  });

  it('SIGHUP adding a server starts polling it; removing one drops its series', async () => {
    const before = (await daemon.metric('nats_autoprof_config_last_reload_success_timestamp_seconds')) ?? 0;
    daemon.writeConfig(base(`  - url: ${a.monitorUrl}\n  - url: ${b.monitorUrl}\n`));
    daemon.proc.kill('SIGHUP');
    await waitFor(async () => (await daemon.metric('nats_autoprof_up', { server: 'life-b' })) === 1, { what: 'life-b up' });
    assert.equal(await daemon.metric('nats_autoprof_config_last_reload_success'), 1);
    assert.ok(((await daemon.metric('nats_autoprof_config_last_reload_success_timestamp_seconds')) ?? 0) >= before);

    daemon.writeConfig(base(`  - url: ${b.monitorUrl}\n`));
    daemon.proc.kill('SIGHUP');
    await waitFor(async () => !(await daemon.metrics()).includes('server="life-a"'), { what: 'life-a series to disappear' });
    assert.equal(await daemon.metric('nats_autoprof_up', { server: 'life-b' }), 1);
  });

  it('warns at startup about a prof_url that is not on loopback (no traffic is sent to it: no rule fires)', async () => {
    const d = await startDaemon({
      config: base(`  - url: ${a.monitorUrl}\n    prof_url: http://10.0.0.1:65432\n  - url: ${b.monitorUrl}\n    prof_url: http://127.0.0.1:65432\n`),
    });
    try {
      const warnings = await waitFor(() => {
        const w = d.logsWith(/prof_url is not a loopback address/);
        return w.length > 0 ? w : undefined;
      }, { what: 'the warning' });
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0]?.['url'], 'http://10.0.0.1:65432');
      assert.equal(warnings[0]?.['level'], 'warn');
    } finally {
      await d.stop();
    }
  });

  it('SIGTERM stops in order and exits 0', async () => {
    const from = daemon.logs.length;
    // The helper sends SIGKILL after 30 s (exit code null): exiting 0 means it stopped by itself.
    const code = await daemon.stop('SIGTERM');
    assert.equal(code, 0);
    const after = daemon.logs.slice(from).map((l) => l.msg);
    const stopping = after.indexOf('stopping');
    assert.ok(stopping >= 0, 'logs that it is stopping');
    assert.equal(after.indexOf('nats-autoprof stopped'), after.length - 1, 'the last line says it stopped');
    assert.ok(stopping < after.length - 1);
    assert.equal(daemon.logsWith('nats-autoprof stopped').length, 1);
  });
});
