/**
 * Whole-cluster watching on a schedule: every interval, one `$SYS.REQ.SERVER.PING.STATSZ` round through
 * the system account, parsed and selected (exactly, on this side). The outcome of each round is handed to
 * `onRound` as a plain value; what it means for the inventory, metrics and rules is decided by the caller.
 */
import type { Selector } from '../config/types.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { CallbackErrors } from './callback-errors.js';
import { activeServersOf, parseStatsz, selects, STATSZ_PING_SUBJECT, type StatszReading } from './fleet.js';

/** What discovery needs from the system-account connection (see capture/nats-connection.ts). */
export interface ScatterGather {
  readonly connected: boolean;
  requestAll(
    subject: string,
    body: string,
    opts: { timeoutMs: number; stallMs: number; expected?: (data: Uint8Array) => number | undefined; maxReplies?: number; signal?: AbortSignal },
  ): Promise<{ replies: Uint8Array[]; expected: number | undefined; ended: string; durationMs: number }>;
}

export interface DiscoverySettings {
  intervalMs: number;
  timeoutMs: number;
  stallMs: number;
  select: Selector;
}

export interface DiscoveryRound {
  /** How the round ended: count, stall, timeout, no_responders, max_replies, not_connected, error. */
  readonly ended: string;
  readonly expected: number | undefined;
  /** Undefined when no request was made (not connected). */
  readonly durationMs: number | undefined;
  /** Servers that answered and pass the selection. */
  readonly selected: readonly StatszReading[];
  /** Replies that were not STATSZ at all. */
  readonly invalid: number;
}

export interface DiscoveryOptions {
  requester: ScatterGather;
  /** Read at every round, so a reload applies at once; undefined pauses discovery. */
  settings: () => DiscoverySettings | undefined;
  /** An exception thrown here is logged once per kind, counted (`onError`), and the rounds go on. */
  onRound: (round: DiscoveryRound) => void;
  log: Logger;
  /** Counts each exception thrown by `onRound` or `settings` (the app's `internal_errors_total{where="discovery"}`). */
  onError?: () => void;
}

/** Bounds the memory one round may take, whatever answers. */
const MAX_REPLIES = 100_000;

export class Discovery {
  readonly #o: DiscoveryOptions;
  readonly #abort = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  readonly #errors: CallbackErrors;

  constructor(o: DiscoveryOptions) {
    this.#o = o;
    this.#errors = new CallbackErrors(o.log, 'handling a discovery round', o.onError);
  }

  get running(): boolean {
    return this.#timer !== undefined;
  }

  /** Runs a round now and then every interval; a round still running when the next is due is not doubled. */
  start(): void {
    const s = this.#o.settings();
    if (this.#timer || !s || this.#abort.signal.aborted) return;
    const tick = (): void => {
      if (this.#inFlight || this.#abort.signal.aborted) return;
      this.#inFlight = this.round().finally(() => {
        this.#inFlight = undefined;
      });
    };
    this.#timer = setInterval(tick, s.intervalMs);
    tick();
  }

  /** One round; never throws (an exception from the callbacks is contained and reported). */
  async round(): Promise<void> {
    try {
      await this.#round();
    } catch (err) {
      this.#errors.report(err);
    }
  }

  async #round(): Promise<void> {
    const s = this.#o.settings();
    if (!s) return;
    const req = this.#o.requester;
    if (!req.connected) {
      this.#o.onRound({ ended: 'not_connected', expected: undefined, durationMs: undefined, selected: [], invalid: 0 });
      return;
    }
    let result;
    try {
      result = await req.requestAll(STATSZ_PING_SUBJECT, '', {
        timeoutMs: s.timeoutMs,
        stallMs: s.stallMs,
        expected: activeServersOf,
        maxReplies: MAX_REPLIES,
        signal: this.#abort.signal,
      });
    } catch (err) {
      this.#o.log.debug({ err: describeError(err) }, 'discovery round failed');
      this.#o.onRound({ ended: 'error', expected: undefined, durationMs: undefined, selected: [], invalid: 0 });
      return;
    }
    if (result.ended === 'aborted') return;
    const selected: StatszReading[] = [];
    let invalid = 0;
    for (const data of result.replies) {
      let r: StatszReading;
      try {
        r = parseStatsz(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
      } catch {
        invalid++;
        continue;
      }
      if (selects(s.select, { name: r.varz.serverName, cluster: r.varz.cluster, tags: r.varz.tags })) selected.push(r);
    }
    if (invalid > 0) this.#o.log.debug({ invalid }, 'ignored replies that are not STATSZ');
    this.#o.onRound({ ended: result.ended, expected: result.expected, durationMs: result.durationMs, selected, invalid });
  }

  /** Stops the schedule and cancels a round in flight. Idempotent. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#abort.abort();
    await this.#inFlight;
  }
}
