import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  Progress,
  describeWaiting,
  displayPath,
  fileNameFor,
  formatReport,
  parseCaptureArgs,
  waitMs,
  type CaptureOptions,
  type ServerOutcome,
} from '../../../src/cli/capture.js';
import { parseProfilezReply } from '../../../src/capture/profilez.js';
import { CaptureError, UsageError } from '../../../src/errors.js';
import type { ProfileResult } from '../../../src/store/manifest.js';

const SERVER = ['--server', 'nats://127.0.0.1:4222', '--user', 'sys', '--password', 'pw'];

function opts(args: string[], env: Record<string, string | undefined> = {}): CaptureOptions {
  const r = parseCaptureArgs(args, env);
  assert.equal(r.kind, 'capture');
  return r.options;
}

function usage(args: string[], message: string | RegExp, env: Record<string, string | undefined> = {}): void {
  assert.throws(() => parseCaptureArgs(args, env), (err: unknown) => {
    assert.ok(err instanceof UsageError, String(err));
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

describe('capture arguments', () => {
  it('has defaults like nats server request profile', () => {
    const o = opts(['allocs', ...SERVER]);
    assert.deepEqual(o.profiles, ['allocs']);
    assert.equal(o.timeoutMs, 5_000);
    assert.equal(o.level, 0);
    assert.equal(o.dir, './profiles');
    assert.deepEqual(o.selector, { names: [], clusters: [], tags: [] });
  });

  it('takes several profiles, comma-separated or not, without repeats, in order', () => {
    assert.deepEqual(opts(['cpu,allocs', 'heap', 'cpu', ...SERVER]).profiles, ['cpu', 'allocs', 'heap']);
  });

  it('help and version win over everything else', () => {
    assert.deepEqual(parseCaptureArgs(['--help'], {}), { kind: 'help' });
    assert.deepEqual(parseCaptureArgs(['bogus', '-h'], {}), { kind: 'help' });
    assert.deepEqual(parseCaptureArgs(['-v'], {}), { kind: 'version' });
  });

  it('collects selectors from repeated and comma-separated flags', () => {
    const o = opts(['heap', '--name', 'n1', '--name', 'n2,nats-*', '--cluster', 'east', '--tags', 'az:eu-1,role:core', '--tags', 'x', ...SERVER]);
    assert.deepEqual(o.selector, { names: ['n1', 'n2', 'nats-*'], clusters: ['east'], tags: ['az:eu-1', 'role:core', 'x'] });
  });

  it('builds a system account from --server, --user and --password', () => {
    const o = opts(['heap', '--server', 'nats://a:4222,nats://b:4222', '-s', 'nats://c:4222', '--user', 'sys', '--password', 'pw']);
    assert.equal(o.connection.kind, 'server');
    if (o.connection.kind !== 'server') return;
    const a = o.connection.account;
    assert.deepEqual(a.urls, ['nats://a:4222', 'nats://b:4222', 'nats://c:4222']);
    assert.equal(a.user, 'sys');
    assert.equal(a.password?.reveal(), 'pw');
    assert.equal(String(a.password), '[redacted]');
    assert.equal(a.creds, undefined);
  });

  it('reads the password from $NATS_PASSWORD, the flag winning', () => {
    const args = ['heap', '--server', 'nats://a:4222', '--user', 'sys'];
    const fromEnv = opts(args, { NATS_PASSWORD: 'from-env' }).connection;
    assert.ok(fromEnv.kind === 'server' && fromEnv.account.password?.reveal() === 'from-env');
    const fromFlag = opts([...args, '--password', 'flag'], { NATS_PASSWORD: 'from-env' }).connection;
    assert.ok(fromFlag.kind === 'server' && fromFlag.account.password?.reveal() === 'flag');
  });

  it('takes --creds instead of a user', () => {
    const c = opts(['heap', '--server', 'nats://a:4222', '--creds', 'sys.creds']).connection;
    assert.ok(c.kind === 'server' && c.account.creds === 'sys.creds' && c.account.user === undefined);
  });

  it('takes --config alone', () => {
    assert.deepEqual(opts(['heap', '--config', 'a.yaml']).connection, { kind: 'config', file: 'a.yaml' });
    assert.deepEqual(opts(['heap', '-c', 'a.yaml']).connection, { kind: 'config', file: 'a.yaml' });
  });

  it('accepts cpu lengths of 1s to 15s, and any wait for the other profiles', () => {
    assert.equal(opts(['cpu', '--timeout', '1s', ...SERVER]).timeoutMs, 1_000);
    assert.equal(opts(['cpu', '-t', '15s', ...SERVER]).timeoutMs, 15_000);
    assert.equal(opts(['heap', '--timeout', '30s', ...SERVER]).timeoutMs, 30_000);
    assert.equal(opts(['heap', '--timeout', '250ms', ...SERVER]).timeoutMs, 250);
  });

  it('reads the level', () => {
    assert.equal(opts(['goroutine', '--level', '2', ...SERVER]).level, 2);
  });

  const bad: [string, string[], string | RegExp, Record<string, string>?][] = [
    ['an unknown profile', ['cpu', 'Heap', ...SERVER], 'unknown profile "Heap"; valid profiles: cpu allocs heap goroutine block mutex threadcreate allocs_delta'],
    ['no profile', [...SERVER], 'name at least one profile: nats-autoprof capture <profile>... (valid profiles: cpu allocs heap goroutine block mutex threadcreate allocs_delta)'],
    ['a 20s cpu profile', ['cpu', '--timeout', '20s', ...SERVER], "--timeout 20s: for cpu, --timeout is the profile's length and must be between 1s and 15s (PROFILEZ refuses other lengths)"],
    ['a 500ms cpu profile', ['allocs', 'cpu', '--timeout', '500ms', ...SERVER], /^--timeout 500ms: for cpu/],
    ['a timeout that is not a duration', ['heap', '--timeout', 'soon', ...SERVER], /^--timeout: "soon" is not a duration/],
    ['a timeout without a unit', ['heap', '--timeout', '5', ...SERVER], /^--timeout: "5" has no unit/],
    ['a zero timeout', ['heap', '--timeout', '0s', ...SERVER], '--timeout 0s: must be more than 0 and at most 5m'],
    ['level 3', ['heap', '--level', '3', ...SERVER], '--level 3: use 0 (gzip protobuf for go tool pprof, the default), 1 or 2 (text)'],
    ['a negative level', ['heap', '--level=-1', ...SERVER], /^--level -1: /],
    ['an unknown flag', ['heap', '--nmae', 'n1', ...SERVER], 'unknown option "--nmae"; did you mean --name? (the options are in --help)'],
    ['neither --server nor --config', ['heap'], /^say where to connect: --server URL/],
    ['both --server and --config', ['heap', '--config', 'a.yaml', ...SERVER], 'use either --config or --server, not both'],
    ['credentials with --config', ['heap', '--config', 'a.yaml', '--user', 'sys'], /^--user, --password and --creds go with --server/],
    ['--creds with --user', ['heap', '--server', 'nats://a', '--creds', 'x.creds', '--user', 'sys'], 'use either --creds or --user/--password, not both'],
    ['--password without --user', ['heap', '--server', 'nats://a', '--password', 'pw'], '--password needs --user'],
    ['--user without a password', ['heap', '--server', 'nats://a', '--user', 'sys'], '--user needs --password or $NATS_PASSWORD'],
    ['an empty --server', ['heap', '--server', ' , '], '--server needs a URL, e.g. --server nats://127.0.0.1:4222'],
    ['an empty --dir', ['heap', '--dir', '', ...SERVER], '--dir must not be empty'],
  ];
  for (const [what, args, message, env] of bad) {
    it(`refuses ${what}`, () => usage(args, message, env));
  }

  it('never puts the password in a message', () => {
    try {
      parseCaptureArgs(['cpu', '--timeout', '99s', '--server', 'nats://a', '--user', 'sys', '--password', 'hunter2'], {});
      assert.fail('should throw');
    } catch (err) {
      assert.ok(!(err as Error).message.includes('hunter2'));
    }
  });
});

describe('capture waits and files', () => {
  it('waits 2s more than a CPU profile lasts, and --timeout for the others', () => {
    assert.equal(waitMs('cpu', 5_000), 7_000);
    assert.equal(waitMs('allocs', 5_000), 5_000);
  });

  it('names a file after what the server sent', () => {
    assert.equal(fileNameFor('heap', Uint8Array.of(0x1f, 0x8b, 8)), 'heap.pb.gz');
    assert.equal(fileNameFor('cpu', Uint8Array.of(0x1f, 0x8b, 8)), 'cpu.pb.gz');
    assert.equal(fileNameFor('goroutine', new TextEncoder().encode('goroutine profile: total 3')), 'goroutine.txt');
  });

  it('shows paths below the working directory relative to it', () => {
    assert.equal(displayPath('/work/profiles/n1/x/cpu.pb.gz', '/work'), 'profiles/n1/x/cpu.pb.gz');
    assert.equal(displayPath('/tmp/p/cpu.pb.gz', '/work'), '/tmp/p/cpu.pb.gz');
    assert.equal(displayPath('/work', '/work'), '/work');
  });
});

function ok(name: string, file: string, top: ProfileResult['top'], sampleType: string | null = 'cpu'): ProfileResult {
  return { name, file, bytes: 10, sha256: 'x', duration_ms: 5, via: 'system_account', error: null, top, sample_type: sampleType };
}
function failed(name: string, error: string): ProfileResult {
  return { name, file: null, bytes: 0, sha256: null, duration_ms: 5, via: 'system_account', error, top: [], sample_type: null };
}

describe('PROFILEZ replies at --level > 0', () => {
  const reply = (text: string): Uint8Array =>
    new TextEncoder().encode(JSON.stringify({ data: { profile: Buffer.from(text).toString('base64'), error: '' } }));
  const ctx = { server: 'n1', profile: 'goroutine' };

  it('accepts text when a text level was asked for', () => {
    const out = parseProfilezReply(reply('goroutine profile: total 3\n'), ctx, 1);
    assert.equal(Buffer.from(out).toString('utf8'), 'goroutine profile: total 3\n');
  });

  it('still requires gzip at level 0', () => {
    assert.throws(() => parseProfilezReply(reply('goroutine profile: total 3\n'), ctx), (err: unknown) => err instanceof CaptureError && err.kind === 'invalid_reply');
    assert.throws(() => parseProfilezReply(reply('goroutine profile: total 3\n'), ctx, 0), CaptureError);
  });
});

describe('capture report', () => {
  it('prints one aligned line per server and profile, sorted by server, then how to open a profile', () => {
    const inc = (s: string): string => `/work/profiles/${s}/20261126T153000.123Z-manual`;
    const outcomes: ServerOutcome[] = [
      {
        name: 'n10',
        status: 'partial',
        incidentPath: inc('n10'),
        profiles: [
          { result: failed('cpu', 'server could not profile: cpu profiling already in use'), path: undefined },
          { result: ok('allocs', 'allocs.pb.gz', [], 'alloc_space'), path: `${inc('n10')}/allocs.pb.gz` },
        ],
      },
      {
        name: 'n1',
        status: 'ok',
        incidentPath: inc('n1'),
        profiles: [
          { result: ok('cpu', 'cpu.pb.gz', [{ function: 'runtime.futex', flat: 421, share: 0.4214 }]), path: `${inc('n1')}/cpu.pb.gz` },
          { result: ok('allocs', 'allocs.txt', [], null), path: `${inc('n1')}/allocs.txt` },
        ],
      },
    ];
    assert.equal(
      formatReport(outcomes, '/work'),
      [
        'n1  cpu     profiles/n1/20261126T153000.123Z-manual/cpu.pb.gz  top: runtime.futex (42.1%)',
        'n1  allocs  profiles/n1/20261126T153000.123Z-manual/allocs.txt',
        'n10 cpu     FAILED: server could not profile: cpu profiling already in use',
        'n10 allocs  profiles/n10/20261126T153000.123Z-manual/allocs.pb.gz  top: (no samples)',
        '',
        'Open a profile with: go tool pprof -http=: profiles/n1/20261126T153000.123Z-manual/cpu.pb.gz   (or -top for a text summary)',
        '',
      ].join('\n'),
    );
  });

  it('gives no pprof hint when nothing was saved as protobuf', () => {
    const out = formatReport([{ name: 'n1', status: 'failed', incidentPath: undefined, profiles: [{ result: failed('heap', 'boom'), path: undefined }] }], '/');
    assert.equal(out, 'n1 heap  FAILED: boom\n');
  });

  it('says who is still awaited', () => {
    const w = new Map([
      ['n2', { profile: 'cpu', sinceMs: 1_000 }],
      ['n1', { profile: 'allocs', sinceMs: 2_500 }],
      ['n3', { profile: 'cpu', sinceMs: 0 }],
    ]);
    assert.equal(describeWaiting(w, 4_000), 'waiting for n1 (allocs 1s), n2 (cpu 3s), n3 (cpu 4s)');
    assert.equal(describeWaiting(w, 4_000, 2), 'waiting for n1 (allocs 1s), n2 (cpu 3s), +1 more');
  });
});

describe('capture progress', () => {
  function sink(columns?: number): { out: { write(s: string): void; columns?: number }; text: () => string } {
    let text = '';
    return { out: { write: (s: string) => void (text += s), ...(columns === undefined ? {} : { columns }) }, text: () => text };
  }

  it('writes nothing when stderr is not a terminal', () => {
    const s = sink();
    const p = new Progress(s.out, false);
    p.status('waiting');
    p.line('hello');
    p.done();
    assert.equal(s.text(), '');
  });

  it('rewrites one status line in place and clears it before permanent lines', () => {
    const s = sink(30);
    const p = new Progress(s.out, true);
    p.status('connecting');
    p.line('connected');
    p.status('waiting for a very long list of servers that does not fit');
    p.done();
    p.done();
    assert.equal(
      s.text(),
      '\r\x1b[Kconnecting' + '\r\x1b[K' + 'connected\n' + '\r\x1b[Kwaiting for a very long list…' + '\r\x1b[K',
    );
  });
});
