/**
 * Static checks of the Dockerfile and .dockerignore (there is no Docker engine here): the dockerfile-utils
 * linter, the image's structure (multi-stage on a Node.js LTS base, non-root, volume, health check,
 * entrypoint), the build steps being the ones CI runs, the build context, and the default configuration
 * baked into the image.
 */
import * as assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { describe, it } from 'node:test';

import { Copy, DockerfileParser, Env, Healthcheck, JSONInstruction, type Instruction } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { parse as parseYaml } from 'yaml';

import { MAIN, ROOT } from '../helpers/daemon.js';
import { runCommand } from '../helpers/run.js';
import { shippedNodeFlags } from '../helpers/node-flags.js';

const DOCKERFILE = path.join(ROOT, 'Dockerfile');
const TEXT = readFileSync(DOCKERFILE, 'utf8');
const VOLUME_DIR = '/var/lib/nats-autoprof';
const CONFIG_IN_IMAGE = '/etc/nats-autoprof/config.yaml';

interface Stage {
  image: string;
  name: string | null;
  instructions: Instruction[];
}

function stages(): Stage[] {
  const out: Stage[] = [];
  for (const ins of DockerfileParser.parse(TEXT).getInstructions()) {
    if (ins.getKeyword() === 'FROM') {
      const args = ins.getArguments().map((a) => a.getValue());
      out.push({ image: args[0] ?? '', name: args[1]?.toUpperCase() === 'AS' ? (args[2] ?? null) : null, instructions: [] });
    } else {
      assert.ok(out.length > 0, `${ins.getKeyword()} before the first FROM`);
      out[out.length - 1]?.instructions.push(ins);
    }
  }
  return out;
}

function finalStage(): Stage {
  const all = stages();
  const last = all[all.length - 1];
  assert.ok(last, 'no FROM');
  return last;
}

function build(): Stage {
  const first = stages()[0];
  assert.ok(first, 'no FROM');
  return first;
}

function keyword(stage: Stage, kw: string): Instruction[] {
  return stage.instructions.filter((i) => i.getKeyword() === kw);
}

function json(ins: Instruction): string[] {
  assert.ok(ins instanceof JSONInstruction, `${ins.getKeyword()} is not an instruction with a JSON form`);
  const values = ins.getJSONStrings().map((a) => a.getJSONValue());
  assert.ok(values.length > 0, `${ins.getKeyword()} ${ins.getArgumentsContent() ?? ''} should use the JSON (exec) form`);
  return values;
}

/** Shell commands of the RUN instructions of a stage, split on && and ;. */
function runCommands(stage: Stage): string[] {
  return keyword(stage, 'RUN').flatMap((r) =>
    (r.getArgumentsContent() ?? '')
      .replace(/\\\n/g, ' ')
      .split(/&&|;/)
      .map((c) => c.trim().replace(/\s+/g, ' '))
      .filter(Boolean),
  );
}

function copies(stage: Stage): { from: string | null; sources: string[]; dest: string }[] {
  return keyword(stage, 'COPY').map((c) => {
    assert.ok(c instanceof Copy);
    const args = c.getArguments().map((a) => a.getValue());
    const flags = c.getFlags().map((f) => f.getName());
    const positional = args.filter((a) => !a.startsWith('--'));
    assert.deepEqual(flags.filter((f) => f !== 'from' && f !== 'chown' && f !== 'chmod'), [], `COPY flags ${flags.join(', ')}`);
    return { from: c.getFromFlag()?.getValue() ?? null, sources: positional.slice(0, -1), dest: positional[positional.length - 1] ?? '' };
  });
}

function healthcheckCommand(): string[] {
  const hc = keyword(finalStage(), 'HEALTHCHECK');
  assert.equal(hc.length, 1, 'one HEALTHCHECK in the final stage');
  const ins = hc[0];
  assert.ok(ins instanceof Healthcheck);
  assert.equal(ins.getSubcommand()?.getValue().toUpperCase(), 'CMD');
  const m = /\bCMD\s+(\[[\s\S]*\])\s*$/.exec(ins.getArgumentsContent() ?? '');
  assert.ok(m, 'HEALTHCHECK CMD should use the JSON (exec) form: the slim image has no curl, node asks /healthz');
  return JSON.parse(m[1] as string) as string[];
}

function envOf(stage: Stage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of keyword(stage, 'ENV')) {
    assert.ok(e instanceof Env);
    for (const p of e.getProperties()) out[p.getName()] = p.getValue() ?? '';
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// .dockerignore, with Docker's semantics: patterns relative to the context root, `*`, `?`, `**`, `!` exceptions,
// the last matching pattern wins, and a pattern that matches a directory matches everything below it.

const IGNORE = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'))
  .map((l) => {
    const negated = l.startsWith('!');
    const pattern = path.posix.normalize((negated ? l.slice(1) : l).replace(/^\/+/, '')).replace(/\/+$/, '');
    let re = '';
    for (let i = 0; i < pattern.length; i++) {
      const ch = pattern[i] as string;
      if (pattern.startsWith('**/', i)) {
        re += '(?:.*/)?';
        i += 2;
      } else if (pattern.startsWith('**', i)) {
        re += '.*';
        i += 1;
      } else if (ch === '*') re += '[^/]*';
      else if (ch === '?') re += '[^/]';
      else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
    return { negated, re: new RegExp(`^${re}$`) };
  });

function ignored(rel: string): boolean {
  const parts = rel.split('/');
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let out = false;
  for (const rule of IGNORE) if (prefixes.some((p) => rule.re.test(p))) out = !rule.negated;
  return out;
}

// ---------------------------------------------------------------------------------------------------------

describe('Dockerfile: lint (dockerfile-utils)', () => {
  it('has no errors and no warnings', () => {
    const problems = validate(TEXT);
    assert.deepEqual(
      problems.map((d) => `Dockerfile:${d.range.start.line + 1}: ${d.severity === 1 ? 'error' : 'warning'}: ${d.message}`),
      [],
    );
  });

  it('the linter is live: it reports a broken Dockerfile', () => {
    const problems = validate('FROM node:22-bookworm-slim\nHEALTHCHECK --interva=30s CMD ls\ncopy . .\n');
    assert.ok(problems.length >= 2, JSON.stringify(problems));
  });
});

describe('Dockerfile: structure', () => {
  it('is multi-stage, every stage on a Node.js LTS base (22 or 24)', () => {
    const all = stages();
    assert.ok(all.length >= 2, 'a build stage and a runtime stage');
    for (const s of all) {
      if (all.some((o) => o.name !== null && o.name === s.image)) continue; // FROM <earlier stage>
      assert.match(s.image, /^node:(22|24)(?:[.-][A-Za-z0-9.-]*)?$/, `FROM ${s.image}`);
    }
    assert.ok(build().name, 'the build stage is named (COPY --from=<name>)');
  });

  it('the build stage runs npm ci and npm run build', () => {
    const cmds = runCommands(build());
    const ci = cmds.findIndex((c) => /^npm ci(?:\s|$)/.test(c) && !c.includes('--omit=dev'));
    const b = cmds.findIndex((c) => c === 'npm run build');
    assert.ok(ci >= 0, `no npm ci in ${JSON.stringify(cmds)}`);
    assert.ok(b > ci, `npm run build after npm ci in ${JSON.stringify(cmds)}`);
  });

  it('the final stage has production dependencies only, plus dist/ from the build stage', () => {
    const fin = finalStage();
    const cmds = runCommands(fin);
    assert.ok(cmds.some((c) => /^npm ci\b.*--omit=dev\b/.test(c)), `no npm ci --omit=dev in ${JSON.stringify(cmds)}`);
    assert.ok(!cmds.some((c) => /^npm (?:ci|install|i)\b/.test(c) && !c.includes('--omit=dev')), 'no dev dependencies in the final stage');
    assert.ok(!cmds.some((c) => /npm run build|\btsc\b/.test(c)), 'the final stage does not build');
    const fromBuild = copies(fin).filter((c) => c.from === build().name);
    assert.ok(fromBuild.some((c) => c.sources.some((s) => /\/dist\/?$/.test(s))), 'COPY --from=<build> .../dist');
    // package.json is there: the CLI reads its version from ../package.json next to dist/.
    assert.ok(copies(fin).some((c) => c.from === null && c.sources.includes('package.json')));
  });

  it('runs as a non-root user that owns the volume /var/lib/nats-autoprof', () => {
    const fin = finalStage();
    const users = keyword(fin, 'USER').map((u) => u.getArguments().map((a) => a.getValue()).join(' '));
    const user = users[users.length - 1];
    assert.ok(user, 'USER in the final stage');
    assert.ok(!/^(?:root|0)(?::|$)/.test(user), `USER ${user} is root`);

    const volumes = keyword(fin, 'VOLUME').flatMap((v) => json(v));
    assert.deepEqual(volumes, [VOLUME_DIR]);
    const volumeLine = keyword(fin, 'VOLUME')[0]?.getRange().start.line ?? -1;
    const chown = keyword(fin, 'RUN').find((r) => {
      const c = r.getArgumentsContent() ?? '';
      return c.includes('chown') && c.includes(VOLUME_DIR) && c.includes(user.split(':')[0] as string);
    });
    assert.ok(chown, `a RUN that gives ${VOLUME_DIR} to ${user}`);
    assert.ok(chown.getRange().start.line < volumeLine, 'chown before VOLUME (later changes to a volume path are discarded)');
  });

  it('sets NATS_AUTOPROF_CONFIG, EXPOSE 9745, ENTRYPOINT node <the shipped flags> /app/dist/main.js and CMD run', () => {
    const fin = finalStage();
    assert.equal(envOf(fin)['NATS_AUTOPROF_CONFIG'], CONFIG_IN_IMAGE);
    assert.deepEqual(keyword(fin, 'EXPOSE').flatMap((e) => e.getArguments().map((a) => a.getValue())), ['9745']);
    const entry = keyword(fin, 'ENTRYPOINT');
    const cmd = keyword(fin, 'CMD');
    assert.equal(entry.length, 1);
    assert.equal(cmd.length, 1);
    assert.deepEqual(json(entry[0] as Instruction), ['node', ...shippedNodeFlags(), '/app/dist/main.js']);
    assert.deepEqual(json(cmd[0] as Instruction), ['run']);
    // /app is the WORKDIR where package.json and dist/ land, and dist/main.js is the package's bin.
    const workdirs = keyword(fin, 'WORKDIR').map((w) => w.getArguments()[0]?.getValue());
    assert.equal(workdirs[workdirs.length - 1], '/app');
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    assert.equal(path.posix.join('/app', pkg.bin['nats-autoprof'] ?? ''), '/app/dist/main.js');
  });

  it('ENTRYPOINT + CMD is a real command of the CLI', async () => {
    const fin = finalStage();
    const [node, ...rest] = json(keyword(fin, 'ENTRYPOINT')[0] as Instruction);
    const main = rest.pop();
    assert.equal(node, 'node');
    assert.equal(main?.replace(/^\/app\//, ''), path.relative(ROOT, MAIN));
    const r = await run(process.execPath, [...rest, MAIN, ...json(keyword(fin, 'CMD')[0] as Instruction), '--help']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Usage: nats-autoprof run/);
  });

  it('HEALTHCHECK asks /healthz with node itself, and its script works', async () => {
    const cmd = healthcheckCommand();
    assert.equal(cmd[0], 'node');
    assert.equal(cmd[1], '-e');
    const script = cmd[2] ?? '';
    assert.match(script, /^fetch\('http:\/\/127\.0\.0\.1:9745\/healthz'\)/);

    // The same script against a local server: healthy, unhealthy, and nothing listening.
    let status = 200;
    const server: Server = createServer((req, res) => {
      res.statusCode = req.url === '/healthz' ? status : 404;
      res.end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const local = script.replace('127.0.0.1:9745', `127.0.0.1:${port}`);
      assert.equal((await run(process.execPath, ['-e', local])).code, 0);
      status = 503;
      assert.equal((await run(process.execPath, ['-e', local])).code, 1);
    } finally {
      await new Promise((r) => server.close(r));
    }
    const closed = script.replace('127.0.0.1:9745', `127.0.0.1:${port}`);
    assert.equal((await run(process.execPath, ['-e', closed])).code, 1);
  });
});

describe('Dockerfile: the build is the one CI runs', () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const ci = readFileSync(path.join(ROOT, '.ci', 'run'), 'utf8');

  it('npm ci and npm run build appear in both CI (.ci/run, package.json) and the Dockerfile', () => {
    assert.match(ci, /^\s*npm ci\b/m, '.ci/run installs with npm ci');
    assert.match(ci, /^\s*npm test\b/m, '.ci/run runs npm test');
    assert.match(pkg.scripts['test'] ?? '', /\bnpm run build\b/, 'npm test builds with npm run build');
    const cmds = runCommands(build());
    assert.ok(cmds.some((c) => /^npm ci\b/.test(c)));
    assert.ok(cmds.includes('npm run build'));
  });

  it('the build stage copies what `npm run build` reads', () => {
    const script = pkg.scripts['build'] ?? '';
    const project = /-p\s+(\S+)/.exec(script)?.[1];
    assert.ok(project, `npm run build (${script}) names its tsconfig with -p`);
    const needed = new Set<string>(['package.json', 'package-lock.json', project]);
    // The tsconfig chain (extends), and the folders of the nearest `include` (a child's replaces its parent's).
    let file: string | undefined = project;
    let include: string[] | undefined;
    while (file) {
      const cfg = JSON.parse(readFileSync(path.join(ROOT, file), 'utf8')) as { extends?: string; include?: string[] };
      include ??= cfg.include;
      file = cfg.extends ? path.normalize(cfg.extends) : undefined;
      if (file) needed.add(file);
    }
    for (const inc of include ?? []) needed.add(inc.split('/')[0] as string);
    const copied = new Set(copies(build()).flatMap((c) => c.sources.map((s) => s.replace(/\/$/, ''))));
    for (const n of needed) assert.ok(copied.has(n), `the build stage does not COPY ${n} (has ${[...copied].join(', ')})`);
  });
});

describe('.dockerignore', () => {
  it('keeps local state out of the build context', () => {
    for (const p of ['node_modules', '.cache', 'dist', 'profiles', 'demo-profiles', 'test', 'bench', '.git', 'coverage']) {
      assert.ok(ignored(p), `${p} is not ignored`);
      assert.ok(ignored(`${p}/some/file`), `${p}/some/file is not ignored`);
    }
    assert.ok(ignored('config/profiles/x/cpu.pb.gz'), 'profiles under config/ are not ignored');
  });

  it('keeps every COPY source of the Dockerfile, and each exists', () => {
    for (const s of stages()) {
      for (const c of copies(s).filter((x) => x.from === null)) {
        for (const src of c.sources) {
          const rel = src.replace(/\/$/, '');
          assert.ok(existsSync(path.join(ROOT, rel)), `COPY ${src}: no such file`);
          assert.ok(!ignored(rel), `COPY ${src} is excluded by .dockerignore`);
        }
      }
    }
    assert.ok(!ignored('src/main.ts'));
  });
});

describe('the default configuration in the image', () => {
  const fin = (): Stage => finalStage();
  const source = (): string => {
    const c = copies(fin()).find((x) => x.from === null && x.dest === CONFIG_IN_IMAGE);
    assert.ok(c && c.sources.length === 1, `a COPY to ${CONFIG_IN_IMAGE}`);
    return path.join(ROOT, c.sources[0] as string);
  };

  it('passes `nats-autoprof check` found through NATS_AUTOPROF_CONFIG, and matches the image', async () => {
    const r = await run(process.execPath, [MAIN, 'check'], { NATS_AUTOPROF_CONFIG: source() });
    assert.equal(r.code, 0, r.stderr);
    const effective = parseYaml(r.stdout) as { storage: { dir: string }; http: { listen: string } };
    assert.equal(effective.storage.dir, VOLUME_DIR);
    const port = effective.http.listen.slice(effective.http.listen.lastIndexOf(':') + 1);
    assert.equal(port, '9745');
    assert.ok((healthcheckCommand()[2] ?? '').includes(`:${port}/healthz`));
  });
});

// ---------------------------------------------------------------------------------------------------------

function run(bin: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCommand(bin, args, env, 30_000);
}
