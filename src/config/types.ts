/**
 * The validated, frozen configuration the rest of the daemon reads, produced only by `config/load.ts`.
 * Every type here is inferred from the schema (schema.ts); nothing is written twice.
 */
import type { z } from 'zod';

import type { Secret } from '../secret.js';
import type { configSchema } from './schema.js';

export { CAPTURE_VIAS, LOG_LEVELS, PROFILE_NAMES, TRIGGER_METRICS } from './schema.js';

/** Read-only all the way down (a `Secret` stays a `Secret`). */
type Frozen<T> = T extends Secret
  ? T
  : T extends readonly (infer U)[]
    ? readonly Frozen<U>[]
    : T extends object
      ? { readonly [K in keyof T]: Frozen<T[K]> }
      : T;

export type Config = Frozen<z.output<ReturnType<typeof configSchema>>>;

export type LogLevel = Config['log']['level'];
export type ServerConfig = Config['servers'][number];
export type TlsConfig = NonNullable<ServerConfig['tls']>;
export type SystemAccountConfig = NonNullable<Config['systemAccount']>;
/** Every list is an OR, the lists combine with AND; an empty list does not filter. */
export type Selector = SystemAccountConfig['select'];
export type TriggerConfig = Config['triggers'][number];
export type TriggerMetric = TriggerConfig['metric'];
export type ProfileName = TriggerConfig['profiles'][number];
export type CaptureConfig = Config['capture'];
export type CaptureVia = CaptureConfig['via'];
export type StorageConfig = Config['storage'];
export type HttpAuthConfig = Config['http']['auth'];
export type HttpTlsConfig = NonNullable<Config['http']['tls']>;
export type AlertsConfig = Config['alerts'];
