import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UnknownServerLog, type Alert } from '../../../src/api/alertmanager.js';

const ORDER = ['server_name', 'server', 'instance'] as const;

function alert(name: string, i: number, labels: Record<string, string> = {}): Alert {
  return { status: 'firing', name, fingerprint: `fp${i}`, labels: { alertname: name, ...labels }, annotations: {} };
}

describe('UnknownServerLog: one line per payload, warn once per alert name', () => {
  it('summarises 10,000 unknown alerts in one line with the count, the labels looked for and three examples', () => {
    const log = new UnknownServerLog();
    const alerts = Array.from({ length: 10_000 }, (_, i) => alert('GhostCpu', i, { server_name: `ghost-${i}` }));
    const note = log.note(alerts, ORDER);
    assert.deepEqual(note, {
      level: 'warn',
      msg: '10000 alert(s) named no watched server (looked for labels server_name, server, instance); ignored',
      fields: {
        count: 10_000,
        looked_for: ORDER,
        examples: [
          { alert: 'GhostCpu', fingerprint: 'fp0', found: { server_name: 'ghost-0' } },
          { alert: 'GhostCpu', fingerprint: 'fp1', found: { server_name: 'ghost-1' } },
          { alert: 'GhostCpu', fingerprint: 'fp2', found: { server_name: 'ghost-2' } },
        ],
        new_alert_names: ['GhostCpu'],
      },
    });
  });

  it('is at info for a name already reported, at warn again for a new one, and lists at most ten new names', () => {
    const log = new UnknownServerLog();
    assert.equal(log.note([alert('A', 1, { server: 'x' })], ORDER)?.level, 'warn');
    const again = log.note([alert('A', 2, { server: 'y' })], ORDER);
    assert.equal(again?.level, 'info');
    assert.equal(again?.fields['new_alert_names'], undefined);
    const mixed = log.note([alert('A', 3), alert('B', 4)], ORDER);
    assert.equal(mixed?.level, 'warn');
    assert.deepEqual(mixed?.fields['new_alert_names'], ['B']);
    // The example of the new name comes first.
    assert.deepEqual(mixed?.fields['examples'], [
      { alert: 'B', fingerprint: 'fp4', found: {} },
      { alert: 'A', fingerprint: 'fp3', found: {} },
    ]);
    const many = log.note(Array.from({ length: 25 }, (_, i) => alert(`N${i}`, i)), ORDER);
    assert.deepEqual(many?.fields['new_alert_names'], ['N0', 'N1', 'N2', 'N3', 'N4', 'N5', 'N6', 'N7', 'N8', 'N9']);
    assert.equal(many?.fields['new_alert_names_more'], 15);
    assert.equal(log.note([], ORDER), undefined, 'nothing to say');
  });

  it('explains the instance label when it is all the alert had (Prometheus scraping the daemon)', () => {
    const note = new UnknownServerLog().note([alert('NatsHighCpu', 1, { instance: 'nats-autoprof:9745', job: 'nats-autoprof' })], ORDER);
    assert.deepEqual(note?.fields['examples'], [{ alert: 'NatsHighCpu', fingerprint: 'fp1', found: { instance: 'nats-autoprof:9745' } }]);
    assert.equal(
      note?.fields['hint'],
      "instance names the target Prometheus scraped: when Prometheus scrapes nats-autoprof, that is the daemon itself, not a NATS server; keep the series' server label on the alert (or set alerts.labels)",
    );
  });
});
