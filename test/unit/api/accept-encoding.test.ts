import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { acceptsGzip } from '../../../src/api/http-server.js';

describe('acceptsGzip', () => {
  const cases: [string | string[] | undefined, boolean][] = [
    [undefined, false],
    ['', false],
    ['identity', false],
    ['gzip', true],
    ['GZip', true],
    ['x-gzip', true],
    ['deflate, gzip;q=1.0, *;q=0.5', true], // Prometheus 2.x
    ['gzip, deflate, br', true],
    ['br', false],
    ['gzip;q=0', false],
    ['gzip; q=0.000', false],
    ['*', true],
    ['*;q=0', false],
    ['gzip;q=0, *', false],
    ['br, *;q=0.1', true],
    [['br', 'gzip'], true],
  ];
  for (const [header, want] of cases) {
    it(`${JSON.stringify(header)} -> ${want}`, () => assert.equal(acceptsGzip(header), want));
  }
});
