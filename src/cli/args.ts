/** Command-line parsing shared by the commands. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { closestMatch } from '../config/fields.js';
import { UsageError } from '../errors.js';

export const DEFAULT_CONFIG_FILE = './nats-autoprof.yaml';

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(unknownOption(args, options));
    throw new UsageError((err as Error).message);
  }
}

/** "unknown option --confg; did you mean --config?", with the way to the options. */
function unknownOption(args: readonly string[], options: NonNullable<ParseArgsConfig['options']>): string {
  const long = Object.keys(options);
  const short = Object.values(options).flatMap((o) => (o.short === undefined ? [] : [o.short]));
  const end = args.indexOf('--');
  const given = (end < 0 ? args : args.slice(0, end)).find((a) => {
    if (a.startsWith('--')) return !long.includes(a.slice(2).split('=')[0] ?? '');
    return /^-[^-]/.test(a) && [...a.slice(1)].some((c) => !short.includes(c));
  });
  const name = (given ?? '').split('=')[0] ?? '';
  const close = name.startsWith('--') ? closestMatch(name.slice(2), long) : undefined;
  const guess = close === undefined ? '' : `; did you mean --${close}?`;
  return `unknown option ${name === '' ? '' : `"${name}"`}${guess} (the options are in --help)`;
}

/** `--config`, else $NATS_AUTOPROF_CONFIG, else ./nats-autoprof.yaml. */
export function configFile(flag: string | undefined, env: Record<string, string | undefined>): string {
  return flag ?? env['NATS_AUTOPROF_CONFIG'] ?? DEFAULT_CONFIG_FILE;
}

/** For a configuration file that does not exist: where it was looked for, and how to start one. */
export function missingConfigHint(flag: string | undefined, env: Record<string, string | undefined>): string {
  const start = 'to start, copy config/example.yaml (shipped with nats-autoprof) there and edit it';
  if (flag !== undefined) return `the file was named by --config; ${start}`;
  if (env['NATS_AUTOPROF_CONFIG'] !== undefined) return `the file was named by $NATS_AUTOPROF_CONFIG (no --config was given); ${start}`;
  return `without --config or $NATS_AUTOPROF_CONFIG, nats-autoprof reads ${DEFAULT_CONFIG_FILE}; ${start}, or pass --config FILE`;
}
