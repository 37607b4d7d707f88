/**
 * allocs_delta against a real nats-server: a manual capture (POST /api/v1/captures) through prof_port (Go's
 * `/debug/pprof/allocs?seconds=N`) and through the system account (two PROFILEZ snapshots subtracted), each
 * beside the cumulative `allocs` profile of the same incident. Heavy load before the captures, light load
 * during them: the delta must hold only the window's allocations.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { decodeProfile } from '../../src/insight/pprof-summary.js';
import { removeTempDirs, ROOT, runCli, startDaemon, tempDir, waitFor, type Daemon } from '../helpers/daemon.js';
import { incidents, tree } from '../helpers/incidents.js';
import { cleanupTempDirs, startServer, SYS_PASSWORD, SYS_USER, type NatsServer } from '../helpers/nats-server.js';

const run = promisify(execFile);
const TOKEN = 'allocs-delta-test-token-0123456789';
const daemons: Daemon[] = [];
let srv: NatsServer;
let stopLoad = false;
let loaders: Promise<void>[] = [];

/** /varz in a loop, `pauseMs` between requests. */
async function load(pauseMs = 0): Promise<void> {
  while (!stopLoad) {
    const r = await fetch(`${srv.monitorUrl}/varz`).catch(() => undefined);
    await r?.text();
    if (pauseMs > 0) await new Promise((res) => setTimeout(res, pauseMs));
  }
}

async function goTool(): Promise<{ bin: string; goroot: string }> {
  const { stdout } = await run(join(ROOT, 'scripts', 'get-go.sh'), [], { env: process.env, maxBuffer: 1 << 20, timeout: 600_000 });
  const bin = stdout.trim();
  return { bin, goroot: join(bin, '..', '..') };
}

async function daemon(via: 'prof_port' | 'system_account', more = '', windowText = '2s'): Promise<Daemon> {
  const dir = tempDir();
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  const d = await startDaemon({
    dir,
    config: `
http: { listen: "127.0.0.1:{{PORT}}", auth: { bearer_token_file: token } }
poll: { interval: 250ms, timeout: 200ms }
servers: [ { url: "${srv.monitorUrl}", prof_url: "${srv.profUrl}" } ]
system_account: { url: "${srv.natsUrl}", user: ${SYS_USER}, password: ${SYS_PASSWORD} }
triggers: []
capture: { via: ${via}, allocs_window: ${windowText} }
storage: { dir: "{{DIR}}/profiles" }
${more}`,
  });
  daemons.push(d);
  await waitFor(async () => {
    const r = await fetch(`${d.url}/api/v1/servers`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const body = (await r.json()) as { servers?: { up?: boolean }[] };
    return body.servers?.[0]?.up === true ? true : undefined;
  }, { timeoutMs: 15_000, what: 'the server polled' });
  return d;
}

function totals(file: string): { values: number[]; types: string[]; durationNs: number; defaultType: string } {
  const p = decodeProfile(readFileSync(file));
  const s = p.stringTable.strings;
  const values = p.sampleType.map((_, i) => p.sample.reduce((sum, x) => sum + Number(BigInt.asIntN(64, BigInt(x.value[i] ?? 0))), 0));
  return { values, types: p.sampleType.map((t) => s[Number(t.type)] ?? ''), durationNs: Number(p.durationNanos), defaultType: s[Number(p.defaultSampleType)] ?? '' };
}

describe('allocs_delta from a real nats-server', () => {
  before(async () => {
    srv = await startServer({ name: 'delta-a' });
    // Heavy load first, so the cumulative profile holds far more than any later window.
    loaders = Array.from({ length: 8 }, () => load());
    await new Promise((r) => setTimeout(r, 4_000));
    stopLoad = true;
    await Promise.all(loaders);
    stopLoad = false;
    loaders = [load(20)];
  });
  after(async () => {
    stopLoad = true;
    await Promise.all(loaders);
    await Promise.all(daemons.map((d) => d.stop()));
    await srv.stop();
    cleanupTempDirs();
    removeTempDirs();
  });

  for (const via of ['prof_port', 'system_account'] as const) {
    it(`through ${via}: the window's allocations only, opened by pprof-format and go tool pprof`, async () => {
      const d = await daemon(via);
      const asked = performance.now();
      const res = await fetch(`${d.url}/api/v1/captures`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ server: 'delta-a', profiles: ['allocs', 'allocs_delta'] }),
      });
      assert.equal(res.status, 202, await res.text());
      const [inc] = await waitFor(() => {
        const f = incidents(join(d.dir, 'profiles'));
        return f.length > 0 ? f : undefined;
      }, { timeoutMs: 30_000, what: 'an incident' });
      const elapsedS = (performance.now() - asked) / 1000;
      assert.ok(inc);
      assert.equal(inc.manifest.status, 'ok', JSON.stringify(inc.manifest.profiles));
      const delta = inc.manifest.profiles.find((p) => p.name === 'allocs_delta');
      assert.ok(delta);
      assert.equal(delta.file, 'allocs_delta.pb.gz');
      assert.equal(delta.via, via);
      assert.equal(delta.sample_type, 'alloc_space');
      assert.ok(delta.top.length > 0, 'the manifest summarises the delta');
      assert.ok(delta.duration_ms >= 1_900, `took ${delta.duration_ms} ms, less than the window`);

      const dt = totals(join(inc.dir, 'allocs_delta.pb.gz'));
      const ct = totals(join(inc.dir, 'allocs.pb.gz'));
      assert.deepEqual(dt.types, ['alloc_objects', 'alloc_space', 'inuse_objects', 'inuse_space']);
      assert.equal(dt.defaultType, 'alloc_space');
      const seconds = dt.durationNs / 1e9;
      // At least the window; at most the time the whole capture took (a loaded machine stretches the requests).
      assert.ok(seconds >= 1.9 && seconds <= elapsedS, `duration ${seconds}s, window 2s, capture took ${elapsedS}s`);
      const deltaSpace = dt.values[1] as number;
      const cumulativeSpace = ct.values[1] as number;
      assert.ok(deltaSpace > 0, 'the light load allocated nothing in the window');
      assert.ok(deltaSpace * 4 < cumulativeSpace, `delta ${deltaSpace} B is not far below the cumulative ${cumulativeSpace} B`);

      const go = await goTool();
      const out = await run(go.bin, ['tool', 'pprof', '-top', join(inc.dir, 'allocs_delta.pb.gz')], {
        env: { ...process.env, GOROOT: go.goroot, HOME: d.dir },
        maxBuffer: 4 << 20,
        timeout: 120_000,
      });
      assert.match(out.stdout, /Type: alloc_space/);
      assert.match(out.stdout, /Duration: 2/);
      assert.match(out.stdout, /flat%/);
    });
  }

  for (const via of ['prof_port', 'system_account'] as const) {
    it(`through ${via}: a shutdown during the window writes no allocs_delta file, only the abort`, async () => {
      const d = await daemon(via, 'shutdown_timeout: 0s', '60s');
      const res = await fetch(`${d.url}/api/v1/captures`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ server: 'delta-a', profiles: ['allocs_delta'] }),
      });
      assert.equal(res.status, 202, await res.text());
      // Well inside the window (the first snapshot or Go's wait has begun).
      await new Promise((r) => setTimeout(r, 1_500));
      const started = performance.now();
      assert.equal(await d.stop(), 0);
      assert.ok(performance.now() - started < 30_000, 'the shutdown waited for the window');
      const root = join(d.dir, 'profiles');
      assert.deepEqual(tree(root).filter((f) => f.includes('.tmp') || f.endsWith('allocs_delta.pb.gz')), []);
      const [inc] = incidents(root);
      assert.ok(inc, 'the aborted incident is recorded');
      const p = inc.manifest.profiles[0];
      assert.equal(p?.name, 'allocs_delta');
      assert.equal(p?.file, null);
      assert.match(p?.error ?? '', /aborted/);
    });
  }

  it('through the one-shot CLI: --timeout is the window, two snapshots subtracted', async () => {
    const dir = tempDir();
    const asked = performance.now();
    const r = await runCli(['capture', 'allocs_delta', '--server', srv.natsUrl, '--user', SYS_USER, '--timeout', '2s', '--dir', dir], { NATS_PASSWORD: SYS_PASSWORD });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const elapsedS = (performance.now() - asked) / 1000;
    const [inc] = incidents(dir);
    assert.ok(inc);
    const p = inc.manifest.profiles[0];
    assert.equal(p?.name, 'allocs_delta');
    assert.equal(p?.via, 'system_account');
    assert.equal(p?.sample_type, 'alloc_space');
    const t = totals(join(inc.dir, 'allocs_delta.pb.gz'));
    const seconds = t.durationNs / 1e9;
    assert.ok(seconds >= 1.9 && seconds <= elapsedS, `duration ${seconds}s, window 2s, the CLI took ${elapsedS}s`);
    assert.ok((t.values[1] as number) > 0);
  });
});
