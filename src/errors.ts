/**
 * Named errors with context fields. Code branches on the class or a field, never on message text.
 */

export interface ErrorContext {
  server?: string;
  url?: string;
  profile?: string;
  via?: string;
}

export class AutoprofError extends Error {
  override readonly name: string = 'AutoprofError';
  readonly context: ErrorContext;
  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.context = context;
  }
}

/** One problem found in a configuration file: where it is, what is wrong, how to fix it. */
export interface ConfigProblem {
  /** YAML path such as `servers[0].url`; empty for whole-file problems. */
  path: string;
  line?: number;
  column?: number;
  message: string;
  hint?: string;
}

export function formatProblem(file: string, p: ConfigProblem): string {
  const where = p.line !== undefined ? `${file}:${p.line}:${p.column ?? 1}` : file;
  const key = p.path ? `${p.path}: ` : '';
  const hint = p.hint ? ` (hint: ${p.hint})` : '';
  return `${where}: ${key}${p.message}${hint}`;
}

/** The configuration cannot be used. Carries every problem found, not just the first. */
export class ConfigError extends AutoprofError {
  override readonly name = 'ConfigError';
  readonly file: string;
  readonly problems: readonly ConfigProblem[];
  constructor(file: string, problems: readonly ConfigProblem[]) {
    super(
      `invalid configuration ${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n` +
        problems.map((p) => `  ${formatProblem(file, p)}`).join('\n'),
    );
    this.file = file;
    this.problems = problems;
  }
}

/**
 * Something the answer depends on (the object store of incidents) cannot be reached right now; asking again
 * later may work. The HTTP API answers 503 with Retry-After, never "not found".
 */
export class UnavailableError extends AutoprofError {
  override readonly name = 'UnavailableError';
}

/** Command-line usage error (exit code 2). */
export class UsageError extends AutoprofError {
  override readonly name = 'UsageError';
}

/** A monitoring endpoint could not be read or did not return varz. */
export class PollError extends AutoprofError {
  override readonly name = 'PollError';
  /** `http` (status), `network`, `timeout`, `too_large`, `invalid` (not varz JSON) */
  readonly kind: 'http' | 'network' | 'timeout' | 'too_large' | 'invalid' | 'aborted';
  readonly status: number | undefined;
  constructor(
    message: string,
    kind: PollError['kind'],
    context: ErrorContext,
    options?: { cause?: unknown; status?: number },
  ) {
    super(message, context, options);
    this.kind = kind;
    this.status = options?.status;
  }
}

/** A profile could not be captured. `retryable` is set for "cpu profiling already in use". */
export class CaptureError extends AutoprofError {
  override readonly name = 'CaptureError';
  readonly kind:
    | 'busy'
    | 'timeout'
    | 'network'
    | 'no_responders'
    | 'server'
    | 'invalid_reply'
    | 'unsupported'
    | 'too_large'
    | 'aborted'
    | 'storage';
  constructor(message: string, kind: CaptureError['kind'], context: ErrorContext, options?: { cause?: unknown }) {
    super(message, context, options);
    this.kind = kind;
  }
  get retryable(): boolean {
    return this.kind === 'busy';
  }
}

/** The incident store could not write or read. */
export class StorageError extends AutoprofError {
  override readonly name = 'StorageError';
  readonly path: string;
  constructor(message: string, path: string, options?: { cause?: unknown }) {
    super(message, {}, options);
    this.path = path;
  }
}

/** Short, single-line description of any thrown value, for logs and manifests. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
