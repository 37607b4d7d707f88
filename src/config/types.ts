/**
 * The validated, frozen configuration the rest of the daemon reads. Produced only by `config/load.ts`.
 * YAML keys are snake_case (a contract with users); here they are camelCase with units in the names.
 */
import type { Secret } from '../secret.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const PROFILE_NAMES = ['cpu', 'allocs', 'heap', 'goroutine', 'block', 'mutex', 'threadcreate'] as const;
export type ProfileName = (typeof PROFILE_NAMES)[number];

export const TRIGGER_METRICS = ['cpu', 'cpu_per_core', 'mem', 'mem_of_limit'] as const;
export type TriggerMetric = (typeof TRIGGER_METRICS)[number];

export const CAPTURE_VIAS = ['auto', 'system_account', 'prof_port'] as const;
export type CaptureVia = (typeof CAPTURE_VIAS)[number];

/** Client TLS settings. `ca`, `cert`, `key` are file paths (read when a connection is made). */
export interface TlsConfig {
  readonly ca: string | undefined;
  readonly cert: string | undefined;
  readonly key: string | undefined;
  /** Skip server certificate verification. */
  readonly insecure: boolean;
}

export interface ServerConfig {
  /** Monitoring base URL without a trailing slash; varz is `${url}/varz`. */
  readonly url: string;
  /** Configured name; when absent the varz `server_name` is used. */
  readonly name: string | undefined;
  /** Base URL of the server's `prof_port` (Go's /debug/pprof handlers), without a trailing slash. */
  readonly profUrl: string | undefined;
  /** Extra request headers for the monitoring endpoint; values are secrets. */
  readonly headers: Readonly<Record<string, Secret>>;
  readonly basicAuth: { readonly username: string; readonly password: Secret } | undefined;
  readonly bearerToken: Secret | undefined;
  readonly tls: TlsConfig | undefined;
}

export interface SystemAccountConfig {
  readonly urls: readonly string[];
  readonly user: string | undefined;
  readonly password: Secret | undefined;
  readonly token: Secret | undefined;
  /** Path of a `.creds` file (JWT + nkey seed). */
  readonly creds: string | undefined;
  /** Contents of the nkey seed file. */
  readonly nkeySeed: Secret | undefined;
  readonly tls: TlsConfig | undefined;
  /** Timeout of one request over the system account (not profiles, which derive theirs). */
  readonly timeoutMs: number;
  /** Watch every server that answers `$SYS.REQ.SERVER.PING.STATSZ` (and passes `select`). */
  readonly discover: boolean;
  /** Client-side, exact selection of discovered servers; empty lists select everything. */
  readonly select: Selector;
  /** After the first reply of a discovery round, stop waiting once no reply came for this long. */
  readonly stallMs: number;
  /** A discovered server missing from every round for this long is no longer watched. */
  readonly forgetAfterMs: number;
  /** prof_port base URLs of discovered servers, by server name (fallback for servers too old for PROFILEZ cpu). */
  readonly profUrls: Readonly<Record<string, string>>;
}

/** Every list is an OR, the lists combine with AND; an empty list does not filter. */
export interface Selector {
  /** Exact names or globs (`*`, `?`). */
  readonly names: readonly string[];
  /** Exact cluster names. */
  readonly clusters: readonly string[];
  /** The server must carry every listed tag (case-insensitive). */
  readonly tags: readonly string[];
}

export interface TriggerConfig {
  /** Unique, `[a-z0-9-]+`. */
  readonly name: string;
  readonly metric: TriggerMetric;
  /** Percent for cpu, cpu_per_core, mem_of_limit; bytes for mem. */
  readonly above: number;
  readonly forMs: number;
  /** Defaults to `above`. Always <= above. */
  readonly rearmBelow: number;
  readonly cooldownMs: number;
  readonly profiles: readonly ProfileName[];
  /** Server names this rule applies to; undefined means every watched server. */
  readonly servers: readonly string[] | undefined;
}

export interface CaptureConfig {
  readonly via: CaptureVia;
  readonly cpuDurationMs: number;
  /** Time allowed for a non-CPU profile; added to the CPU duration for a CPU profile. */
  readonly timeoutMs: number;
  readonly maxConcurrent: number;
  readonly limit: { readonly count: number; readonly windowMs: number };
  /** Largest profile accepted, per profile. */
  readonly maxProfileBytes: number;
}

export interface StorageConfig {
  readonly dir: string;
  readonly retention: {
    readonly maxIncidentsPerServer: number;
    readonly maxTotalSizeBytes: number;
    readonly maxAgeMs: number;
    /** How often retention runs besides after every incident. */
    readonly intervalMs: number;
  };
}

export interface HttpAuthConfig {
  /** Bearer token required on every /api/ endpoint; without one the POST endpoints answer 403. */
  readonly bearerToken: Secret | undefined;
  /** Also require the token on /metrics, /healthz and /readyz. */
  readonly metrics: boolean;
}

export interface HttpTlsConfig {
  /** Certificate and key files (PEM) of the listener. */
  readonly cert: string;
  readonly key: string;
}

export interface AlertsConfig {
  /** Alert labels that name the server, tried in order; `instance` is also matched against monitoring URLs. */
  readonly labels: readonly string[];
  readonly profiles: readonly ProfileName[];
  /** The same alert (fingerprint) does not capture twice within this time. */
  readonly cooldownMs: number;
}

export interface Config {
  /** Absolute path of the file this came from. */
  readonly file: string;
  readonly log: { readonly level: LogLevel };
  readonly http: {
    readonly listen: string;
    readonly host: string;
    readonly port: number;
    readonly auth: HttpAuthConfig;
    readonly tls: HttpTlsConfig | undefined;
  };
  readonly poll: { readonly intervalMs: number; readonly timeoutMs: number; readonly maxBodyBytes: number };
  readonly servers: readonly ServerConfig[];
  readonly systemAccount: SystemAccountConfig | undefined;
  readonly triggers: readonly TriggerConfig[];
  readonly capture: CaptureConfig;
  readonly storage: StorageConfig;
  readonly alerts: AlertsConfig;
  /** How long SIGTERM waits for in-flight captures before aborting them. */
  readonly shutdownTimeoutMs: number;
}
