/**
 * Polls every configured monitoring endpoint at a fixed rate. Each server has its own schedule, so a slow
 * server never delays the others, and a server whose previous poll is still running is not polled again
 * until it answers or times out.
 */
import type { ServerConfig } from '../config/types.js';
import { PollError } from '../errors.js';
import { Canceller } from '../cancel.js';
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
  next: number;
  timer: NodeJS.Timeout | undefined;
  inFlight: Promise<void> | undefined;
  cancel: Canceller;
}

/** Targets are keyed by their monitoring URL. */
export class HttpPoller {
  readonly #opts: PollerOptions;
  readonly #targets = new Map<string, Target>();
  readonly #slots: Slots;
  #running = false;

  constructor(opts: PollerOptions) {
    this.#opts = opts;
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
      const target: Target = { server, next: Date.now(), timer: undefined, inFlight: undefined, cancel: new Canceller() };
      this.#targets.set(key, target);
      added.push(key);
      if (this.#running) this.#arm(target, 0);
    }
    return { added, removed };
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    const now = Date.now();
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
    if (t.timer) clearTimeout(t.timer);
    t.timer = undefined;
    t.cancel.cancel();
  }

  #arm(t: Target, delayMs: number): void {
    t.timer = setTimeout(() => this.#tick(t), Math.max(0, delayMs));
  }

  #tick(t: Target): void {
    t.timer = undefined;
    if (!this.#running || t.cancel.aborted) return;
    const scheduledAt = t.next;
    if (t.inFlight) {
      this.#opts.onOverrun?.(t.server.url);
    } else {
      t.inFlight = this.#poll(t, scheduledAt).finally(() => {
        t.inFlight = undefined;
      });
    }
    // Fixed rate: the next tick is one interval after the scheduled one; missed ticks are skipped, not bunched.
    const now = Date.now();
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
    const at = Date.now();
    const start = performance.now();
    const key = t.server.url;
    let result: PollResult;
    try {
      const reading = await this.#opts.client.fetch(t.server, {
        timeoutMs: this.#opts.timeoutMs,
        maxBodyBytes: this.#opts.maxBodyBytes,
        cancel: t.cancel,
      });
      result = { key, scheduledAt, at, durationMs: performance.now() - start, ok: true, reading };
    } catch (err) {
      const error = err instanceof PollError ? err : new PollError(String(err), 'network', { url: key }, { cause: err });
      if (error.kind === 'aborted' || t.cancel.aborted) return;
      result = { key, scheduledAt, at, durationMs: performance.now() - start, ok: false, error };
    }
    if (!this.#running || !this.#targets.has(key) || this.#targets.get(key) !== t) return;
    this.#opts.onResult(result);
  }
}
