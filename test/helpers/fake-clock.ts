/**
 * A clock whose time moves only when a test says so: timers run in time order as `advance()` passes them,
 * and promise callbacks settle after each one. No test using it sleeps.
 */
import type { Timer, TimerClock } from '../../src/clock.js';

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** Lets every promise callback that can run now run (one turn of the event loop). */
export function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

export class FakeClock implements TimerClock {
  /** Wall-clock ms since the epoch. */
  wall: number;
  /** Monotonic ms. */
  mono = 0;
  #seq = 0;
  #timers: Pending[] = [];
  /** Timers armed so far (each one is a wake-up of the process when it runs). */
  armed = 0;

  constructor(wall = Date.parse('2026-11-26T15:30:00Z')) {
    this.wall = wall;
  }

  now(): number {
    return this.wall;
  }

  monotonic(): number {
    return this.mono;
  }

  timer(ms: number, fn: () => void): Timer {
    this.armed++;
    const p: Pending = { at: this.mono + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false };
    this.#timers.push(p);
    return {
      cancel: () => {
        p.cancelled = true;
      },
    };
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const t = this.timer(ms, () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      const onAbort = (): void => {
        t.cancel();
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Timers armed and not yet run or cancelled. */
  get pending(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }

  /** Moves both clocks forward by `ms`, running each timer due on the way at its own time. */
  async advance(ms: number): Promise<void> {
    const end = this.mono + ms;
    for (;;) {
      await settle();
      this.#timers = this.#timers.filter((t) => !t.cancelled);
      let next: Pending | undefined;
      for (const t of this.#timers) {
        if (t.at <= end && (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq))) next = t;
      }
      if (!next) break;
      this.#timers.splice(this.#timers.indexOf(next), 1);
      // A timer overdue (see block()) runs late, now; time never goes back.
      const at = Math.max(next.at, this.mono);
      this.wall += at - this.mono;
      this.mono = at;
      next.fn();
    }
    this.wall += end - this.mono;
    this.mono = end;
    await settle();
  }

  /** Moves both clocks forward without running any timer, as a blocked event loop would; the next advance() runs the overdue ones. */
  block(ms: number): void {
    this.mono += ms;
    this.wall += ms;
  }

  /** Steps the wall clock only (NTP, a VM resumed): schedules on monotonic time must not notice. */
  stepWall(ms: number): void {
    this.wall += ms;
  }
}
