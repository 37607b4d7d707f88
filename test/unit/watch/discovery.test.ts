import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { Discovery, type DiscoveryRound, type ScatterGather } from '../../../src/watch/discovery.js';

const dir = join(import.meta.dirname, '..', '..', 'fixtures', 'statsz');
const a = readFileSync(join(dir, '2.10.27-fx-a.json'));
const b = readFileSync(join(dir, '2.10.27-fx-b.json'));

function fake(connected: boolean, replies: Uint8Array[], ended = 'count'): ScatterGather & { calls: number } {
  return {
    connected,
    calls: 0,
    async requestAll() {
      this.calls++;
      return { replies, expected: 2, ended, durationMs: 12 };
    },
  };
}

async function oneRound(req: ScatterGather, select = { names: [] as string[], clusters: [] as string[], tags: [] as string[] }): Promise<DiscoveryRound[]> {
  const rounds: DiscoveryRound[] = [];
  const d = new Discovery({
    requester: req,
    settings: () => ({ intervalMs: 60_000, timeoutMs: 1_000, stallMs: 100, select }),
    onRound: (r) => rounds.push(r),
    log: pino({ level: 'silent' }),
  });
  await d.round();
  return rounds;
}

describe('Discovery rounds', () => {
  it('parses every reply and keeps the selected servers', async () => {
    const [r] = await oneRound(fake(true, [a, b, new TextEncoder().encode('junk')]), { names: ['fx-b'], clusters: [], tags: [] });
    assert.equal(r?.ended, 'count');
    assert.equal(r?.expected, 2);
    assert.equal(r?.durationMs, 12);
    assert.equal(r?.invalid, 1);
    assert.deepEqual(r?.selected.map((s) => s.varz.serverName), ['fx-b']);
  });

  it('reports a round without a connection, and sends nothing', async () => {
    const req = fake(false, [a]);
    const [r] = await oneRound(req);
    assert.equal(r?.ended, 'not_connected');
    assert.deepEqual(r?.selected, []);
    assert.equal(req.calls, 0);
  });

  it('is paused while settings are undefined (discover: false)', async () => {
    const rounds: DiscoveryRound[] = [];
    const req = fake(true, [a]);
    const d = new Discovery({ requester: req, settings: () => undefined, onRound: (r) => rounds.push(r), log: pino({ level: 'silent' }) });
    d.start();
    await d.round();
    assert.equal(d.running, false);
    assert.equal(req.calls, 0);
    assert.deepEqual(rounds, []);
    await d.stop();
  });
});

describe('Discovery contains exceptions of the flow', () => {
  function throwing(onRound: () => void, settingsThrow = false) {
    const logs: { msg: string; err?: { message: string } }[] = [];
    let errors = 0;
    const req = fake(true, [a, b]);
    const d = new Discovery({
      requester: req,
      settings: () => {
        if (settingsThrow) throw new RangeError('settings bug');
        return { intervalMs: 60_000, timeoutMs: 1_000, stallMs: 100, select: { names: [], clusters: [], tags: [] } };
      },
      onRound,
      log: pino({ level: 'error' }, { write: (line: string) => void logs.push(JSON.parse(line) as (typeof logs)[number]) }),
      onError: () => errors++,
    });
    return { d, req, logs, errors: () => errors };
  }

  it('onRound throwing: every round still runs and resolves, each throw is counted, the error is logged once', async () => {
    let calls = 0;
    const t = throwing(() => {
      calls++;
      throw new TypeError('flow bug');
    });
    await t.d.round();
    await t.d.round();
    await t.d.round();
    assert.equal(calls, 3);
    assert.equal(t.req.calls, 3);
    assert.equal(t.errors(), 3);
    assert.equal(t.logs.length, 1);
    assert.equal(
      t.logs[0]?.msg,
      'internal error while handling a discovery round (a bug; logged once per kind, counted in nats_autoprof_internal_errors_total); watching continues',
    );
    assert.equal(t.logs[0]?.err?.message, 'flow bug');
  });

  it('a scheduled round whose onRound throws does not reject (no unhandled rejection); stop() resolves', async () => {
    let reached!: () => void;
    const thrown = new Promise<void>((r) => (reached = r));
    const t = throwing(() => {
      reached();
      throw new Error('flow bug');
    });
    t.d.start();
    await thrown;
    await t.d.stop();
    assert.equal(t.errors(), 1);
  });

  it('settings() throwing is contained the same way', async () => {
    const t = throwing(() => undefined, true);
    await t.d.round();
    assert.equal(t.errors(), 1);
    assert.equal(t.logs[0]?.err?.message, 'settings bug');
    assert.equal(t.req.calls, 0);
  });
});
