/**
 * What the poller and discovery do with an exception thrown by the flow they hand their results to
 * (`onResult`, `onRound`): such a throw is a bug in the daemon, but it must not end the watching (in a
 * promise chain it would become an unhandled rejection, and Node exits). Every one is counted; each kind
 * (class and message) is logged once, with its stack, so that a bug hit on every poll does not flood the
 * log. The loop goes on.
 */
import type { Logger } from '../log.js';

/** Distinct kinds logged at most; a message that names the server could otherwise log once per server. */
const MAX_KINDS = 32;

export class CallbackErrors {
  readonly #log: Logger;
  readonly #what: string;
  readonly #count: (() => void) | undefined;
  readonly #seen = new Set<string>();
  #capped = false;

  /** `what` names the callback in the log line, e.g. "handling a poll result". */
  constructor(log: Logger, what: string, count?: () => void) {
    this.#log = log;
    this.#what = what;
    this.#count = count;
  }

  report(err: unknown): void {
    try {
      this.#count?.();
    } catch {
      // A failing counter must not turn containment into a crash.
    }
    const kind = err instanceof Error ? `${err.name}: ${err.message}` : `${typeof err}: ${String(err)}`;
    if (this.#seen.has(kind) || this.#capped) return;
    if (this.#seen.size >= MAX_KINDS) {
      this.#capped = true;
      this.#log.error(`more than ${MAX_KINDS} kinds of error while ${this.#what}; further kinds are only counted`);
      return;
    }
    this.#seen.add(kind);
    this.#log.error({ err }, `internal error while ${this.#what} (a bug; logged once per kind, counted in nats_autoprof_internal_errors_total); watching continues`);
  }
}
