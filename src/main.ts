#!/usr/bin/env -S node --max-semi-space-size=4
/**
 * Entry point: argv, signals, exit codes. Nothing else in the daemon touches `process`.
 *   0 success, 1 runtime failure, 2 bad configuration or usage.
 */
import { readFileSync } from 'node:fs';
import { App } from './app.js';
import { configFile, missingConfigHint, parse } from './cli/args.js';
import { capture } from './cli/capture.js';
import { demo } from './cli/demo.js';
import { CHECK_HELP, MAIN_HELP, RUN_HELP } from './cli/help.js';
import { configWarnings, loadConfig } from './config/load.js';
import { renderConfig } from './config/render.js';
import { ConfigError, StorageError, UsageError, describeError } from './errors.js';
import { tuneHeap } from './heap.js';
import { createLogger, type Logger } from './log.js';

const EXIT_OK = 0;
const EXIT_RUNTIME = 1;
const EXIT_CONFIG = 2;

/** The running daemon's logger, once `run` has made one: a fatal error is logged there as well as on stderr. */
let daemonLog: Logger | undefined;

/**
 * Last resort for a bug that escaped every handler: say what happened, in the log (JSON) and on stderr,
 * then exit 1. The state after such an error is unknown, so the daemon does not go on.
 */
function fatal(kind: 'unhandled rejection' | 'uncaught exception', err: unknown): void {
  try {
    daemonLog?.fatal({ err }, `${kind}: exiting`);
  } catch {
    // stderr below still says it.
  }
  process.stderr.write(`nats-autoprof: ${kind}: ${err instanceof Error && err.stack ? err.stack : describeError(err)}\n`);
  process.exit(EXIT_RUNTIME);
}
process.on('unhandledRejection', (reason) => fatal('unhandled rejection', reason));
process.on('uncaughtException', (err) => fatal('uncaught exception', err));

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const commonOptions = {
  config: { type: 'string', short: 'c' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

async function check(args: string[]): Promise<number> {
  const { values } = parse(args, commonOptions);
  if (values.help) return print(CHECK_HELP);
  if (values.version) return print(`${version()}\n`);
  const config = await loadConfig(configFile(values.config, process.env), process.env, missingConfigHint(values.config, process.env));
  for (const warning of configWarnings(config)) process.stderr.write(`warning: ${warning}\n`);
  process.stdout.write(renderConfig(config));
  return EXIT_OK;
}

async function run(args: string[]): Promise<number> {
  const { values } = parse(args, commonOptions);
  if (values.help) return print(RUN_HELP);
  if (values.version) return print(`${version()}\n`);
  tuneHeap(process.execArgv, process.env['NODE_OPTIONS'] ?? '');
  const file = configFile(values.config, process.env);
  const config = await loadConfig(file, process.env, missingConfigHint(values.config, process.env));
  const log = createLogger(config.log.level);
  daemonLog = log;
  for (const warning of configWarnings(config)) log.warn(warning);
  const app = new App(config, { log });
  try {
    await app.start();
  } catch (err) {
    if (err instanceof StorageError) {
      log.error({ err: err.message, path: err.path }, 'storage directory is not usable');
      process.stderr.write(`nats-autoprof: ${err.message}\n`);
      return EXIT_CONFIG;
    }
    log.error({ err }, 'could not start');
    process.stderr.write(`nats-autoprof: could not start: ${describeError(err)}\n`);
    await app.stop();
    return EXIT_RUNTIME;
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    let reloading = Promise.resolve();
    const stop = (signal: string): void => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting now');
        resolve(EXIT_RUNTIME);
        return;
      }
      stopping = true;
      log.info({ signal }, 'stopping');
      app.stop().then(
        () => resolve(EXIT_OK),
        (err: unknown) => {
          log.error({ err }, 'error while stopping');
          resolve(EXIT_RUNTIME);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      reloading = reloading.then(async () => {
        if (stopping) return;
        log.info({ file }, 'SIGHUP: reloading configuration');
        try {
          const next = await loadConfig(file, process.env);
          for (const warning of configWarnings(next)) log.warn(warning);
          app.reload(next);
        } catch (err) {
          app.reloadFailed();
          if (err instanceof ConfigError) {
            log.error({ problems: err.problems.length, errors: err.message }, 'configuration reload failed; keeping the running configuration');
          } else {
            log.error({ err }, 'configuration reload failed; keeping the running configuration');
          }
        }
      });
    });
  });
}

function print(text: string): number {
  process.stdout.write(text);
  return EXIT_OK;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'run':
        return await run(rest);
      case 'check':
        return await check(rest);
      case 'capture':
        return await capture(rest, process, version);
      case 'demo':
        return await demo(rest, process, version);
      case '-h':
      case '--help':
      case 'help':
        return print(MAIN_HELP);
      case '-v':
      case '--version':
        return print(`${version()}\n`);
      case undefined:
        process.stderr.write(MAIN_HELP);
        return EXIT_CONFIG;
      default:
        throw new UsageError(`unknown command "${command}"; run nats-autoprof --help`);
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return EXIT_CONFIG;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`nats-autoprof: ${err.message}\n`);
      return EXIT_CONFIG;
    }
    process.stderr.write(`nats-autoprof: ${describeError(err)}\n`);
    return EXIT_RUNTIME;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Give stdout a moment, then make sure no stray handle keeps us alive.
    setTimeout(() => process.exit(code), 100).unref();
  },
  (err: unknown) => {
    process.stderr.write(`nats-autoprof: ${describeError(err)}\n`);
    process.exit(EXIT_RUNTIME);
  },
);
