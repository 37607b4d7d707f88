/**
 * The incident viewer in real Chromium against the built daemon, which watches a real nats-server under
 * real load and captures real profiles through POST /api/v1/captures: the token prompt, the servers chart,
 * the live incident list, the flame graph (zoom, search, tooltip data), the top table, the sample-type
 * picker, and the comparison with the previous incident. With UI_SCREENSHOTS=<dir> it also writes the
 * README's screenshots there (viewer-incident.png, viewer-compare.png).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { removeTempDirs, ROOT, startDaemon, tempDir, waitFor, type Daemon } from '../helpers/daemon.js';
import { cleanupTempDirs, startServer, SYS_PASSWORD, SYS_USER, type NatsServer } from '../helpers/nats-server.js';
import { launch, Load, openPage, type WatchedPage } from './lib.js';

const TOKEN = 'viewer-test-token-3b9e';
const SERVER = 'ui-a';
const SHOTS = process.env['UI_SCREENSHOTS'] ? resolve(ROOT, process.env['UI_SCREENSHOTS']) : undefined;

interface Frame {
  node: number;
  name: string;
  x: number;
  y: number;
  width: number;
  depth: number;
  matched: boolean;
}

let srv: NatsServer;
let d: Daemon;
let browser: Browser;
let w: WatchedPage;
let page: Page;
const loads: Load[] = [];

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${d.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** A capture of cpu and allocs while the server fans each message out to `subs` subscribers. */
async function captureUnderLoad(subs: number, note: string): Promise<string> {
  const load = await Load.start(srv, subs);
  loads.push(load);
  try {
    await new Promise((r) => setTimeout(r, 500));
    const r = await api('POST', '/api/v1/captures', { server: SERVER, profiles: ['cpu', 'allocs'], cpu_duration: '2s', note });
    assert.equal(r.status, 202, JSON.stringify(r.json));
    const id = r.json['id'] as string;
    await waitFor(async () => (await api('GET', `/api/v1/incidents/${encodeURIComponent(id)}`)).status === 200, { timeoutMs: 30_000, what: `incident ${id}` });
    return id;
  } finally {
    await load.stop();
  }
}

function frames(): Promise<Frame[]> {
  return page.evaluate<Frame[]>('window.autoprofTest.frames()');
}

/** Clicks a drawn frame through the canvas, as a user would. */
async function clickFrame(f: Frame, selector: string): Promise<void> {
  const box = await page.locator(selector).boundingBox();
  assert.ok(box, `${selector} is not on screen`);
  await page.mouse.click(box.x + f.x + Math.min(f.width / 2, 20), box.y + f.y + 9);
}

const cpuCanvas = 'section[data-profile="cpu"] canvas.flame';

before(async () => {
  srv = await startServer({ name: SERVER, clusterName: 'east' });
  const dir = tempDir();
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  d = await startDaemon({
    dir,
    config: `
http:
  listen: "127.0.0.1:{{PORT}}"
  auth: { bearer_token_file: token }
poll: { interval: 250ms, timeout: 200ms }
servers: [ { url: "${srv.monitorUrl}" } ]
system_account: { url: "${srv.natsUrl}", user: ${SYS_USER}, password: ${SYS_PASSWORD} }
triggers: [ { name: cpu-high, metric: cpu, above: 400, for: 10s } ]
capture: { cpu_duration: 2s }
alerts: { profiles: [goroutine] }
storage: { dir: "{{DIR}}/profiles" }
`,
  });
  browser = await launch();
  w = await openPage(browser);
  page = w.page;
});
after(async () => {
  await Promise.all(loads.map((l) => l.stop()));
  await browser?.close();
  await d?.stop('SIGKILL');
  await srv?.stop();
  cleanupTempDirs();
  removeTempDirs();
});

describe('viewer against a real daemon and nats-server', () => {
  let first: string;
  let second: string;

  it('asks for the token, shows no data for a wrong one, then lists the server with a chart', async () => {
    await page.goto(`${d.url}/`);
    const prompt = page.locator('.token-form');
    await prompt.waitFor();
    await prompt.locator('input').fill('wrong-token');
    await prompt.locator('button').click();
    await page.locator('.token-form .token-message', { hasText: 'refused' }).waitFor();
    assert.equal(await page.locator('table.servers tbody tr').count(), 0, 'no data without the right token');
    await page.locator('.token-form input').fill(TOKEN);
    await page.locator('.token-form button').click();
    const row = page.locator(`table.servers tr[data-server="${SERVER}"]`);
    await row.waitFor();
    assert.match(await row.innerText(), /east[\s\S]*2\.\d+\.\d+[\s\S]*up[\s\S]*system_account/);
    // The CPU chart fills from the samples ring (a new point per poll).
    await waitFor(async () => Number(await row.locator('svg.spark-cpu').getAttribute('data-points')) >= 3, { timeoutMs: 15_000, what: 'CPU samples in the chart' });
    assert.ok(Number(await row.locator('svg.spark-mem').getAttribute('data-points')) >= 3);
    assert.match((await row.locator('svg.spark-mem polyline.spark-line').getAttribute('points')) ?? '', /^[\d.]+,[\d.]+( [\d.]+,[\d.]+){2,}/);
    assert.equal(await page.evaluate<string | null>("sessionStorage.getItem('nats-autoprof.token')"), TOKEN);
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'viewer-servers.png'), clip: { x: 0, y: 0, width: 1400, height: 260 } });
  });

  it('shows a new incident in the list without a reload', async () => {
    await page.goto(`${d.url}/ui/#/incidents`);
    await page.locator('text=No incident matches.').waitFor();
    // A marker on window survives only if the page is not reloaded.
    await page.evaluate('window.marker = 42');
    first = await captureUnderLoad(0, 'publishers only');
    const row = page.locator(`table.incidents tr[data-id="${first}"]`);
    await row.waitFor({ timeout: 20_000 });
    await waitFor(async () => /manual[\s\S]*ok[\s\S]*cpu, allocs/.test(await row.innerText()), { timeoutMs: 15_000, what: 'the row to show the finished incident' });
    assert.equal(await page.evaluate<number | undefined>('window.marker'), 42, 'the page was reloaded');
    // A filter the user typed survives the refreshes.
    await page.locator('form.filters select[name="status"]').selectOption('ok');
    await new Promise((r) => setTimeout(r, 3_500));
    assert.equal(await page.locator('form.filters select[name="status"]').inputValue(), 'ok');
    assert.equal(await row.count(), 1);
    if (SHOTS) {
      await page.locator('form.filters select[name="status"]').selectOption('');
      await page.locator(`table.incidents tr[data-id="${first}"]`).waitFor();
    }
  });

  it('pages through older incidents', async () => {
    second = await captureUnderLoad(8, 'publishers and 8 subscribers');
    if (SHOTS) {
      await page.locator(`table.incidents tr[data-id="${second}"]`).waitFor({ timeout: 20_000 });
      await page.screenshot({ path: join(SHOTS, 'viewer-incidents.png'), clip: { x: 0, y: 0, width: 1400, height: 300 } });
    }
    await page.goto(`${d.url}/ui/#/incidents?limit=1`);
    await page.locator(`table.incidents tr[data-id="${second}"]`).waitFor();
    assert.equal(await page.locator('table.incidents tbody tr').count(), 1);
    await page.locator('button.older').click();
    await page.locator(`table.incidents tr[data-id="${first}"]`).waitFor();
    assert.deepEqual(await page.locator('table.incidents tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id'))), [second, first]);
    assert.equal(await page.locator('button.older').isHidden(), true, 'no older page after the last');
  });

  it('renders the cpu flame graph with nats-server frames; a click zooms', async () => {
    await page.goto(`${d.url}/ui/#/incidents/${encodeURIComponent(second)}`);
    await page.locator(`${cpuCanvas}[data-frames]`).waitFor();
    assert.match(await page.locator('.why').innerText(), /Manual capture[\s\S]*publishers and 8 subscribers/);
    assert.match(await page.locator('.varz').innerText(), /Connections/);
    const all = await frames();
    assert.equal(all[0]?.name, 'root');
    const nats = all.filter((f) => /nats-server\/(v2\/)?server\./.test(f.name));
    assert.ok(nats.length >= 3, `nats-server frames drawn: ${all.map((f) => f.name).slice(0, 20).join(', ')}`);
    const canvasWidth = (await page.locator(cpuCanvas).boundingBox())?.width ?? 0;
    // Zoom into a nats-server frame narrower than the whole graph, below the top rows.
    const target = nats.filter((f) => f.width < canvasWidth * 0.9 && f.width > 30).sort((a, b) => b.width - a.width)[0];
    assert.ok(target, 'a nats-server frame narrower than the graph');
    await clickFrame(target, cpuCanvas);
    await waitFor(async () => (await page.locator(cpuCanvas).getAttribute('data-focus')) === target.name, { what: 'the zoom' });
    const zoomed = await frames();
    const focus = zoomed.find((f) => f.node === target.node);
    assert.ok(focus && focus.x === 0 && Math.abs(focus.width - canvasWidth) < 2, `the focused frame spans the width: ${JSON.stringify(focus)}`);
    assert.ok(zoomed.every((f) => f.depth <= target.depth || f.node > target.node), 'only the focus subtree below it');
    assert.match(await page.locator('section[data-profile="cpu"] .focus-line').innerText(), /Zoomed into/);
    await page.locator('section[data-profile="cpu"] .reset-zoom').click();
    assert.equal(await page.locator(cpuCanvas).getAttribute('data-focus'), 'root');
  });

  it('search highlights matching frames and shows their share', async () => {
    await page.locator('section[data-profile="cpu"] input.search').fill('deliverMsg');
    const share = Number(await page.locator('section[data-profile="cpu"] output.match-share').getAttribute('data-share'));
    assert.ok(share > 0 && share <= 1, `share ${share}`);
    assert.match(await page.locator('section[data-profile="cpu"] output.match-share').innerText(), /^matches: \d+\.\d\d% of the total$/);
    const drawn = await frames();
    const matched = drawn.filter((f) => f.matched);
    assert.ok(matched.length > 0);
    assert.ok(matched.every((f) => f.name.toLowerCase().includes('delivermsg')));
    assert.ok(drawn.some((f) => !f.matched && !f.name.toLowerCase().includes('delivermsg')));
    if (SHOTS) {
      await page.locator('section[data-profile="cpu"] input.search').fill('');
      const fr = (await frames()).filter((f) => f.name.includes('deliverMsg')).sort((a, b) => b.width - a.width)[0];
      const box = await page.locator(cpuCanvas).boundingBox();
      if (fr && box) await page.mouse.move(box.x + fr.x + fr.width / 2, box.y + fr.y + 9);
      await page.screenshot({ path: join(SHOTS, 'viewer-incident.png'), fullPage: false });
      await page.locator('section[data-profile="cpu"] input.search').fill('deliverMsg');
    }
  });

  it('shows what grew since the previous incident, downloads the profile and offers the pprof command', async () => {
    const section = page.locator('section[data-profile="cpu"]');
    // Recorded at capture time against the first incident (publishers only): the fan-out functions grew.
    const grown = await section.locator('.changes li').allInnerTexts();
    assert.ok(grown.some((t) => /nats-server\/(v2\/)?server\.\S+ \d+% → \d+%/.test(t)), grown.join(' | '));
    const manifest = (await api('GET', `/api/v1/incidents/${encodeURIComponent(second)}`)).json as { profiles: { name: string; file: string; sha256: string }[] };
    const cpu = manifest.profiles.find((p) => p.name === 'cpu');
    assert.ok(cpu);
    const [dl] = await Promise.all([page.waitForEvent('download'), section.locator(`button.download[data-file="${cpu.file}"]`).click()]);
    assert.match(dl.suggestedFilename(), /^ui-a_\d{8}T\d{6}\.\d{3}Z-manual_cpu\.pb\.gz$/);
    const file = join(tempDir(), 'cpu.pb.gz');
    await dl.saveAs(file);
    assert.equal(createHash('sha256').update(readFileSync(file)).digest('hex'), cpu.sha256);
    const cmd = await section.locator('code.cmd').innerText();
    assert.equal(cmd, `curl -fsS -H "Authorization: Bearer $NATS_AUTOPROF_TOKEN" -o cpu.pb.gz '${d.url}/api/v1/incidents/${encodeURIComponent(second)}/files/cpu.pb.gz' && go tool pprof -http=: cpu.pb.gz`);
  });

  it('sorts the top table by a clicked column', async () => {
    const table = page.locator('section[data-profile="cpu"] table.top');
    assert.equal(await table.getAttribute('data-sort'), 'flat:desc');
    const flatShares = async (): Promise<number[]> => (await table.locator('tbody tr td:nth-child(2)').allInnerTexts()).map((t) => Number(t.replace('%', '')));
    const desc = await flatShares();
    assert.ok(desc.length >= 3);
    assert.deepEqual(desc, [...desc].sort((a, b) => b - a));
    await table.locator('th[data-key="flat"] button').click();
    assert.equal(await table.getAttribute('data-sort'), 'flat:asc');
    const asc = await flatShares();
    assert.deepEqual(asc, [...asc].sort((a, b) => a - b));
    await table.locator('th[data-key="function"] button').click();
    const names = await table.locator('tbody td.fn').allInnerTexts();
    assert.deepEqual(names, [...names].sort((a, b) => a.localeCompare(b)));
    await table.locator('th[data-key="cum_share"] button').click();
    const cum = (await table.locator('tbody tr td:nth-child(4)').allInnerTexts()).map((t) => Number(t.replace('%', '')));
    assert.deepEqual(cum, [...cum].sort((a, b) => b - a));
  });

  it('the sample-type picker changes the allocs view', async () => {
    await page.locator('.tabs button[data-profile="allocs"]').click();
    const section = page.locator('section[data-profile="allocs"]');
    await section.locator('canvas.flame[data-frames]').waitFor();
    const before = { type: await section.getAttribute('data-sample-type'), total: await section.getAttribute('data-total'), top: await section.locator('table.top tbody tr').first().innerText() };
    const options = await section.locator('select.sample-type option').evaluateAll((os) => os.map((o) => (o as unknown as { value: string }).value));
    assert.ok(options.includes('alloc_objects') && options.includes('alloc_space'), options.join(','));
    const other = before.type === 'alloc_objects' ? 'alloc_space' : 'alloc_objects';
    await section.locator('select.sample-type').selectOption(other);
    await waitFor(async () => (await section.getAttribute('data-sample-type')) === other, { what: `the ${other} view` });
    assert.notEqual(await section.getAttribute('data-total'), before.total);
    assert.notEqual(await section.locator('table.top tbody tr').first().innerText(), before.top);
    assert.match(await section.locator('.total').innerText(), new RegExp(`of ${other} \\(${other === 'alloc_space' ? 'bytes' : 'count'}\\)`));
  });

  it('compares with the previous incident: the fan-out grew', async () => {
    await page.locator('.tabs button[data-profile="cpu"]').click();
    await page.locator('section[data-profile="cpu"] a.button', { hasText: 'Compare' }).click();
    const canvas = '.compare-out canvas.flame';
    await page.locator(`${canvas}[data-frames]`).waitFor({ timeout: 30_000 });
    assert.equal(await page.locator('form.compare-form input[name="base"]').inputValue(), `${first}/cpu`);
    assert.match(await page.locator('.compare-head').innerText(), new RegExp(`base ${first.replace(/[.]/g, '\\.')} cpu[\\s\\S]*target ${second.replace(/[.]/g, '\\.')} cpu`));
    // With no subscriber nothing is delivered: deliverMsg appears only in the target, as growth.
    const grew = page.locator('table.changes-table tbody tr', { hasText: 'deliverMsg' }).first();
    await grew.waitFor();
    assert.match(await grew.locator('td:last-child').innerText(), /^\+\d+\.\d pp$/);
    assert.equal(await grew.locator('td:last-child').getAttribute('class'), 'num grew');
    const drawn = await frames();
    assert.ok(drawn.some((f) => f.name.includes('deliverMsg')), 'deliverMsg in the diff flame graph');
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'viewer-compare.png'), fullPage: false });
  });

  it('renders alert labels and annotations as text, never as markup', async () => {
    const img = '<img src=x onerror="window.pwned=1">';
    const script = '<script>window.pwned=2</script><b>bold</b>';
    const alert = {
      status: 'firing',
      labels: { alertname: 'NatsHighCpu', server_name: SERVER, team: img },
      annotations: { summary: script, description: '<a href="javascript:window.pwned=3">click</a>' },
      startsAt: '2026-11-26T15:30:00Z',
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://prometheus:9090/graph',
      fingerprint: 'feedfacecafe0001',
    };
    const r = await api('POST', '/api/v1/alerts/alertmanager', { receiver: 'nats-autoprof', status: 'firing', alerts: [alert], version: '4', groupKey: '{}', truncatedAlerts: 0 });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const id = (r.json['results'] as { id?: string }[])[0]?.id;
    assert.ok(id, JSON.stringify(r.json));
    await waitFor(async () => (await api('GET', `/api/v1/incidents/${encodeURIComponent(id)}`)).status === 200, { timeoutMs: 30_000, what: `incident ${id}` });
    await page.goto(`${d.url}/ui/#/incidents/${encodeURIComponent(id)}`);
    await page.locator('.why .chip', { hasText: 'team=' }).waitFor({ timeout: 30_000 });
    assert.equal(await page.locator('.why .chip', { hasText: 'team=' }).innerText(), `team=${img}`);
    assert.match(await page.locator('.why').innerText(), /<script>window\.pwned=2<\/script><b>bold<\/b>/);
    assert.equal(await page.locator('main img, main script, main b, .why a').count(), 0);
    assert.equal(await page.evaluate<unknown>('window.pwned'), undefined);
  });

  it('had no script error (only the expected 401s of the token prompt were logged)', () => {
    const unexpected = w.errors.filter((e) => !/status of 401/.test(e));
    assert.deepEqual(unexpected, []);
    assert.ok(w.errors.some((e) => /status of 401/.test(e)), 'the wrong token was answered 401');
  });
});
