/**
 * The configuration as an operator meets it through the built CLI: every bad configuration added with
 * the zod schema exits 2 with its exact message, a missing file says where it was looked for and how to
 * start, a mistyped option gets a did-you-mean, `check` shows secret files instead of secrets and warns
 * about a configuration that watches nothing.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { ROOT, removeTempDirs, tempDir } from '../helpers/daemon.js';
import { runCommand } from '../helpers/run.js';

const MAIN = join(ROOT, 'dist', 'main.js');
const DIR = join(ROOT, 'test', 'fixtures', 'configs', 'invalid');
/** A clean environment: no $NATS_AUTOPROF_CONFIG from the machine running the tests. */
const cli = (args: string[], env: Record<string, string> = {}) => runCommand(process.execPath, [MAIN, ...args], env);

describe('check on the bad configurations of the cross-field rules', () => {
  const fixtures = readdirSync(DIR).filter((f) => f.endsWith('.yaml') && Number(f.slice(0, 2)) >= 54);

  it('there are at least 15 of them', () => {
    assert.ok(fixtures.length >= 15, `only ${fixtures.length}`);
  });

  for (const fixture of fixtures) {
    it(`${fixture}: exit code 2 and the exact message on stderr, nothing on stdout`, async () => {
      const r = await cli(['check', '--config', join(DIR, fixture)]);
      const expected = readFileSync(join(DIR, fixture.replace(/\.yaml$/, '.expected')), 'utf8');
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr.replaceAll(DIR, '<dir>'), expected);
      assert.equal(r.stdout, '');
    });
  }
});

describe('the CLI around the configuration', () => {
  after(removeTempDirs);

  it('no configuration file: says where it looked and how to start, for each way of naming it', async () => {
    const dir = tempDir();
    const named = join(dir, 'nope.yaml');
    const start = 'to start, copy config/example.yaml (shipped with nats-autoprof) there and edit it';
    const byDefault = await cli(['check']);
    assert.equal(byDefault.code, 2);
    assert.equal(
      byDefault.stderr,
      'invalid configuration ./nats-autoprof.yaml: 1 problem\n' +
        `  ./nats-autoprof.yaml: cannot read the file: no such file (hint: without --config or $NATS_AUTOPROF_CONFIG, nats-autoprof reads ./nats-autoprof.yaml; ${start}, or pass --config FILE)\n`,
    );
    const byFlag = await cli(['run', '--config', named]);
    assert.equal(byFlag.code, 2);
    assert.equal(byFlag.stderr, `invalid configuration ${named}: 1 problem\n  ${named}: cannot read the file: no such file (hint: the file was named by --config; ${start})\n`);
    const byEnv = await cli(['check'], { NATS_AUTOPROF_CONFIG: named });
    assert.equal(byEnv.code, 2);
    assert.match(byEnv.stderr, /\(hint: the file was named by \$NATS_AUTOPROF_CONFIG \(no --config was given\); to start, copy config\/example\.yaml/);
  });

  it('a mistyped option gets a did-you-mean and a pointer to --help', async () => {
    const r = await cli(['check', '--confg', 'x.yaml']);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'nats-autoprof: unknown option "--confg"; did you mean --config? (the options are in --help)\n');
    const far = await cli(['run', '--frobnicate']);
    assert.equal(far.code, 2);
    assert.equal(far.stderr, 'nats-autoprof: unknown option "--frobnicate" (the options are in --help)\n');
  });

  it('check shows the file a secret was read from, and redacts inline secrets', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'token'), 'very-secret-token-123\n');
    writeFileSync(join(dir, 'pw'), 'very-secret-password-456\n');
    const file = join(dir, 'c.yaml');
    writeFileSync(
      file,
      'http:\n  auth:\n    bearer_token_file: token\nservers:\n  - url: http://127.0.0.1:8222\n    basic_auth: { username: m, password_file: pw }\n' +
        '  - url: http://127.0.0.2:8222\n    bearer_token: inline-secret-789\n',
    );
    const r = await cli(['check', '--config', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /very-secret|inline-secret/);
    assert.match(r.stdout, new RegExp(`\n  auth:\n    bearer_token_file: ${join(dir, 'token')}\n`));
    assert.match(r.stdout, new RegExp(`basic_auth:\n      username: m\n      password_file: ${join(dir, 'pw')}\n`));
    assert.match(r.stdout, /bearer_token: "\[redacted\]"/);
    assert.equal(r.stderr, '');
  });

  it('check warns about a configuration that watches nothing, and still exits 0', async () => {
    const dir = tempDir();
    const warning =
      'warning: this configuration watches no server: servers is empty and system_account.discover is not true; ' +
      'add servers (- url: http://host:8222), or system_account with discover: true\n';
    for (const text of ['{}\n', 'servers: []\n', 'system_account:\n  url: nats://127.0.0.1:4222\n']) {
      const file = join(dir, 'c.yaml');
      writeFileSync(file, text);
      const r = await cli(['check', '--config', file]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, warning, text);
      assert.match(r.stdout, /^log:\n {2}level: info\n/);
    }
    const file = join(dir, 'ok.yaml');
    writeFileSync(file, 'system_account:\n  url: nats://127.0.0.1:4222\n  discover: true\n');
    const r = await cli(['check', '--config', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
  });
});
