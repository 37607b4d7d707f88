import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { formatDuration, formatSize, parseDuration, parseSize } from '../../../src/config/duration.js';

const USAGE = 'use a number with a unit: 250ms, 5s, 10m, 1h, 7d';

describe('parseDuration', () => {
  const valid: [string, number][] = [
    ['0', 0],
    ['0s', 0],
    ['0ms', 0],
    ['250ms', 250],
    ['5s', 5_000],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['7d', 604_800_000],
    ['1m30s', 90_000],
    ['1h2m3s4ms', 3_723_004],
    ['1.5s', 1_500],
    ['1.1s', 1_100],
    ['.5s', 500],
    ['0.25h', 900_000],
    [' 5s ', 5_000],
  ];
  for (const [text, ms] of valid) {
    it(`parses ${JSON.stringify(text)} as ${ms}ms`, () => assert.equal(parseDuration(text), ms));
  }

  const invalid: [string, string][] = [
    ['5x', `"5x" is not a duration; ${USAGE}`],
    ['', `"" is not a duration; ${USAGE}`],
    ['s', `"s" is not a duration; ${USAGE}`],
    ['5', `"5" has no unit; ${USAGE}`],
    ['1.5', `"1.5" has no unit; ${USAGE}`],
    ['-5s', '"-5s" is negative; a duration must be 0 or more'],
    ['5 s', `"5 s" is not a duration; ${USAGE}`],
    ['1m 30s', `"1m 30s" is not a duration; ${USAGE}`],
    ['5us', `"5us" is not a duration; ${USAGE}`],
    ['5sec', `"5sec" is not a duration; ${USAGE}`],
    ['1.s', `"1.s" is not a duration; ${USAGE}`],
    ['0.5ms', '"0.5ms" is not a whole number of milliseconds'],
    ['99999999999999999d', '"99999999999999999d" is too long a duration'],
  ];
  for (const [text, message] of invalid) {
    it(`rejects ${JSON.stringify(text)}`, () => assert.throws(() => parseDuration(text), { message }));
  }
});

describe('formatDuration', () => {
  const table: [number, string][] = [
    [0, '0s'],
    [1, '1ms'],
    [250, '250ms'],
    [1_500, '1500ms'],
    [5_000, '5s'],
    [90_000, '1m30s'],
    [600_000, '10m'],
    [3_600_000, '1h'],
    [5_400_000, '1h30m'],
    [86_400_000, '1d'],
    [14 * 86_400_000, '14d'],
    [90_061_000, '1d1h1m1s'],
  ];
  for (const [ms, text] of table) {
    it(`formats ${ms} as ${text}, which parses back`, () => {
      assert.equal(formatDuration(ms), text);
      assert.equal(parseDuration(text), ms);
    });
  }
  it('rejects negative and fractional input', () => {
    assert.throws(() => formatDuration(-1), { message: '-1 is not a duration in milliseconds' });
    assert.throws(() => formatDuration(1.5), { message: '1.5 is not a duration in milliseconds' });
  });
});

describe('parseSize', () => {
  const valid: [string | number, number][] = [
    [0, 0],
    [1024, 1024],
    ['1024', 1024],
    ['0', 0],
    ['7B', 7],
    ['512KiB', 512 * 1024],
    ['1MiB', 1024 ** 2],
    ['4MiB', 4 * 1024 ** 2],
    ['2GiB', 2 * 1024 ** 3],
    ['1TiB', 1024 ** 4],
    ['1KB', 1_000],
    ['1kB', 1_000],
    ['1MB', 1_000_000],
    ['2GB', 2_000_000_000],
    ['1TB', 1e12],
    ['1.5KiB', 1_536],
    ['0.3KB', 300],
    ['1.5GiB', 1_610_612_736],
    ['64 MiB', 64 * 1024 ** 2],
    [' 2GiB ', 2 * 1024 ** 3],
  ];
  for (const [text, bytes] of valid) {
    it(`parses ${JSON.stringify(text)} as ${bytes} bytes`, () => assert.equal(parseSize(text), bytes));
  }

  const UNITS = 'use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB';
  const invalid: [string | number, string][] = [
    ['-1', '"-1" is negative; a size must be 0 or more'],
    [-1, '-1 is negative; a size must be 0 or more'],
    ['-2GiB', '"-2GiB" is negative; a size must be 0 or more'],
    ['', '"" is not a size; use a number of bytes or a number with a unit: 512KiB, 4MiB, 2GiB, 1MB'],
    ['lots', '"lots" is not a size; use a number of bytes or a number with a unit: 512KiB, 4MiB, 2GiB, 1MB'],
    ['4M', `"4M" has an unknown unit "M"; ${UNITS}`],
    ['4mib', `"4mib" has an unknown unit "mib"; ${UNITS}`],
    ['4Mb', `"4Mb" has an unknown unit "Mb"; ${UNITS}`],
    ['1.5B', '"1.5B" is not a whole number of bytes'],
    [1.5, '1.5 is not a whole number of bytes'],
    ['1.1KiB', '"1.1KiB" is not a whole number of bytes'],
    [Infinity, 'Infinity is not a size; use a number of bytes or a number with a unit: 512KiB, 4MiB, 2GiB, 1MB'],
    ['99999999TiB', '"99999999TiB" is too large a size'],
  ];
  for (const [text, message] of invalid) {
    it(`rejects ${JSON.stringify(text) ?? String(text)}`, () => assert.throws(() => parseSize(text), { message }));
  }
});

describe('formatSize', () => {
  const table: [number, string][] = [
    [0, '0'],
    [1, '1'],
    [1000, '1KB'],
    [1023, '1023'],
    [1024, '1KiB'],
    [1536, '1536'],
    [1_000_000, '1MB'],
    [1_024_000, '1024KB'],
    [1_048_576, '1MiB'],
    [4_194_304, '4MiB'],
    [67_108_864, '64MiB'],
    [2_147_483_648, '2GiB'],
    [2_000_000_000, '2GB'],
    [1_099_511_627_776, '1TiB'],
    [123_457, '123457'],
  ];
  for (const [bytes, text] of table) {
    it(`formats ${bytes} as ${text}, which parses back`, () => {
      assert.equal(formatSize(bytes), text);
      assert.equal(parseSize(text), bytes);
    });
  }
  it('rejects negative and fractional input', () => {
    assert.throws(() => formatSize(-1), { message: '-1 is not a size in bytes' });
    assert.throws(() => formatSize(0.5), { message: '0.5 is not a size in bytes' });
  });
});
