/** Command-line parsing shared by the commands. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../errors.js';

export const DEFAULT_CONFIG_FILE = './nats-autoprof.yaml';

export function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** `--config`, else $NATS_AUTOPROF_CONFIG, else ./nats-autoprof.yaml. */
export function configFile(flag: string | undefined, env: Record<string, string | undefined>): string {
  return flag ?? env['NATS_AUTOPROF_CONFIG'] ?? DEFAULT_CONFIG_FILE;
}
