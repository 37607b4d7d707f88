/**
 * Polls every configured monitoring endpoint at a fixed rate. The servers are spread over a fixed number of
 * batches per interval, each one timer wake-up that starts its members' polls, so polls arrive evenly over the
 * interval (no burst of N requests, no timer per server); a small fleet (up to 32 servers) shares one batch, so
 * it costs one wake-up per interval. Each poll runs on its own, so a slow server never
 * delays the others, and a server whose previous poll is still running is skipped at its batch's wake-up
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
  /** Timer wake-ups per interval that servers are spread over (default DEFAULT_BATCHES_PER_INTERVAL; a power of two). */
  batchesPerInterval?: number;
  /**
   * Servers a batch takes before the next batch is opened (default DEFAULT_BATCH_CAPACITY); past that many
   * per batch, every server joins the least-loaded batch.
   */
  batchCapacity?: number;
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
  /** The batch this server is polled in. */
  batch: Batch;
  inFlight: Promise<void> | undefined;
  cancel: Canceller;
}

/**
 * One place in the interval: its members are polled together at one timer wake-up, at offset
 * `index * interval / batches` of the interval, at a fixed rate.
 */
interface Batch {
  readonly index: number;
  readonly members: Set<Target>;
  /** Monotonic time of the next scheduled wake-up (when armed). */
  next: number;
  timer: Timer | undefined;
}

/**
 * Batches per interval (each one timer wake-up). Servers are spread over them, so polls arrive evenly over
 * the interval rather than in one burst, without the wake-up per server that made spreading cost 2-3× CPU
 * (BENCHMARKS.md, section 4). A power of two, for the order in which empty batches are filled.
 */
export const DEFAULT_BATCHES_PER_INTERVAL = 16;

/**
 * A small fleet fills one batch before opening another: 10 servers are one timer wake-up per interval, not 10.
 * Each wake-up costs about as much as a poll on this kind of VM (BENCHMARKS.md, issue 19), and 32 polls started
 * together are no burst worth spreading (the in-flight bound is 128). From 16 × 32 = 512 servers on, every batch
 * holds at least this many and servers are spread evenly over all of them.
 */
export const DEFAULT_BATCH_CAPACITY = 32;

/** 0, k/2, k/4, 3k/4, ...: each next batch halves the largest gap, so a few servers are spread evenly too. */
function fillOrder(k: number): number[] {
  const bits = Math.round(Math.log2(k));
  const order: number[] = [];
  for (let i = 0; i < k; i++) {
    let r = 0;
    for (let b = 0; b < bits; b++) if (i & (1 << b)) r |= 1 << (bits - 1 - b);
    order.push(r);
  }
  return order;
}

/** Targets are keyed by their monitoring URL. */
export class HttpPoller {
  readonly #opts: PollerOptions;
  readonly #clock: TimerClock;
  readonly #errors: CallbackErrors;
  readonly #targets = new Map<string, Target>();
  readonly #slots: Slots;
  readonly #batches: Batch[];
  /** Batch indexes in the order ties are broken when choosing the least-loaded batch. */
  readonly #fillOrder: number[];
  readonly #capacity: number;
  /** Monotonic origin of the batch phases (set by start()). */
  #origin = 0;
  #running = false;

  constructor(opts: PollerOptions) {
    this.#opts = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#errors = new CallbackErrors(opts.log, 'handling a poll result', opts.onError);
    this.#slots = new Slots(opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT);
    const k = opts.batchesPerInterval ?? DEFAULT_BATCHES_PER_INTERVAL;
    if (!Number.isInteger(k) || k < 1 || (k & (k - 1)) !== 0) throw new RangeError(`batchesPerInterval must be a power of two, not ${k}`);
    this.#batches = Array.from({ length: k }, (_, index) => ({ index, members: new Set<Target>(), next: 0, timer: undefined }));
    this.#fillOrder = fillOrder(k);
    const c = opts.batchCapacity ?? DEFAULT_BATCH_CAPACITY;
    if (!Number.isInteger(c) || c < 1) throw new RangeError(`batchCapacity must be a positive integer, not ${c}`);
    this.#capacity = c;
  }

  get keys(): string[] {
    return [...this.#targets.keys()];
  }

  /** Members per batch, in batch order (for tests and diagnostics). */
  get batchSizes(): number[] {
    return this.#batches.map((b) => b.members.size);
  }

  /**
   * Adds new servers (each to the least-loaded batch, first polled at that batch's next wake-up when running),
   * removes missing ones (freeing their place), updates changed ones (same schedule, new settings).
   */
  setServers(servers: readonly ServerConfig[]): { added: string[]; removed: string[] } {
    const wanted = new Map(servers.map((s) => [s.url, s]));
    const removed: string[] = [];
    for (const [key, t] of this.#targets) {
      if (!wanted.has(key)) {
        t.cancel.cancel();
        t.batch.members.delete(t);
        if (t.batch.members.size === 0) this.#disarm(t.batch);
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
      const batch = this.#leastLoaded();
      const target: Target = { server, batch, inFlight: undefined, cancel: new Canceller() };
      batch.members.add(target);
      this.#targets.set(key, target);
      added.push(key);
      if (this.#running && !batch.timer) this.#arm(batch, this.#clock.monotonic());
    }
    return { added, removed };
  }

  /**
   * Where a new server goes: the first open batch (in fill order) with room below the capacity, else the first
   * empty batch, else (every batch at capacity) the least-loaded one.
   */
  #leastLoaded(): Batch {
    let empty: Batch | undefined;
    let best: Batch | undefined;
    for (const i of this.#fillOrder) {
      const b = this.#batches[i] as Batch;
      const size = b.members.size;
      if (size > 0 && size < this.#capacity) return b;
      if (size === 0) empty ??= b;
      if (!best || size < best.members.size) best = b;
    }
    return empty ?? (best as Batch);
  }

  /** Starts polling: batch i first wakes i/k of an interval from now, so the first round is spread too. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    const now = this.#clock.monotonic();
    this.#origin = now;
    for (const t of this.#targets.values()) if (t.cancel.aborted) t.cancel = new Canceller();
    for (const b of this.#batches) if (b.members.size > 0) this.#arm(b, now);
  }

  /** Stops scheduling and aborts polls in flight; resolves when they have settled. Idempotent. */
  async stop(): Promise<void> {
    this.#running = false;
    for (const b of this.#batches) this.#disarm(b);
    const pending: Promise<void>[] = [];
    for (const t of this.#targets.values()) {
      t.cancel.cancel();
      if (t.inFlight) pending.push(t.inFlight);
    }
    await Promise.allSettled(pending);
  }

  #disarm(b: Batch): void {
    b.timer?.cancel();
    b.timer = undefined;
  }

  /**
   * Arms the batch for its next phase time (origin + index/k of an interval + whole intervals): the first one at
   * or after `now`, or, with `after`, the first one after it.
   */
  #arm(b: Batch, now: number, after = false): void {
    const interval = this.#opts.intervalMs;
    const phase = this.#origin + (b.index * interval) / this.#batches.length;
    const n = after ? Math.floor((now - phase) / interval) + 1 : Math.ceil((now - phase) / interval);
    b.next = phase + Math.max(0, n) * interval;
    if (after && b.next <= now) b.next += interval; // rounding
    b.timer = this.#clock.timer(b.next - now, () => this.#wake(b));
  }

  #wake(b: Batch): void {
    b.timer = undefined;
    if (!this.#running || b.members.size === 0) return;
    const now = this.#clock.monotonic();
    // Wall-clock time of the schedule, for lateness: every poll of the batch is (now - next) ms late.
    const scheduledAt = this.#clock.now() - Math.max(0, now - b.next);
    for (const t of b.members) {
      if (t.inFlight) {
        // Skip, not bunch: the server's previous poll is still running.
        try {
          this.#opts.onOverrun?.(t.server.url);
        } catch (err) {
          this.#errors.report(err);
        }
      } else {
        t.inFlight = this.#poll(t, scheduledAt);
      }
    }
    // Fixed rate, same phase: the next wake-up is one interval after the scheduled one. A late wake-up (a blocked
    // event loop) polled once; the ticks it missed are skipped, never caught up in a burst.
    b.next += this.#opts.intervalMs;
    if (b.next > now) b.timer = this.#clock.timer(b.next - now, () => this.#wake(b));
    else this.#arm(b, now, true);
  }

  /** Never rejects: a throw of the flow is contained (counted, logged once per kind) and the schedule goes on. */
  async #poll(t: Target, scheduledAt: number): Promise<void> {
    try {
      if (!(await this.#slots.acquire(t.cancel))) return;
      try {
        await this.#request(t, scheduledAt);
      } finally {
        this.#slots.release();
      }
    } catch (err) {
      this.#errors.report(err);
    } finally {
      t.inFlight = undefined;
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
    // A throw here is contained by #poll: counted, logged once per kind, and the schedule goes on.
    this.#opts.onResult(result);
  }
}
