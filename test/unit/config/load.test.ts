import * as assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';

import { ConfigError } from '../../../src/errors.js';
import { Secret } from '../../../src/secret.js';
import { expandEnv, loadConfig, parseConfigText } from '../../../src/config/load.js';
import { renderConfig } from '../../../src/config/render.js';
import { KEYS } from '../../../src/config/schema.js';
import type { Config } from '../../../src/config/types.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const EXAMPLE = path.join(ROOT, 'config/example.yaml');
const MiB = 1024 * 1024;

/** Parses `text` as `<dir>/config.yaml`; fails the test with the full message on a ConfigError. */
function parse(text: string, env: Record<string, string | undefined> = {}, dir = '/etc/nats-autoprof'): Config {
  return parseConfigText(text, path.join(dir, 'config.yaml'), env);
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.message.split('\n').slice(1).map((l) => l.trim());
  }
  assert.fail('expected a ConfigError');
}

/** Everything in a Config that comes from a default when the file does not set it. */
function defaultedParts(c: Config): unknown {
  return {
    log: c.log,
    http: c.http,
    poll: c.poll,
    shutdownTimeoutMs: c.shutdownTimeoutMs,
    capture: c.capture,
    retention: c.storage.retention,
    alerts: c.alerts,
  };
}

describe('defaults', () => {
  it('a minimal {} config gets every documented default', () => {
    const c = parse('{}');
    assert.deepEqual(c, {
      file: '/etc/nats-autoprof/config.yaml',
      log: { level: 'info' },
      http: { listen: '0.0.0.0:9745', host: '0.0.0.0', port: 9745, auth: { bearerToken: undefined, metrics: false }, tls: undefined, externalUrl: undefined },
      ui: { historyMs: 600_000, cacheSizeBytes: 64 * MiB },
      poll: { intervalMs: 5_000, timeoutMs: 2_000, maxBodyBytes: 4 * MiB, maxInFlight: 128 },
      servers: [],
      systemAccount: undefined,
      triggers: [],
      capture: {
        via: 'auto',
        cpuDurationMs: 5_000,
        timeoutMs: 10_000,
        allocsWindowMs: 10_000,
        maxConcurrent: 4,
        limit: { count: 12, windowMs: 3_600_000 },
        maxProfileBytes: 64 * MiB,
      },
      storage: {
        dir: '/etc/nats-autoprof/profiles',
        retention: { maxIncidentsPerServer: 50, maxTotalSizeBytes: 2 * 1024 * MiB, maxAgeMs: 14 * 86_400_000, intervalMs: 600_000 },
      },
      alerts: { labels: ['server_name', 'server', 'instance'], profiles: ['cpu', 'allocs'], cooldownMs: 600_000 },
      shutdownTimeoutMs: 20_000,
    });
  });

  it('a system_account with only a url gets the discovery defaults', () => {
    const sys = parse('system_account: { url: "nats://h:4222" }').systemAccount;
    assert.deepEqual(
      sys && { discover: sys.discover, select: sys.select, stallMs: sys.stallMs, forgetAfterMs: sys.forgetAfterMs, profUrls: sys.profUrls },
      { discover: false, select: { names: [], clusters: [], tags: [] }, stallMs: 250, forgetAfterMs: 300_000, profUrls: {} },
    );
  });

  it('empty http.auth, http.tls, select, prof_urls and alerts mean defaults', () => {
    const c = parse('http:\n  auth:\n  tls:\nsystem_account:\n  url: nats://h:4222\n  select:\n  prof_urls:\nalerts:\n');
    assert.deepEqual(c.http.auth, { bearerToken: undefined, metrics: false });
    assert.equal(c.http.tls, undefined);
    assert.deepEqual(c.systemAccount?.select, { names: [], clusters: [], tags: [] });
    assert.deepEqual(c.systemAccount.profUrls, {});
    assert.deepEqual(c.alerts, parse('{}').alerts);
  });

  it('empty sections (`poll:` with nothing under it) mean defaults', () => {
    const c = parse('poll:\nservers:\ntriggers:\ncapture:\n  limit:\n');
    assert.deepEqual(defaultedParts(c), defaultedParts(parse('{}')));
    assert.deepEqual(c.servers, []);
  });

  it('a trigger gets its defaults: for 0s, rearm_below = above, cooldown 10m, profiles [cpu, allocs], every server', () => {
    const c = parse('triggers:\n  - { name: t, metric: cpu_per_core, above: 75.5 }\n');
    assert.deepEqual(c.triggers, [
      { name: 't', metric: 'cpu_per_core', above: 75.5, forMs: 0, rearmBelow: 75.5, cooldownMs: 600_000, rateMs: undefined, escalatePercent: undefined, escalateMax: 0, profiles: ['cpu', 'allocs'], servers: undefined },
    ]);
  });
});

describe('config/example.yaml', () => {
  it('loads standalone and says what the task asked for', async () => {
    const c = await loadConfig(EXAMPLE, {});
    assert.equal(c.file, EXAMPLE);
    assert.deepEqual(c.servers, [
      { url: 'http://127.0.0.1:8222', name: 'nats-a', profUrl: 'http://127.0.0.1:65432', headers: {}, basicAuth: undefined, bearerToken: undefined, tls: undefined },
    ]);
    assert.equal(c.systemAccount, undefined);
    assert.deepEqual(c.triggers, [
      { name: 'high-cpu', metric: 'cpu', above: 80, forMs: 15_000, rearmBelow: 60, cooldownMs: 600_000, rateMs: undefined, escalatePercent: undefined, escalateMax: 0, profiles: ['cpu', 'allocs'], servers: undefined },
      { name: 'high-memory', metric: 'mem', above: 1024 * MiB, forMs: 30_000, rearmBelow: 1024 * MiB, cooldownMs: 600_000, rateMs: undefined, escalatePercent: undefined, escalateMax: 0, profiles: ['heap', 'allocs', 'goroutine'], servers: undefined },
      // The recipes (issue 15).
      { name: 'slow-consumers', metric: 'slow_consumers', above: 0, forMs: 0, rearmBelow: 0, cooldownMs: 600_000, rateMs: 60_000, escalatePercent: undefined, escalateMax: 0, profiles: ['goroutine', 'cpu'], servers: undefined },
      { name: 'connection-surge', metric: 'connections', above: 5000, forMs: 0, rearmBelow: 5000, cooldownMs: 600_000, rateMs: undefined, escalatePercent: 50, escalateMax: 2, profiles: ['goroutine'], servers: undefined },
      { name: 'jetstream-memory', metric: 'jetstream.stats.memory', above: Math.round(3.2 * 1024 * MiB), forMs: 0, rearmBelow: Math.round(3.2 * 1024 * MiB), cooldownMs: 600_000, rateMs: undefined, escalatePercent: undefined, escalateMax: 0, profiles: ['heap', 'allocs'], servers: undefined },
    ]);
    assert.equal(c.storage.dir, path.join(ROOT, 'config/profiles'));
    assert.deepEqual(c.http.auth, { bearerToken: undefined, metrics: false });
    assert.equal(c.http.tls, undefined);
    assert.deepEqual(c.alerts, { labels: ['server_name', 'server', 'instance'], profiles: ['cpu', 'allocs'], cooldownMs: 600_000 });
  });

  it('its commented-out system_account block loads once uncommented, with the documented defaults', async () => {
    const text = readFileSync(EXAMPLE, 'utf8');
    const start = text.indexOf('# system_account:');
    const end = text.indexOf('\n\n', start);
    const block = text
      .slice(start, end)
      .split('\n')
      .map((l) => l.replace(/^# ?/, ''))
      .join('\n');
    const sys = parse(block, { NATS_SYS_PASSWORD: 'pw' }).systemAccount;
    assert.ok(sys !== undefined);
    assert.deepEqual(
      { discover: sys.discover, select: sys.select, stallMs: sys.stallMs, forgetAfterMs: sys.forgetAfterMs, timeoutMs: sys.timeoutMs },
      { discover: false, select: { names: [], clusters: [], tags: [] }, stallMs: 250, forgetAfterMs: 300_000, timeoutMs: 5_000 },
    );
    assert.deepEqual(sys.profUrls, { 'nats-old-1': 'http://127.0.0.1:65432' });
  });

  it('shows every default as its value (the same values {} gets)', async () => {
    const c = await loadConfig(EXAMPLE, {});
    assert.deepEqual(defaultedParts(c), defaultedParts(parse('{}')));
  });

  it('documents every key of the schema', () => {
    const text = readFileSync(EXAMPLE, 'utf8');
    const missing = Object.values(KEYS)
      .flat()
      .filter((key) => !new RegExp(`(^|[\\s{,#])${key}:`, 'm').test(text));
    assert.deepEqual(missing, []);
  });

  it('keeps secrets and system_account commented out', () => {
    const text = readFileSync(EXAMPLE, 'utf8');
    const live = text.split('\n').filter((l) => !/^\s*#/.test(l));
    assert.deepEqual(live.filter((l) => /(password|token|nkey_seed|system_account|headers)\s*:/.test(l)), []);
    assert.match(text, /#\s+password: \$\{NATS_SYS_PASSWORD\}/);
  });
});

describe('environment expansion', () => {
  it('replaces ${VAR} and ${VAR:-default} from the env it is given, and $${ is a literal ${', () => {
    const c = parse(
      [
        'servers:',
        '  - url: http://${HOST}:${PORT:-8222}/${PREFIX:-nats}',
        '    headers: { X-Literal: "$${NOT_A_VAR}", X-Both: "${A}-${B:-b}", X-Dollar: "cost $5 $x" }',
        'log: { level: "${LEVEL:-info}" }',
      ].join('\n'),
      { HOST: '10.1.2.3', PREFIX: '', A: 'a', LEVEL: 'debug' },
    );
    assert.equal(c.servers[0]?.url, 'http://10.1.2.3:8222/nats');
    assert.equal(c.servers[0]?.headers['X-Literal']?.reveal(), '${NOT_A_VAR}');
    assert.equal(c.servers[0]?.headers['X-Both']?.reveal(), 'a-b');
    assert.equal(c.servers[0]?.headers['X-Dollar']?.reveal(), 'cost $5 $x');
    assert.equal(c.log.level, 'debug');
  });

  it('expanded numbers and booleans are accepted where numbers and booleans are expected', () => {
    const c = parse(
      'triggers:\n  - { name: t, metric: cpu, above: "${CPU_LIMIT:-80}" }\nservers:\n  - url: https://h:8222\n    tls: { insecure: "${INSECURE}" }\n',
      { INSECURE: 'true' },
    );
    assert.equal(c.triggers[0]?.above, 80);
    assert.equal(c.servers[0]?.tls?.insecure, true);
  });

  it('an unset variable without default is a problem at that value, and all of them are reported', () => {
    assert.deepEqual(problemsOf(() => parse('poll:\n  interval: ${POLL}\nsystem_account:\n  url: nats://h:4222\n  user: sys\n  password: ${NATS_SYS_PASSWORD}\n')), [
      '/etc/nats-autoprof/config.yaml:2:13: poll.interval: environment variable POLL is not set (hint: export it, or write ${POLL:-default})',
      '/etc/nats-autoprof/config.yaml:6:13: system_account.password: environment variable NATS_SYS_PASSWORD is not set (hint: export it, or write ${NATS_SYS_PASSWORD:-default})',
    ]);
  });

  it('never reads process.env', () => {
    process.env['NATS_AUTOPROF_TEST_ONLY'] = 'debug';
    try {
      assert.deepEqual(problemsOf(() => parse('log: { level: "${NATS_AUTOPROF_TEST_ONLY}" }')), [
        '/etc/nats-autoprof/config.yaml:1:15: log.level: environment variable NATS_AUTOPROF_TEST_ONLY is not set (hint: export it, or write ${NATS_AUTOPROF_TEST_ONLY:-default})',
      ]);
    } finally {
      delete process.env['NATS_AUTOPROF_TEST_ONLY'];
    }
  });

  it('expandEnv: the table', () => {
    const env = { A: 'x', EMPTY: '' };
    const table: [string, string, number][] = [
      ['plain', 'plain', 0],
      ['${A}', 'x', 0],
      ['${A:-d}', 'x', 0],
      ['${EMPTY:-d}', 'd', 0],
      ['${EMPTY}', '', 0],
      ['${UNSET:-}', '', 0],
      ['${UNSET:-a:-b}', 'a:-b', 0],
      ['$${A}', '${A}', 0],
      ['$$${A}', '$${A}', 0], // left to right: a lone $, then $${
      ['${UNSET}', '', 1],
      ['${A', '${A', 1],
      ['${A B}', '${A B}', 1],
    ];
    for (const [text, value, problems] of table) {
      const out = expandEnv(text, env);
      assert.equal(out.value, value, text);
      assert.equal(out.problems.length, problems, text);
    }
  });
});

describe('secrets', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'autoprof-config-'));
    mkdirSync(path.join(dir, 'secrets'));
    writeFileSync(path.join(dir, 'secrets/monitor-password'), 'm0nitor-pw\n');
    writeFileSync(path.join(dir, 'secrets/bearer'), 'bearer-t0ken \n\n');
    writeFileSync(path.join(dir, 'secrets/sys-password'), 'sys-pw-from-file');
    writeFileSync(path.join(dir, 'secrets/nkey'), 'SUAEXAMPLESEED\n');
    writeFileSync(path.join(dir, 'secrets/empty'), '\n \n');
    writeFileSync(path.join(dir, 'sys.creds'), 'creds');
    writeFileSync(path.join(dir, 'ca.pem'), 'ca');
    writeFileSync(path.join(dir, 'client.pem'), 'cert');
    writeFileSync(path.join(dir, 'client-key.pem'), 'key');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const SECRET_VALUES = ['m0nitor-pw', 'bearer-t0ken', 'sys-pw-from-file', 'SUAEXAMPLESEED', 'inline-pw', 'hdr-value', 'inline-token'];

  async function load(text: string, env: Record<string, string> = {}): Promise<Config> {
    const file = path.join(dir, `c-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, text);
    return loadConfig(file, env);
  }

  const FULL = [
    'servers:',
    '  - url: https://a.example:8222/',
    '    name: a',
    '    headers: { X-Scope: hdr-value }',
    '    basic_auth: { username: mon, password_file: secrets/monitor-password }',
    '    tls: { ca: ca.pem, cert: ./client.pem, key: client-key.pem }',
    '  - url: https://b.example:8222/prefix/',
    '    bearer_token_file: ./secrets/bearer',
    '  - url: https://c.example:8222',
    '    basic_auth: { username: mon, password: "${PW}" }',
    'system_account:',
    '  url: [nats://a:4222, tls://b:4222]',
    '  user: sys',
    '  password_file: secrets/sys-password',
    '  tls: { ca: ca.pem, insecure: true }',
  ].join('\n');

  it('reads <key>_file relative to the config file, trims trailing whitespace, and makes every secret a Secret', async () => {
    const c = await load(FULL, { PW: 'inline-pw' });
    const [a, b, cc] = c.servers;
    assert.ok(a?.basicAuth?.password instanceof Secret);
    assert.equal(a.basicAuth.password.reveal(), 'm0nitor-pw');
    assert.equal(a.basicAuth.username, 'mon');
    assert.ok(a.headers['X-Scope'] instanceof Secret);
    assert.equal(a.headers['X-Scope'].reveal(), 'hdr-value');
    assert.deepEqual(a.tls, { ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'client.pem'), key: path.join(dir, 'client-key.pem'), insecure: false });
    assert.equal(b?.url, 'https://b.example:8222/prefix');
    assert.ok(b.bearerToken instanceof Secret);
    assert.equal(b.bearerToken.reveal(), 'bearer-t0ken');
    assert.equal(cc?.basicAuth?.password.reveal(), 'inline-pw');
    const sys = c.systemAccount;
    assert.deepEqual(sys?.urls, ['nats://a:4222', 'tls://b:4222']);
    assert.ok(sys.password instanceof Secret);
    assert.equal(sys.password.reveal(), 'sys-pw-from-file');
    assert.equal(sys.user, 'sys');
    assert.equal(sys.timeoutMs, 5_000);
    assert.equal(sys.tls?.insecure, true);
  });

  it('token_file, nkey_seed_file and creds', async () => {
    const t = await load('system_account:\n  url: nats://a:4222\n  token: inline-token\n');
    assert.equal(t.systemAccount?.token?.reveal(), 'inline-token');
    const n = await load('system_account:\n  url: nats://a:4222\n  nkey_seed_file: secrets/nkey\n');
    assert.equal(n.systemAccount?.nkeySeed?.reveal(), 'SUAEXAMPLESEED');
    const cr = await load('system_account:\n  url: nats://a:4222\n  creds: sys.creds\n');
    assert.equal(cr.systemAccount?.creds, path.join(dir, 'sys.creds'));
  });

  it('no secret value reaches JSON.stringify, util.inspect or renderConfig', async () => {
    const c = await load(FULL, { PW: 'inline-pw' });
    for (const shown of [JSON.stringify(c), inspect(c, { depth: Infinity }), renderConfig(c)]) {
      for (const secret of SECRET_VALUES) assert.ok(!shown.includes(secret), `${secret} leaked`);
      assert.ok(shown.includes('[redacted]'));
    }
  });

  it('an empty secret file, a directory, and a number as password are problems that never echo a value', async () => {
    await assert.rejects(
      load('system_account:\n  url: nats://a:4222\n  user: sys\n  password: 123456\n  tls: { ca: secrets }\n'),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.ok(!err.message.includes('123456'));
        assert.deepEqual(
          err.problems.map((p) => `${p.line}:${p.column}: ${p.path}: ${p.message}`),
          ['4:13: system_account.password: expected a string, got a number', `5:14: system_account.tls.ca: cannot use ${dir}/secrets: it is a directory`],
        );
        return true;
      },
    );
    await assert.rejects(load('servers:\n  - url: http://a:8222\n    bearer_token_file: secrets/empty\n'), {
      message: new RegExp(`:3:24: servers\\[0\\]\\.bearer_token_file: ${dir}/secrets/empty is empty`),
    });
  });

  it('parseConfigText takes a readFile for secret files', () => {
    const read: string[] = [];
    const c = parseConfigText('servers:\n  - url: http://a:8222\n    bearer_token_file: tok\n', '/cfg/x.yaml', {}, (file) => {
      read.push(file);
      return 'fake-token\n';
    });
    assert.deepEqual(read, ['/cfg/tok']);
    assert.equal(c.servers[0]?.bearerToken?.reveal(), 'fake-token');
  });

  it('the result is deeply frozen', async () => {
    const c = await load(FULL, { PW: 'inline-pw' });
    for (const part of [c, c.log, c.http, c.poll, c.servers, c.servers[0], c.servers[0]?.headers, c.servers[0]?.basicAuth, c.servers[0]?.tls, c.systemAccount, c.systemAccount?.urls, c.capture, c.capture.limit, c.storage, c.storage.retention]) {
      assert.ok(Object.isFrozen(part));
    }
    const t = parse('triggers:\n  - { name: t, metric: cpu, above: 1 }\n');
    assert.ok(Object.isFrozen(t.triggers) && Object.isFrozen(t.triggers[0]) && Object.isFrozen(t.triggers[0]?.profiles));
    assert.throws(() => {
      (c.poll as { intervalMs: number }).intervalMs = 1;
    }, TypeError);
    assert.throws(() => (c.servers as unknown[]).push({}), TypeError);
  });

  it('renderConfig round-trips: rendering what it rendered gives the same text', async () => {
    const c = await load(`${FULL}\ntriggers:\n  - { name: m, metric: mem, above: 1.5GiB, rearm_below: 1000MB, servers: [a], profiles: [heap] }\n  - { name: c, metric: cpu, above: 250, for: 1m30s }\n`, { PW: 'inline-pw' });
    const text = renderConfig(c);
    const again = parseConfigText(text, c.file, {});
    assert.equal(renderConfig(again), text);
    assert.equal(JSON.stringify(again), JSON.stringify(c));
    assert.match(text, /above: 1536MiB\n/);
    assert.match(text, /rearm_below: 1GB\n/);
    assert.match(text, /above: 250\n {4}for: 1m30s\n/);
    assert.match(text, /password: "\[redacted\]"/);
  });

  it('renderConfig of {} is the documented defaults', () => {
    const text = renderConfig(parse('{}'));
    assert.equal(
      text,
      [
        'log:',
        '  level: info',
        'http:',
        '  listen: 0.0.0.0:9745',
        '  auth:',
        '    metrics: false',
        'ui:',
        '  history: 10m',
        '  cache_size: 64MiB',
        'poll:',
        '  interval: 5s',
        '  timeout: 2s',
        '  max_body_size: 4MiB',
        '  max_in_flight: 128',
        'shutdown_timeout: 20s',
        'servers: []',
        'triggers: []',
        'alerts:',
        '  labels:',
        '    - server_name',
        '    - server',
        '    - instance',
        '  profiles:',
        '    - cpu',
        '    - allocs',
        '  cooldown: 10m',
        'capture:',
        '  via: auto',
        '  cpu_duration: 5s',
        '  timeout: 10s',
        '  allocs_window: 10s',
        '  max_concurrent: 4',
        '  limit:',
        '    count: 12',
        '    window: 1h',
        '  max_profile_size: 64MiB',
        'storage:',
        '  dir: /etc/nats-autoprof/profiles',
        '  retention:',
        '    max_incidents_per_server: 50',
        '    max_total_size: 2GiB',
        '    max_age: 14d',
        '    interval: 10m',
        '',
      ].join('\n'),
    );
  });
});

describe('http, discovery and alerts', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'autoprof-config-'));
    writeFileSync(path.join(dir, 'api-token'), 'api-t0ken\n');
    writeFileSync(path.join(dir, 'server.pem'), 'cert');
    writeFileSync(path.join(dir, 'server-key.pem'), 'key');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function load(text: string, env: Record<string, string> = {}): Promise<Config> {
    const file = path.join(dir, `c-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, text);
    return loadConfig(file, env);
  }

  const FULL = [
    'http:',
    '  listen: "127.0.0.1:9999"',
    '  auth: { bearer_token_file: api-token, metrics: true }',
    '  tls: { cert: server.pem, key: ./server-key.pem }',
    '  external_url: "https://autoprof.example.com/base/"',
    'ui: { history: 90m, cache_size: 256MiB }',
    'poll: { interval: 2s }',
    'system_account:',
    '  url: nats://a:4222',
    '  discover: true',
    '  select:',
    '    names: [nats-east-*, nats-?-1, nats-west-2]',
    '    clusters: [east, West]',
    '    tags: [AZ:EU-1, ssd]',
    '  stall: 10ms',
    '  forget_after: 4s',
    '  prof_urls:',
    '    nats-old-1: http://10.0.0.1:65432/',
    '    __proto__: https://10.0.0.2:65432',
    'triggers:',
    '  - { name: t, metric: cpu, above: 80, servers: [nats-east-1, nats.west_2] }',
    'alerts:',
    '  labels: [instance, Server_Name]',
    '  profiles: [goroutine]',
    '  cooldown: 0s',
  ].join('\n');

  it('reads every new key', async () => {
    const c = await load(FULL);
    assert.deepEqual(
      { ...c.http, auth: { ...c.http.auth, bearerToken: c.http.auth.bearerToken?.reveal() } },
      {
        listen: '127.0.0.1:9999',
        host: '127.0.0.1',
        port: 9999,
        auth: { bearerToken: 'api-t0ken', metrics: true },
        tls: { cert: path.join(dir, 'server.pem'), key: path.join(dir, 'server-key.pem') },
        externalUrl: 'https://autoprof.example.com/base',
      },
    );
    assert.ok(c.http.auth.bearerToken instanceof Secret);
    const sys = c.systemAccount;
    assert.ok(sys !== undefined);
    assert.equal(sys.discover, true);
    assert.deepEqual(sys.select, { names: ['nats-east-*', 'nats-?-1', 'nats-west-2'], clusters: ['east', 'West'], tags: ['az:eu-1', 'ssd'] });
    assert.equal(sys.stallMs, 10);
    assert.equal(sys.forgetAfterMs, 4_000);
    assert.deepEqual(Object.entries(sys.profUrls), [
      ['nats-old-1', 'http://10.0.0.1:65432'],
      ['__proto__', 'https://10.0.0.2:65432'],
    ]);
    assert.equal(Object.getPrototypeOf(sys.profUrls), Object.prototype);
    assert.deepEqual(c.alerts, { labels: ['instance', 'Server_Name'], profiles: ['goroutine'], cooldownMs: 0 });
    for (const part of [c.http.auth, c.http.tls, sys.select, sys.select.tags, sys.profUrls, c.alerts, c.alerts.labels]) {
      assert.ok(Object.isFrozen(part));
    }
  });

  it('bearer_token inline (from the environment) and redacted everywhere', async () => {
    const c = await load('http:\n  auth:\n    bearer_token: ${NATS_AUTOPROF_TOKEN}\n', { NATS_AUTOPROF_TOKEN: 'env-t0ken' });
    assert.equal(c.http.auth.bearerToken?.reveal(), 'env-t0ken');
    assert.equal(c.http.auth.metrics, false);
    for (const shown of [JSON.stringify(c), inspect(c, { depth: Infinity }), renderConfig(c)]) {
      assert.ok(!shown.includes('env-t0ken'));
    }
    assert.match(renderConfig(c), /\nhttp:\n {2}listen: 0\.0\.0\.0:9745\n {2}auth:\n {4}bearer_token: "\[redacted\]"\n {4}metrics: false\n/);
  });

  it('renderConfig round-trips the new keys', async () => {
    const c = await load(FULL);
    const text = renderConfig(c);
    assert.ok(!text.includes('api-t0ken'));
    const again = parseConfigText(text, c.file, {});
    assert.equal(renderConfig(again), text);
    assert.equal(JSON.stringify(again), JSON.stringify(c));
    assert.match(text, /\n {2}stall: 10ms\n {2}forget_after: 4s\n {2}prof_urls:\n {4}nats-old-1: http:\/\/10\.0\.0\.1:65432\n {4}__proto__: /);
    assert.match(text, /\n {2}tls:\n {4}cert: \/.*\/server\.pem\n/);
    assert.match(text, /\n {2}external_url: https:\/\/autoprof\.example\.com\/base\nui:\n {2}history: 1h30m\n {2}cache_size: 256MiB\n/);
    assert.match(text, /\nalerts:\n {2}labels:\n {4}- instance\n {4}- Server_Name\n {2}profiles:\n {4}- goroutine\n {2}cooldown: 0s\n/);
  });

  it('with discover: true, triggers may name servers that are not configured (but not globs)', () => {
    const text = (discover: boolean, names: string): string =>
      `system_account: { url: "nats://h:4222", discover: ${discover} }\n` +
      `servers: [{ url: "http://h:8222", name: nats-a }]\n` +
      `triggers:\n  - { name: t, metric: cpu, above: 80, servers: ${names} }\n`;
    assert.deepEqual(parse(text(true, '[nats-a, nats-b, nats.c_1]')).triggers[0]?.servers, ['nats-a', 'nats-b', 'nats.c_1']);
    assert.deepEqual(problemsOf(() => parse(text(true, '[nats-b, nats-b, "nats-*"]'))), [
      '/etc/nats-autoprof/config.yaml:4:58: triggers[0].servers[1]: server "nats-b" is listed twice',
      '/etc/nats-autoprof/config.yaml:4:66: triggers[0].servers[2]: "nats-*" is not a valid server name (hint: use letters, digits, ".", "_" and "-" only; wildcards are not allowed here)',
    ]);
    assert.deepEqual(problemsOf(() => parse(text(false, '[nats-b]'))), [
      '/etc/nats-autoprof/config.yaml:4:50: triggers[0].servers[0]: unknown server "nats-b" (hint: the configured server names are nats-a)',
    ]);
  });

  it('select, stall, forget_after and prof_urls are allowed without discover', () => {
    const sys = parse('system_account:\n  url: nats://h:4222\n  select: { tags: [A] }\n  stall: 10s\n  forget_after: 1s\n  prof_urls: { a: "http://h:1" }\npoll: { interval: 500ms, timeout: 100ms }\n').systemAccount;
    assert.deepEqual(sys?.select.tags, ['a']);
    assert.equal(sys.stallMs, 10_000);
    assert.equal(sys.forgetAfterMs, 1_000);
    assert.equal(sys.discover, false);
  });

  it('the default forget_after is checked against poll.interval only with discover: true', () => {
    assert.equal(parse('system_account: { url: "nats://h:4222" }\npoll: { interval: 10m }').systemAccount?.forgetAfterMs, 300_000);
    assert.deepEqual(problemsOf(() => parse('system_account: { url: "nats://h:4222", discover: true }\npoll: { interval: 10m }')), [
      '/etc/nats-autoprof/config.yaml:1:17: system_account.forget_after: the default forget_after 5m is shorter than two poll intervals (20m) (hint: set forget_after: 20m or more)',
    ]);
  });
});

describe('values', () => {
  it('listen: host:port, [v6]:port and :port', () => {
    const listen = (text: string): unknown => {
      const { listen: l, host, port } = parse(text).http;
      return { listen: l, host, port };
    };
    assert.deepEqual(listen('http: { listen: ":8080" }'), { listen: '0.0.0.0:8080', host: '0.0.0.0', port: 8080 });
    assert.deepEqual(listen('http: { listen: "[::1]:0" }'), { listen: '[::1]:0', host: '::1', port: 0 });
    assert.deepEqual(listen('http: { listen: "localhost:65535" }'), { listen: 'localhost:65535', host: 'localhost', port: 65535 });
  });

  it('server URLs lose a trailing slash and keep a path prefix; system_account.url may be one string', () => {
    const c = parse('servers:\n  - url: HTTP://Example.COM:8222//\n    prof_url: http://10.0.0.1:65432/\n  - url: https://proxy/nats/a/\nsystem_account: { url: "tls://h:4222" }\n');
    assert.deepEqual(c.servers.map((s) => [s.url, s.profUrl]), [
      ['http://example.com:8222', 'http://10.0.0.1:65432'],
      ['https://proxy/nats/a', undefined],
    ]);
    assert.deepEqual(c.systemAccount?.urls, ['tls://h:4222']);
  });

  it('YAML anchors, aliases and << merge keys work', () => {
    const c = parse(
      'triggers:\n  - &base { name: a, metric: cpu, above: 80, cooldown: 1m }\n  - <<: *base\n    name: b\n    above: 90\n',
    );
    assert.deepEqual(c.triggers.map((t) => [t.name, t.above, t.cooldownMs]), [
      ['a', 80, 60_000],
      ['b', 90, 60_000],
    ]);
  });

  it('a 15s CPU profile is fine with a system account; via prof_port allows up to 5m', () => {
    assert.equal(parse('system_account: { url: "nats://h:4222" }\ncapture: { cpu_duration: 15s }').capture.cpuDurationMs, 15_000);
    assert.equal(parse('servers: [{ url: "http://h:8222", prof_url: "http://h:65432" }]\ncapture: { via: prof_port, cpu_duration: 5m }').capture.cpuDurationMs, 300_000);
  });

  it('a missing file is a ConfigError', async () => {
    await assert.rejects(loadConfig('/nonexistent/nats-autoprof.yaml', {}), {
      name: 'ConfigError',
      message: 'invalid configuration /nonexistent/nats-autoprof.yaml: 1 problem\n  /nonexistent/nats-autoprof.yaml: cannot read the file: no such file',
    });
  });
});

describe('configWarnings', () => {
  it('warns when nothing is watched: no servers and no discovery', async () => {
    const { configWarnings } = await import('../../../src/config/load.js');
    const nothing = ['this configuration watches no server: servers is empty and system_account.discover is not true; add servers (- url: http://host:8222), or system_account with discover: true'];
    assert.deepEqual(configWarnings(parse('{}\n')), nothing);
    assert.deepEqual(configWarnings(parse('servers: []\nsystem_account: { url: "nats://a:4222" }\n')), nothing);
    assert.deepEqual(configWarnings(parse('servers: [{ url: "http://a:8222" }]\n')), []);
    assert.deepEqual(configWarnings(parse('system_account: { url: "nats://a:4222", discover: true }\n')), []);
  });

  it('warns when a stalled KV write (coordination.timeout) plus a heartbeat does not fit inside lease_ttl', async () => {
    const { configWarnings } = await import('../../../src/config/load.js');
    const coord = (extra: string): string => `servers: [{ url: "http://a:8222" }]\ncoordination: { url: "nats://a:4222", user: u, password: p${extra} }\n`;
    // The defaults (timeout 5s, heartbeat 2s, lease_ttl 10s) fit.
    assert.deepEqual(configWarnings(parse(coord(''))), []);
    const w = configWarnings(parse(coord(', heartbeat: 1s, lease_ttl: 3s')));
    assert.equal(w.length, 1);
    assert.match(w[0] as string, /^coordination\.timeout \(5000 ms\) plus heartbeat \(1000 ms\) is not below lease_ttl \(3000 ms\): .*raise lease_ttl or lower timeout$/);
    assert.deepEqual(configWarnings(parse(coord(', heartbeat: 1s, lease_ttl: 3s, timeout: 1500ms'))), []);
  });
});
