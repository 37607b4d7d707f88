/**
 * Static checks of deploy/nats-autoprof.service (parsed as systemd's INI dialect) and of the configuration
 * it is meant to run with, deploy/systemd-config.yaml (`nats-autoprof check` with the credentials the unit
 * hands over). `systemd-analyze verify` also reads the unit where systemd is installed.
 */
import * as assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';

import { parse as parseYaml } from 'yaml';

import { parseDuration } from '../../src/config/duration.js';
import { MAIN, ROOT } from '../helpers/daemon.js';
import { shippedNodeFlags } from '../helpers/node-flags.js';
import { runCommand } from '../helpers/run.js';

const UNIT_FILE = path.join(ROOT, 'deploy', 'nats-autoprof.service');
const CONFIG_FILE = path.join(ROOT, 'deploy', 'systemd-config.yaml');

/** Sections to ordered [key, value] pairs; `\` continues a line, `#` and `;` start comments. */
function parseUnit(text: string): Map<string, [string, string][]> {
  const sections = new Map<string, [string, string][]>();
  let current: [string, string][] | undefined;
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[([A-Za-z]+)\]$/.exec(line);
    if (section) {
      current = [];
      sections.set(section[1] as string, current);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(current, `line ${i + 1}: "${line}" before any [Section]`);
    assert.ok(eq > 0, `line ${i + 1}: "${line}" is not Key=Value`);
    current.push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return sections;
}

const unit = parseUnit(readFileSync(UNIT_FILE, 'utf8'));

function values(section: string, key: string): string[] {
  return (unit.get(section) ?? []).filter(([k]) => k === key).map(([, v]) => v);
}
/** The effective value of a single-valued key: the last assignment. */
function value(section: string, key: string): string | undefined {
  const all = values(section, key);
  return all[all.length - 1];
}
function service(key: string): string | undefined {
  return value('Service', key);
}

/** systemd time spans: "30", "30s", "1min 30s", "500ms". */
function systemdSeconds(span: string): number {
  const units: Record<string, number> = { us: 1e-6, ms: 1e-3, s: 1, sec: 1, second: 1, seconds: 1, m: 60, min: 60, minute: 60, minutes: 60, h: 3600, hr: 3600, hour: 3600, hours: 3600 };
  if (/^\d+(?:\.\d+)?$/.test(span)) return Number(span);
  let total = 0;
  const re = /(\d+(?:\.\d+)?)\s*([a-z]+)/g;
  let consumed = '';
  for (const m of span.matchAll(re)) {
    const factor = units[m[2] as string];
    assert.ok(factor !== undefined, `unknown time unit "${m[2]}" in "${span}"`);
    total += Number(m[1]) * factor;
    consumed += m[0];
  }
  assert.equal(consumed.replace(/\s/g, ''), span.replace(/\s/g, ''), `cannot read the time span "${span}"`);
  return total;
}

const temps: string[] = [];
after(() => {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
});

function run(bin: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string; missing: boolean }> {
  return runCommand(bin, args, env);
}

/** The credentials the unit loads (LoadCredential=ID:PATH), by id. */
function credentials(): Map<string, string> {
  return new Map(
    values('Service', 'LoadCredential').map((v) => {
      const i = v.indexOf(':');
      assert.ok(i > 0, `LoadCredential=${v}: expected ID:PATH`);
      return [v.slice(0, i), v.slice(i + 1)];
    }),
  );
}

/** `nats-autoprof check` on the systemd configuration, with placeholder credentials as systemd would hand them over. */
function checkConfig(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'nats-autoprof-credentials-'));
  temps.push(dir);
  for (const id of credentials().keys()) writeFileSync(path.join(dir, id), `placeholder-${id}\n`, { mode: 0o600 });
  return run(process.execPath, [MAIN, 'check', '--config', CONFIG_FILE], { CREDENTIALS_DIRECTORY: dir });
}

describe('deploy/nats-autoprof.service', () => {
  it('has [Unit], [Service] and [Install] sections, and starts after the network', () => {
    for (const s of ['Unit', 'Service', 'Install']) assert.ok(unit.has(s), `no [${s}]`);
    assert.ok(value('Unit', 'Description'));
    assert.match(value('Unit', 'After') ?? '', /network-online\.target/);
    assert.match(value('Unit', 'Wants') ?? '', /network-online\.target/);
    assert.equal(value('Install', 'WantedBy'), 'multi-user.target');
  });

  it('runs as a dedicated, unprivileged user', () => {
    const dynamic = service('DynamicUser') === 'yes';
    const user = service('User');
    assert.ok(dynamic || (user !== undefined && user !== 'root' && user !== '0'), 'DynamicUser=yes or User=<not root>');
    assert.equal(service('CapabilityBoundingSet'), '', 'no capabilities');
  });

  it('has its state and configuration directories', () => {
    assert.equal(service('StateDirectory'), 'nats-autoprof');
    assert.equal(service('ConfigurationDirectory'), 'nats-autoprof');
  });

  it('ExecStart runs the daemon with /etc/nats-autoprof/config.yaml; ExecReload sends SIGHUP', () => {
    const exec = service('ExecStart') ?? '';
    // node with the flags every launcher passes (package.json "start"), or the package's bin (its shebang has them).
    const flags = shippedNodeFlags().join(' ').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    assert.match(
      exec,
      new RegExp(`^(?:/usr/bin/env node|/usr/(?:local/)?bin/node) ${flags} /opt/nats-autoprof/dist/main\\.js run --config /etc/nats-autoprof/config\\.yaml$|^/usr/(?:local/)?bin/nats-autoprof run --config /etc/nats-autoprof/config\\.yaml$`),
    );
    assert.equal(service('ExecReload'), '/bin/kill -HUP $MAINPID');
    assert.equal(service('KillSignal'), 'SIGTERM');
    assert.ok(!exec.includes('--config') || exec.includes(`/etc/${service('ConfigurationDirectory')}/config.yaml`));
  });

  it('restarts on failure, but not for a bad configuration (exit code 2)', () => {
    assert.equal(service('Restart'), 'on-failure');
    assert.ok(systemdSeconds(service('RestartSec') ?? '') > 0, 'RestartSec');
    assert.match(service('RestartPreventExitStatus') ?? '', /(?:^|\s)2(?:\s|$)/);
  });

  it('TimeoutStopSec is longer than the configuration\'s shutdown_timeout', async () => {
    const r = await checkConfig();
    assert.equal(r.code, 0, r.stderr);
    const effective = parseYaml(r.stdout) as { shutdown_timeout: string };
    const stop = service('TimeoutStopSec');
    assert.ok(stop, 'TimeoutStopSec');
    assert.ok(systemdSeconds(stop) * 1000 > parseDuration(effective.shutdown_timeout), `TimeoutStopSec=${stop} <= shutdown_timeout ${effective.shutdown_timeout}`);
  });

  it('is hardened', () => {
    const expected: Record<string, string> = {
      NoNewPrivileges: 'yes',
      ProtectSystem: 'strict',
      ProtectHome: 'yes',
      PrivateTmp: 'yes',
      PrivateDevices: 'yes',
      ProtectKernelTunables: 'yes',
      ProtectKernelModules: 'yes',
      ProtectControlGroups: 'yes',
      RestrictSUIDSGID: 'yes',
      LockPersonality: 'yes',
    };
    for (const [k, v] of Object.entries(expected)) assert.equal(service(k), v, `${k}=${v}`);
    assert.ok(values('Service', 'ReadWritePaths').join(' ').split(/\s+/).map((p) => p.replace(/^-/, '')).includes('/var/lib/nats-autoprof'), 'ReadWritePaths=/var/lib/nats-autoprof');
    assert.notEqual(service('MemoryDenyWriteExecute'), 'yes', "V8's JIT needs writable executable memory");
    if (service('SystemCallFilter') !== undefined) assert.equal(service('SystemCallErrorNumber'), 'EPERM', 'a filtered call fails instead of killing node');
  });

  it('reads an optional EnvironmentFile', () => {
    const files = values('Service', 'EnvironmentFile');
    assert.ok(files.length > 0);
    for (const f of files) assert.ok(f.startsWith('-/etc/nats-autoprof/'), `EnvironmentFile=${f} should be optional (-) and under /etc/nats-autoprof`);
  });

  it('systemd-analyze verify reads it without complaint', async (t) => {
    const r = await run('systemd-analyze', ['verify', UNIT_FILE], {});
    if (r.missing) {
      t.skip('systemd-analyze is not installed');
      return;
    }
    const about = (r.stdout + r.stderr).split('\n').filter((l) => l.includes(path.basename(UNIT_FILE)));
    assert.deepEqual(about, []);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });
});

describe('deploy/systemd-config.yaml', () => {
  it('passes `nats-autoprof check` with the credentials the unit loads', async () => {
    const r = await checkConfig();
    assert.equal(r.code, 0, r.stderr);
  });

  it('fails without them (the credentials are what make it pass)', async () => {
    const r = await run(process.execPath, [MAIN, 'check', '--config', CONFIG_FILE], {});
    assert.equal(r.code, 2);
    assert.match(r.stderr, /CREDENTIALS_DIRECTORY/);
  });

  it('uses the unit\'s directories, and every credential it reads is loaded by the unit', async () => {
    const r = await checkConfig();
    const effective = parseYaml(r.stdout) as { storage: { dir: string } };
    assert.equal(effective.storage.dir, `/var/lib/${service('StateDirectory')}`);
    const text = readFileSync(CONFIG_FILE, 'utf8');
    const used = [...text.matchAll(/\$\{CREDENTIALS_DIRECTORY\}\/([A-Za-z0-9._-]+)/g)].map((m) => m[1] as string);
    assert.ok(used.length > 0);
    const loaded = credentials();
    for (const id of used) {
      assert.ok(loaded.has(id), `the configuration reads credential "${id}", which no LoadCredential= provides`);
      assert.match(loaded.get(id) ?? '', /^\/etc\/nats-autoprof\//);
    }
  });
});
