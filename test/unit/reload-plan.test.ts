/** planReload: which changed keys need a restart, and which config takes effect now (a table). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { planReload } from '../../src/reload-plan.js';

const BASE = `
http: { listen: "127.0.0.1:9745" }
poll: { interval: 5s, timeout: 2s }
servers: [ { url: "http://127.0.0.1:8222" } ]
system_account: { url: "nats://127.0.0.1:4222", user: sys, password: pw }
triggers: [ { name: hot, metric: cpu, above: 80, profiles: [cpu] } ]
storage: { dir: /var/lib/nats-autoprof }
`;

function config(text: string) {
  return parseConfigText(text, 'test.yaml', {}, () => 'secret');
}

describe('planReload', () => {
  const cases: { name: string; edit: (t: string) => string; restart: string[] }[] = [
    { name: 'nothing changed', edit: (t) => t, restart: [] },
    { name: 'a new trigger applies at once', edit: (t) => t.replace('above: 80', 'above: 90'), restart: [] },
    { name: 'http.listen needs a restart', edit: (t) => t.replace('9745', '9746'), restart: ['http.listen'] },
    { name: 'storage.dir needs a restart', edit: (t) => t.replace('/var/lib/nats-autoprof', '/tmp/x'), restart: ['storage.dir'] },
    { name: 'poll timing needs a restart', edit: (t) => t.replace('interval: 5s', 'interval: 10s'), restart: ['poll'] },
    { name: 'poll.max_in_flight needs a restart', edit: (t) => t.replace('timeout: 2s }', 'timeout: 2s, max_in_flight: 16 }'), restart: ['poll'] },
    { name: 'the connection password needs a restart', edit: (t) => t.replace('password: pw', 'password: other'), restart: ['system_account (connection)'] },
    { name: 'http.external_url applies at once', edit: (t) => t.replace('listen: "127.0.0.1:9745" }', 'listen: "127.0.0.1:9745", external_url: "https://ap.example.com" }'), restart: [] },
    { name: 'ui.history applies at once', edit: (t) => `${t}ui: { history: 30m }\n`, restart: [] },
    { name: 'ui.cache_size needs a restart', edit: (t) => `${t}ui: { cache_size: 128MiB }\n`, restart: ['ui.cache_size'] },
    { name: 'discovery settings apply at once', edit: (t) => t.replace('password: pw }', 'password: pw, discover: true }'), restart: [] },
    {
      name: 'several at once, in a fixed order',
      edit: (t) => t.replace('9745', '9746').replace('interval: 5s', 'interval: 10s').replace('/var/lib/nats-autoprof', '/tmp/x'),
      restart: ['http.listen', 'storage.dir', 'poll'],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const prev = config(BASE);
      const next = config(c.edit(BASE));
      const plan = planReload(prev, next);
      assert.deepEqual(plan.restartNeeded, c.restart);
      // What needs a restart is kept; the rest is the new config.
      assert.equal(plan.effective.http.listen, prev.http.listen);
      assert.equal(plan.effective.storage.dir, prev.storage.dir);
      assert.equal(plan.effective.poll, prev.poll);
      assert.equal(plan.effective.triggers, next.triggers);
      assert.equal(plan.effective.ui.historyMs, next.ui.historyMs);
      assert.equal(plan.effective.http.externalUrl, next.http.externalUrl);
      assert.equal(plan.effective.ui.cacheSizeBytes, prev.ui.cacheSizeBytes);
      assert.equal(plan.effective.systemAccount, plan.sameConnection ? next.systemAccount : prev.systemAccount);
      assert.equal(plan.sameConnection, !c.restart.includes('system_account (connection)'));
    });
  }
});
