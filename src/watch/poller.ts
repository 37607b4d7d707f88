/**
 * Polls every configured monitoring endpoint at a fixed rate. Each server has its own schedule, so a slow
 * server never delays the others, and a server whose previous poll is still running is not polled again
 * until it answers or times out.
 *
 * The schedule runs on the clock's monotonic time (a wall-clock step must neither stall nor bunch polls);
 * results carry wall-clock times. The clock is injected, so the schedule is tested without sleeping.
 */
import { systemClock, type Timer, type TimerClock } from '../clock.js';
import type { ServerConfig } from '../config/types.js';
import { PollError } from '../errors.js';
import { Canceller } from '../cancel.js';
import type { Logger } from '../log.js';
import { CallbackErrors } from './callback-errors.js';
import type { VarzClient, VarzReading } from './varz.js';

export type PollResult =
  | { readonly key: string; readonly scheduledAt: number; readonly at: number; readonly durationMs: number; readonly ok: true; readonly reading: VarzReading }
  | { readonly key: string; readonly scheduledAt: number; readonly at: number; readonly durationMs: number; readonly ok: false; readonly error: PollError };

export interface PollerOptions {
  client: Pick<VarzClient, 'fetch'>;
  intervalMs: number;
  timeoutMs: number;
  maxBodyBytes: number;
  onResult: (r: PollResult) => void;
  /** Called when a tick finds the previous poll of the server still running. */
  onOverrun?: (key: string) => void;
  /** Where an exception thrown by `onResult` or `onOverrun` is logged (once per kind); polling goes on. */
  log: Logger;
  /** Counts each such exception (the app's `internal_errors_total{where="poll"}`). */
  onError?: () => void;
  clock?: TimerClock;
  /** At most this many requests in flight at once (default DEFAULT_MAX_IN_FLIGHT); the others wait for a slot. */
  maxInFlight?: number;
}

/**
 * Requests in flight at most, whatever the number of servers: a start with 1000 servers no longer opens 1000
 * connections in one instant, which made healthy servers miss their first timeout (issue 19).
 */
export const DEFAULT_MAX_IN_FLIGHT = 128;

/**
 * A counting semaphore for poll requests. A poll waiting for a slot is late, not failed: its timeout starts
 * when it gets the slot. Cancelling the target withdraws its wait.
 */
export class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxInFlight must be a positive integer, not ${max}`);
    this.#free = max;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /** Resolves true with a slot (release it once), or false if `cancel` fired first. */
  acquire(cancel: Canceller): Promise<boolean> {
    if (cancel.aborted) return Promise.resolve(false);
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const grant = (): void => {
        cancel.off('abort', withdraw);
        resolve(true);
      };
      const withdraw = (): void => {
        const i = this.#waiting.indexOf(grant);
        if (i >= 0) this.#waiting.splice(i, 1);
        resolve(false);
      };
      cancel.once('abort', withdraw);
      this.#waiting.push(grant);
    });
  }

  release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free++;
  }
}

interface Target {
  server: ServerConfig;
  /** Monotonic time of the next scheduled poll. */
  next: number;
  timer: Timer | undefined;
  inFlight: Promise<void> | undefined;
  cancel: Canceller;
}

/** Targets are keyed by their monitoring URL. */
export class HttpPoller {
  readonly #opts: PollerOptions;
  readonly #clock: TimerClock;
  readonly #errors: CallbackErrors;
  readonly #targets = new Map<string, Target>();
  readonly #slots: Slots;
  #running = false;

  constructor(opts: PollerOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#errors = new CallbackErrors(opts.log, 'handling a poll result', opts.onError);
    this.#slots = new Slots(opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT);
  }

  get keys(): string[] {
    return [...this.#targets.keys()];
  }

  /** Adds new servers (polled at once when running), removes missing ones, updates changed ones. */
  setServers(servers: readonly ServerConfig[]): { added: string[]; removed: string[] } {
    const wanted = new Map(servers.map((s) => [s.url, s]));
    const removed: string[] = [];
    for (const [key, t] of this.#targets) {
      if (!wanted.has(key)) {
        this.#drop(t);
        this.#targets.delete(key);
        removed.push(key);
      }
    }
    const added: string[] = [];
    for (const [key, server] of wanted) {
      const t = this.#targets.get(key);
      if (t) {
        t.server = server;
        continue;
      }
      const target: Target = { server, next: this.#clock.monotonic(), timer: undefined, inFlight: undefined, cancel: new Canceller() };
      this.#targets.set(key, target);
      added.push(key);
      if (this.#running) this.#arm(target, 0);
    }
    return { added, removed };
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    const now = this.#clock.monotonic();
    for (const t of this.#targets.values()) {
      t.next = now;
      if (t.cancel.aborted) t.cancel = new Canceller();
      this.#arm(t, 0);
    }
  }

  /** Stops scheduling and aborts polls in flight; resolves when they have settled. Idempotent. */
  async stop(): Promise<void> {
    this.#running = false;
    const pending: Promise<void>[] = [];
    for (const t of this.#targets.values()) {
      this.#drop(t);
      if (t.inFlight) pending.push(t.inFlight);
    }
    await Promise.allSettled(pending);
  }

  #drop(t: Target): void {
    t.timer?.cancel();
    t.timer = undefined;
    t.cancel.cancel();
  }

  #arm(t: Target, delayMs: number): void {
    t.timer = this.#clock.timer(delayMs, () => this.#tick(t));
  }

  #tick(t: Target): void {
    t.timer = undefined;
    if (!this.#running || t.cancel.aborted) return;
    const now = this.#clock.monotonic();
    if (t.inFlight) {
      try {
        this.#opts.onOverrun?.(t.server.url);
      } catch (err) {
        this.#errors.report(err);
      }
    } else {
      const at = this.#clock.now();
      const done = (): void => {
        t.inFlight = undefined;
      };
      // Wall-clock time of the schedule, for lateness: the poll is (now - next) ms late.
      t.inFlight = this.#poll(t, at - Math.max(0, now - t.next)).then(done, (err: unknown) => {
        done();
        this.#errors.report(err);
      });
    }
    // Fixed rate: the next tick is one interval after the scheduled one; missed ticks are skipped, not bunched.
    t.next += this.#opts.intervalMs;
    if (t.next <= now) t.next = now + this.#opts.intervalMs;
    this.#arm(t, t.next - now);
  }

  async #poll(t: Target, scheduledAt: number): Promise<void> {
    if (!(await this.#slots.acquire(t.cancel))) return;
    try {
      await this.#request(t, scheduledAt);
    } finally {
      this.#slots.release();
    }
  }

  async #request(t: Target, scheduledAt: number): Promise<void> {
    // After the slot wait: the wait shows as lateness (at - scheduledAt), and the timeout starts here.
    const at = this.#clock.now();
    const start = this.#clock.monotonic();
    const key = t.server.url;
    let result: PollResult;
    try {
      const reading = await this.#opts.client.fetch(t.server, {
        timeoutMs: this.#opts.timeoutMs,
        maxBodyBytes: this.#opts.maxBodyBytes,
        cancel: t.cancel,
      });
      result = { key, scheduledAt, at, durationMs: this.#clock.monotonic() - start, ok: true, reading };
    } catch (err) {
      const error = err instanceof PollError ? err : new PollError(String(err), 'network', { url: key }, { cause: err });
      if (error.kind === 'aborted' || t.cancel.aborted) return;
      result = { key, scheduledAt, at, durationMs: this.#clock.monotonic() - start, ok: false, error };
    }
    if (!this.#running || this.#targets.get(key) !== t) return;
    // A throw here is contained by #tick: counted, logged once per kind, and the schedule goes on.
    this.#opts.onResult(result);
  }
}
