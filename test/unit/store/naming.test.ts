import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  TMP_PREFIX,
  formatTimestamp,
  incidentDirName,
  incidentId,
  isSafeSegment,
  parseIncidentDirName,
  parseIncidentId,
  profileFileName,
  serverDirName,
} from '../../../src/store/naming.js';

const T = Date.UTC(2026, 10, 26, 15, 30, 0, 123); // 2026-11-26T15:30:00.123Z

describe('serverDirName', () => {
  const cases: [string, string][] = [
    ['nats-1', 'nats-1'],
    ['n1.example.com', 'n1.example.com'],
    ['http://10.0.0.1:8222', 'http___10.0.0.1_8222'],
    ['a/b\\c', 'a_b_c'],
    ['', '_'],
    ['.', '_.'],
    ['..', '_..'],
    ['.hidden', '_.hidden'],
    ['.tmp-x', '_.tmp-x'],
    ['a~b', 'a_b'],
    ['nul\0byte', 'nul_byte'],
    ['späß', 'sp__'],
    ['NAEYVBBCPGUBBGVKKEC2OVZJW2TZHTWBRSJK2IO3MFFNTGRPAGVC6IES', 'NAEYVBBCPGUBBGVKKEC2OVZJW2TZHTWBRSJK2IO3MFFNTGRPAGVC6IES'],
  ];
  for (const [input, want] of cases) {
    it(`${JSON.stringify(input)} -> ${want}`, () => assert.equal(serverDirName(input), want));
  }
  it('caps the length at 100 characters', () => {
    assert.equal(serverDirName('x'.repeat(300)), 'x'.repeat(100));
    assert.equal(serverDirName(`.${'x'.repeat(300)}`), `_.${'x'.repeat(98)}`);
  });
  it('is idempotent', () => {
    for (const [input] of cases) assert.equal(serverDirName(serverDirName(input)), serverDirName(input));
  });
});

describe('incidentDirName and formatTimestamp', () => {
  it('formats UTC with millisecond precision', () => {
    assert.equal(formatTimestamp(T), '20261126T153000.123Z');
    assert.equal(formatTimestamp(0), '19700101T000000.000Z');
    assert.equal(formatTimestamp(Date.UTC(2026, 0, 2, 3, 4, 5, 6)), '20260102T030405.006Z');
  });
  it('rejects timestamps outside 1970..9999', () => {
    assert.throws(() => formatTimestamp(-1), RangeError);
    assert.throws(() => formatTimestamp(Number.NaN), RangeError);
    assert.throws(() => formatTimestamp(253402300800000), RangeError);
  });
  it('joins timestamp and sanitised label', () => {
    assert.equal(incidentDirName(T, 'cpu_high'), '20261126T153000.123Z-cpu_high');
    assert.equal(incidentDirName(T, 'manual'), '20261126T153000.123Z-manual');
    assert.equal(incidentDirName(T, 'mem > 2GiB'), '20261126T153000.123Z-mem___2GiB');
    assert.equal(incidentDirName(T, '../etc'), '20261126T153000.123Z-_.._etc');
  });
  it('parses back what it produced, with collision suffixes', () => {
    assert.deepEqual(parseIncidentDirName('20261126T153000.123Z-cpu_high'), { startedAtMs: T, label: 'cpu_high' });
    assert.deepEqual(parseIncidentDirName('20261126T153000.123Z-alert-2'), { startedAtMs: T, label: 'alert-2' });
  });
  it('does not parse other names', () => {
    for (const name of [
      `${TMP_PREFIX}20261126T153000.123Z-x`,
      '20261126T153000.123Z',
      '20261126T153000.123Z-',
      '20260231T000000.000Z-x', // 31 February
      '20261126T153000Z-x',
      'lost+found',
    ]) {
      assert.equal(parseIncidentDirName(name), undefined, name);
    }
  });
});

describe('incidentId and parseIncidentId', () => {
  it('round-trips', () => {
    const id = incidentId('nats-1', '20261126T153000.123Z-cpu_high');
    assert.equal(id, 'nats-1~20261126T153000.123Z-cpu_high');
    assert.deepEqual(parseIncidentId(id), { serverDir: 'nats-1', dirName: '20261126T153000.123Z-cpu_high' });
  });
  it('accepts every id the naming functions can produce', () => {
    for (const server of ['', '.', '..', 'a..b', 'a/b', '~', 'x'.repeat(500)]) {
      for (const label of ['', '..', 'cpu high', 'l'.repeat(500)]) {
        const id = incidentId(serverDirName(server), incidentDirName(T, label));
        assert.ok(parseIncidentId(id), id);
      }
    }
  });
  // Literal matching: ids are never percent-decoded here, and `%` is not a character our names use,
  // so an encoded traversal is simply an unknown (invalid) id.
  const bad = [
    '',
    '~',
    'a',
    'a~',
    '~b',
    'a~b~c',
    '..~x',
    '.~x',
    'a~..',
    'a~.',
    'a/b~c',
    'a~b/c',
    '/etc~passwd',
    'a\\b~c',
    'a~b\\c',
    'a~b\0c',
    'a\0~b',
    '.tmp-a~b',
    'a~.tmp-20261126T153000.123Z-x',
    '%2e%2e~x',
    'a~%2e%2e%2fetc',
    'a b~c',
    'a~b c',
    `a~${'x'.repeat(201)}`,
  ];
  for (const id of bad) {
    it(`rejects ${JSON.stringify(id)}`, () => assert.equal(parseIncidentId(id), undefined));
  }
  it('allows a `..` inside a segment (it cannot traverse without a separator)', () => {
    assert.deepEqual(parseIncidentId('a..b~c'), { serverDir: 'a..b', dirName: 'c' });
  });
});

describe('misc', () => {
  it('profileFileName', () => {
    assert.equal(profileFileName('cpu'), 'cpu.pb.gz');
    assert.equal(profileFileName('allocs'), 'allocs.pb.gz');
  });
  it('isSafeSegment', () => {
    assert.equal(isSafeSegment('varz.json'), true);
    assert.equal(isSafeSegment('.x'), false);
    assert.equal(isSafeSegment(''), false);
    assert.equal(isSafeSegment('a/b'), false);
  });
  it('TMP_PREFIX', () => assert.equal(TMP_PREFIX, '.tmp-'));
});
