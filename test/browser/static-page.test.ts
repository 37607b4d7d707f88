/**
 * The viewer's static parts, in real Chromium against the built daemon watching a real nats-server, with no
 * incidents: the redirect, the security headers, versioned assets, every view rendering with no console error.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { removeTempDirs, startDaemon, waitFor, type Daemon } from '../helpers/daemon.js';
import { cleanupTempDirs, startServer, type NatsServer } from '../helpers/nats-server.js';
import { launch, openPage } from './lib.js';

let srv: NatsServer;
let d: Daemon;
let browser: Browser;

before(async () => {
  srv = await startServer({ name: 'ui-static' });
  d = await startDaemon({
    config: `
http: { listen: "127.0.0.1:{{PORT}}" }
poll: { interval: 250ms, timeout: 200ms }
servers: [ { url: "${srv.monitorUrl}" } ]
triggers: [ { name: cpu-high, metric: cpu, above: 400, for: 10s } ]
storage: { dir: "{{DIR}}/profiles" }
`,
  });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await d?.stop('SIGKILL');
  await srv?.stop();
  cleanupTempDirs();
  removeTempDirs();
});

describe('viewer: static page', () => {
  it('redirects / to /ui/ and serves the page with CSP, nosniff and revalidation', async () => {
    const root = await fetch(`${d.url}/`, { redirect: 'manual' });
    assert.equal(root.status, 302);
    assert.equal(root.headers.get('location'), '/ui/');
    const res = await fetch(`${d.url}/ui/`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    const html = await res.text();
    assert.doesNotMatch(html, /<script>|<script [^>]*>[^<]/, 'no inline script');
    const js = /src="(\/ui\/assets\/v-[0-9a-f]{12}\/app\.js)"/.exec(html)?.[1];
    assert.ok(js, 'the page loads a versioned app.js');
    const a = await fetch(`${d.url}${js}`);
    assert.equal(a.status, 200);
    assert.equal(a.headers.get('content-type'), 'text/javascript; charset=utf-8');
    assert.equal(a.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.equal(a.headers.get('x-content-type-options'), 'nosniff');
    const css = await fetch(`${d.url}${js.replace('app.js', 'style.css')}`);
    assert.equal(css.headers.get('content-type'), 'text/css; charset=utf-8');
    // Unversioned or stale-version asset URLs are served but never cached for good.
    assert.equal((await fetch(`${d.url}/ui/assets/app.js`)).headers.get('cache-control'), 'no-cache');
    assert.equal((await fetch(`${d.url}/ui/assets/v-000000000000/app.js`)).headers.get('cache-control'), 'no-cache');
    assert.equal((await fetch(`${d.url}/ui/assets/nope.js`)).status, 404);
    assert.equal((await fetch(`${d.url}/ui/assets/..%2Fmain.js`)).status, 404);
  });

  it('renders every view without a console error', async () => {
    const { page, errors } = await openPage(browser);
    const res = await page.goto(`${d.url}/`);
    assert.ok(res);
    assert.equal(new URL(page.url()).pathname, '/ui/');
    assert.match((await res.allHeaders())['content-security-policy'] ?? '', /default-src 'none'/);
    await page.locator('table.servers tr[data-server="ui-static"]').waitFor();
    await page.goto(`${d.url}/ui/#/rules`);
    await page.locator('table.rules tr[data-rule="cpu-high"]').waitFor();
    assert.match(await page.locator('table.rules tr[data-rule="cpu-high"]').innerText(), /400\.0%/);
    await page.goto(`${d.url}/ui/#/incidents`);
    await waitFor(async () => page.locator('text=No incident matches.').isVisible(), { what: 'the empty incident list' });
    await page.goto(`${d.url}/ui/#/compare`);
    await page.locator('form.compare-form').waitFor();
    await page.goto(`${d.url}/ui/#/incidents/nope~20260101T000000.000Z-manual`);
    await page.locator('text=No incident').first().waitFor();
    // The 404 of the unknown incident is logged by Chromium as a failed resource; nothing else may be.
    assert.deepEqual(errors.filter((e) => !/status of 404 .*\/api\/v1\/incidents\/nope/.test(e)), []);
    await page.context().close();
  });
});
