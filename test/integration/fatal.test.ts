/**
 * The last resort in main.ts: a bug that escapes every handler (an unhandled rejection or an uncaught
 * exception) is logged, in the JSON log and on stderr, before the daemon exits 1. The fault is injected into
 * the real daemon process by a module preloaded with `--import`, fired by SIGUSR2 once the daemon runs.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { removeTempDirs, startDaemon, tempDir } from '../helpers/daemon.js';

const CONFIG = `
http: { listen: "127.0.0.1:{{PORT}}" }
storage: { dir: "{{DIR}}/profiles" }
`;

function injector(): string {
  const file = join(tempDir('nats-autoprof-inject-'), 'inject.mjs');
  writeFileSync(
    file,
    `process.on('SIGUSR2', () => {
  if (process.env.INJECT === 'exception') setImmediate(() => { throw new Error('injected uncaught exception'); });
  else void Promise.reject(new Error('injected unhandled rejection'));
});
`,
  );
  return file;
}

describe('main logs a fatal error before it exits', () => {
  after(removeTempDirs);

  for (const [inject, kind, message] of [
    ['rejection', 'unhandled rejection', 'injected unhandled rejection'],
    ['exception', 'uncaught exception', 'injected uncaught exception'],
  ] as const) {
    it(`an ${kind}: one fatal log line with the error, the same on stderr, exit code 1`, async () => {
      const d = await startDaemon({ config: CONFIG, env: { NODE_OPTIONS: `--import ${injector()}`, INJECT: inject } });
      try {
        d.proc.kill('SIGUSR2');
        const { code } = await d.exited;
        assert.equal(code, 1);
        const fatal = d.logs.filter((l) => l.level === 'fatal');
        assert.equal(fatal.length, 1, d.stdout);
        assert.equal(fatal[0]?.msg, `${kind}: exiting`);
        assert.equal((fatal[0]?.['err'] as { message?: string } | undefined)?.message, message);
        assert.match(d.stderr, new RegExp(`^nats-autoprof: ${kind}: Error: ${message}\\n    at `, 'm'));
      } finally {
        await d.stop();
      }
    });
  }
});
