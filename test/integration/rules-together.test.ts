/**
 * Rules that fire together, and firings that are refused, against a real nats-server (issue 12, item 1):
 * - two rules crossing on the same poll give ONE incident with the union of their profiles, both listed;
 * - a firing refused by capture.limit leaves the rule armed: one skip is counted, and it captures at the
 *   next sample once the limit allows.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeTempDirs, startDaemon, tempDir, waitFor, type Daemon } from '../helpers/daemon.js';
import { incidents } from '../helpers/incidents.js';
import { cleanupTempDirs, startServer, type NatsServer } from '../helpers/nats-server.js';

const running: { daemons: Daemon[]; servers: NatsServer[] } = { daemons: [], servers: [] };
after(async () => {
  await Promise.all(running.daemons.map((d) => d.stop('SIGKILL')));
  await Promise.all(running.servers.map((s) => s.stop('SIGKILL')));
  cleanupTempDirs();
  removeTempDirs();
});

interface TriggerView {
  server: string;
  trigger: string;
  state: string;
  armed: boolean;
  last_firing: { outcome: string; incident: string | null; reason: string | null; message: string | null } | null;
}

async function triggers(d: Daemon): Promise<TriggerView[]> {
  const res = await fetch(`${d.url}/api/v1/triggers`, { headers: { authorization: 'Bearer rules-together-token' } });
  return ((await res.json()) as { triggers: TriggerView[] }).triggers;
}

describe('two rules that cross on the same poll', () => {
  it('give one incident holding goroutine and heap, listing both rules', async () => {
    const s = await startServer({ name: 'together' });
    running.servers.push(s);
    const d = await startDaemon({
      config: `
http: { listen: "127.0.0.1:{{PORT}}" }
poll: { interval: 250ms, timeout: 200ms }
servers: [ { url: "${s.monitorUrl}", prof_url: "${s.profUrl}" } ]
triggers:
  - { name: mem-2mib, metric: mem, above: 2MiB, for: 0s, profiles: [goroutine] }
  - { name: mem-1mib, metric: mem, above: 1MiB, for: 0s, profiles: [heap] }
capture: { via: prof_port }
storage: { dir: "{{DIR}}/profiles" }
`,
    });
    running.daemons.push(d);
    const [inc] = await waitFor(() => {
      const f = incidents(`${d.dir}/profiles`);
      return f.length > 0 ? f : undefined;
    }, { timeoutMs: 15_000, what: 'an incident' });
    assert.ok(inc);
    const m = inc.manifest;
    assert.equal(m.status, 'ok');
    assert.deepEqual(m.profiles.map((p) => [p.name, p.error]), [['goroutine', null], ['heap', null]]);
    assert.deepEqual(m.files, ['goroutine.pb.gz', 'heap.pb.gz', 'varz.json']);
    assert.equal(m.trigger?.name, 'mem-2mib', 'the first rule is the primary one');
    assert.deepEqual(m.triggers.map((t) => t.name), ['mem-2mib', 'mem-1mib']);
    for (const t of m.triggers) assert.ok(t.value > t.above);

    const views = await waitFor(async () => {
      const v = await triggers(d);
      return v.every((x) => x.last_firing?.outcome === 'captured') && v.length === 2 ? v : undefined;
    }, { what: 'both rules captured' });
    for (const v of views) {
      assert.equal(v.state, 'fired');
      assert.equal(v.armed, false);
      assert.equal(v.last_firing?.incident, m.id);
    }
    assert.equal(await d.metric('nats_autoprof_captures_skipped_total', { server: s.name, reason: 'busy' }), undefined, 'nothing refused as busy');
    assert.equal(await d.metric('nats_autoprof_triggers_fired_total', { server: s.name, trigger: 'mem-2mib' }), 1);
    assert.equal(await d.metric('nats_autoprof_triggers_fired_total', { server: s.name, trigger: 'mem-1mib' }), 1);
    const capturing = d.logsWith('capturing');
    assert.equal(capturing.length, 1);
    assert.deepEqual(capturing[0]?.['triggers'], ['mem-2mib', 'mem-1mib']);
    assert.deepEqual(capturing[0]?.['profiles'], ['goroutine', 'heap']);

    const list = (await (await fetch(`${d.url}/api/v1/incidents`)).json()) as { incidents: { trigger: string; triggers: string[] }[] };
    assert.deepEqual(list.incidents.map((i) => [i.trigger, i.triggers]), [['mem-2mib', ['mem-2mib', 'mem-1mib']]]);
  });
});

describe('a firing refused by capture.limit', () => {
  it('leaves the rule armed, counts one skip, and captures at the next sample once the limit allows', async () => {
    const s = await startServer({ name: 'limited' });
    running.servers.push(s);
    const dir = tempDir();
    writeFileSync(join(dir, 'token'), 'rules-together-token\n');
    const config = (triggers: string): string => `
http: { listen: "127.0.0.1:{{PORT}}", auth: { bearer_token_file: token } }
poll: { interval: 250ms, timeout: 200ms }
servers: [ { url: "${s.monitorUrl}", prof_url: "${s.profUrl}" } ]
triggers: ${triggers}
capture: { via: prof_port, limit: { count: 1, window: 4s } }
storage: { dir: "{{DIR}}/profiles" }
`;
    const d = await startDaemon({ config: config('[]'), dir });
    running.daemons.push(d);
    await waitFor(async () => (await d.metric('nats_autoprof_up', { server: s.name })) === 1, { what: 'the first poll' });
    // A manual capture takes the one incident the limit allows in its window.
    const manual = await fetch(`${d.url}/api/v1/captures`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer rules-together-token' }, body: JSON.stringify({ server: s.name, profiles: ['goroutine'] }) });
    assert.equal(manual.status, 202);
    const manualAt = Date.now();
    // Wait until it is written: while it runs, a firing would be refused as busy, not by the limit.
    await waitFor(async () => d.logs.some((l) => l.msg?.startsWith('incident written')), { what: 'the manual incident written' });
    d.writeConfig(config('[ { name: mem-rule, metric: mem, above: 1MiB, for: 0s, profiles: [heap] } ]'));
    d.proc.kill('SIGHUP');

    const refused = await waitFor(async () => (await triggers(d)).find((v) => v.last_firing?.outcome === 'refused'), { what: 'a refused firing' });
    assert.equal(refused.armed, true, 'a refused rule stays armed');
    assert.equal(refused.state, 'pending');
    assert.equal(refused.last_firing?.reason, 'limit');
    assert.equal(refused.last_firing?.message, 'capture.limit reached: 1 incidents in 4s');
    // Several samples are refused while the window lasts: the skip is counted once.
    const polls = (await d.metric('nats_autoprof_polls_total', { server: s.name, result: 'ok' })) ?? 0;
    await waitFor(async () => ((await d.metric('nats_autoprof_polls_total', { server: s.name, result: 'ok' })) ?? 0) >= polls + 3, { what: 'more refused samples' });
    if (Date.now() - manualAt < 3_500) assert.equal((await triggers(d))[0]?.last_firing?.outcome, 'refused', 'still refused inside the window');
    assert.equal(await d.metric('nats_autoprof_captures_skipped_total', { server: s.name, reason: 'limit' }), 1);

    const captured = await waitFor(async () => (await triggers(d)).find((v) => v.last_firing?.outcome === 'captured'), { timeoutMs: 15_000, what: 'the rule to capture once the window is over' });
    assert.equal(captured.armed, false);
    assert.equal(captured.state, 'fired');
    const ruleIncident = await waitFor(() => incidents(`${d.dir}/profiles`).find((i) => i.manifest.reason === 'trigger'), { what: 'the rule incident' });
    assert.equal(ruleIncident.manifest.id, captured.last_firing?.incident);
    assert.deepEqual(ruleIncident.manifest.profiles.map((p) => [p.name, p.error]), [['heap', null]]);
    assert.equal(await d.metric('nats_autoprof_captures_skipped_total', { server: s.name, reason: 'limit' }), 1, 'still one skip for the whole episode');
    assert.equal(d.logsWith(/^capture skipped: /).length, 1, 'logged once');
  });
});

describe('an alert about a server a rule just captured', () => {
  it('is answered with the rule incident when it holds the alert profiles, and captured when it does not', async () => {
    const s = await startServer({ name: 'alerted' });
    running.servers.push(s);
    const dir = tempDir();
    writeFileSync(join(dir, 'token'), 'rules-together-token\n');
    const config = (alertProfiles: string): string => `
http: { listen: "127.0.0.1:{{PORT}}", auth: { bearer_token_file: token } }
poll: { interval: 250ms, timeout: 200ms }
servers: [ { url: "${s.monitorUrl}", prof_url: "${s.profUrl}" } ]
triggers: [ { name: mem-rule, metric: mem, above: 1MiB, for: 0s, profiles: [allocs, goroutine] } ]
alerts: { profiles: ${alertProfiles}, cooldown: 10m }
capture: { via: prof_port }
storage: { dir: "{{DIR}}/profiles" }
`;
    const d = await startDaemon({ config: config('[allocs]'), dir });
    running.daemons.push(d);
    const ruleIncident = await waitFor(() => incidents(`${d.dir}/profiles`).find((i) => i.manifest.reason === 'trigger'), { what: 'the rule incident' });
    const alert = (fingerprint: string) =>
      fetch(`${d.url}/api/v1/alerts/alertmanager`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer rules-together-token' },
        body: JSON.stringify({ version: '4', alerts: [{ status: 'firing', labels: { alertname: 'NatsHighMem', server_name: s.name }, annotations: {}, fingerprint }] }),
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as { results: Record<string, unknown>[] } }));

    const covered = await alert('f1');
    assert.equal(covered.status, 200);
    assert.deepEqual(covered.body.results, [
      { fingerprint: 'f1', alert: 'NatsHighMem', server: s.name, result: 'already_captured', id: ruleIncident.manifest.id, triggers: ['mem-rule'] },
    ]);
    assert.equal(await d.metric('nats_autoprof_alerts_received_total', { result: 'already_captured' }), 1);
    assert.equal(d.logsWith('alert answered with the incident a rule captured').length, 1);

    // The rule did not take heap: an alert asking for it is captured.
    d.writeConfig(config('[heap]'));
    d.proc.kill('SIGHUP');
    await waitFor(() => d.logsWith('configuration reloaded').length > 0, { what: 'the reload' });
    const uncovered = await alert('f2');
    assert.equal(uncovered.body.results[0]?.['result'], 'captured');
    const alertIncident = await waitFor(() => incidents(`${d.dir}/profiles`).find((i) => i.manifest.reason === 'alert'), { what: 'the alert incident' });
    assert.deepEqual(alertIncident.manifest.profiles.map((p) => [p.name, p.error]), [['heap', null]]);
    assert.equal(alertIncident.manifest.id, uncovered.body.results[0]?.['id']);
    assert.deepEqual(alertIncident.manifest.triggers, []);
  });
});
