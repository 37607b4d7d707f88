import { pino, type Logger, type DestinationStream } from 'pino';
import type { LogLevel } from './config/types.js';

export type { Logger };

/**
 * JSON lines to stdout (or `dest` in tests). Field names used across the daemon:
 * `server` (label), `url`, `profile`, `via`, `trigger`, `incident`, `err`.
 * Secrets are `Secret` values, which serialise as "[redacted]"; raw secret strings never reach a logger.
 */
export function createLogger(level: LogLevel, dest?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { name: 'nats-autoprof' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest ?? pino.destination({ dest: 1, sync: true }),
  );
}
