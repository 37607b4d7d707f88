/**
 * The published configuration schema: `config/schema.json` and the README's reference and sample error are
 * what the build generates from src/config/schema.ts, the shipped configurations validate against the JSON
 * Schema, and a typo'd key does not.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';

import { configJsonSchema, configReferenceTable, replaceBetween, sampleError, SAMPLE_CONFIG } from '../../../src/config/reference.js';

const root = join(import.meta.dirname, '..', '..', '..');
const read = (file: string): string => readFileSync(join(root, file), 'utf8');
const REBUILD = 'run npm run build and commit the result';

function validator(): (data: unknown) => string[] {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  const validate = ajv.compile(JSON.parse(read('config/schema.json')) as object);
  return (data) => (validate(data) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params)}`));
}

describe('config/schema.json', () => {
  it('is what the build generates from the schema', () => {
    assert.equal(read('config/schema.json'), `${JSON.stringify(configJsonSchema(), null, 2)}\n`, REBUILD);
  });

  it("the README's configuration reference and sample error are what the build generates", () => {
    const readme = read('README.md');
    assert.equal(replaceBetween(readme, 'config-reference', configReferenceTable()), readme, REBUILD);
    const sample = `\`\`\`yaml\n${SAMPLE_CONFIG}\`\`\`\n\ngives\n\n\`\`\`\n${sampleError()}\n\`\`\``;
    assert.equal(replaceBetween(readme, 'config-sample-error', sample), readme, REBUILD);
    // The sample points at the key of an unknown key and at the value of a wrong value.
    assert.match(sampleError(), /config\.yaml:3:3: poll\.intervall: unknown key \(hint: did you mean "interval"\?\)/);
    assert.match(sampleError(), /config\.yaml:9:12: triggers\[0\]\.above: expected a number, got "eighty"/);
  });

  it('config/example.yaml names it for the YAML language server', () => {
    assert.equal(read('config/example.yaml').split('\n')[0], '# yaml-language-server: $schema=./schema.json');
  });

  for (const file of ['config/example.yaml', 'config/demo.yaml', 'deploy/docker/config.yaml', 'deploy/compose/nats-autoprof.yaml', 'deploy/systemd-config.yaml']) {
    it(`${file} validates against it (\${VAR}, durations and sizes included)`, () => {
      assert.deepEqual(validator()(parse(read(file))), []);
    });
  }

  it("example.yaml's commented-out system_account block validates once uncommented", () => {
    const sys = {
      system_account: { url: ['nats://a:4222', '${NATS_URL:-nats://b:4222}'], user: 'sys', password_file: '/run/secrets/sys', timeout: '5s', discover: true, select: { names: ['nats-*'] }, stall: '250ms', forget_after: '5m' },
    };
    assert.deepEqual(validator()(sys), []);
  });

  it('a typo, a wrong type or a bad value fails it', () => {
    const check = validator();
    assert.match(check({ poll: { intervall: '5s' } }).join('\n'), /\/poll must NOT have additional properties \{"additionalProperty":"intervall"\}/);
    assert.match(check({ log: { levle: 'info' } }).join('\n'), /\/log must NOT have additional properties \{"additionalProperty":"levle"\}/);
    assert.notDeepEqual(check({ poll: { interval: '5 seconds' } }), []);
    assert.notDeepEqual(check({ capture: { max_concurrent: 'four' } }), []);
    assert.notDeepEqual(check({ capture: { via: 'ssh' } }), []);
    assert.notDeepEqual(check({ triggers: [{ name: 'x', metric: 'cpu' }] }), [], 'above is required');
    assert.notDeepEqual(check({ system_account: { url: 'ws://h:80' } }), []);
    assert.deepEqual(check({ capture: { max_concurrent: '${MAX:-4}', max_profile_size: '64MiB', cpu_duration: '1m30s' } }), []);
  });
});
