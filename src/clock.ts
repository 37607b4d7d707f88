/** Time, injectable so that decision logic and schedules can be tested without sleeping. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** A one-shot timer armed by a `TimerClock`. */
export interface Timer {
  /** Stops the timer if it has not run yet; safe to call more than once. */
  cancel(): void;
}

/** A clock that also arms timers and measures elapsed time, for schedules (the poller). */
export interface TimerClock extends Clock {
  /** Runs `fn` once, `ms` from now (at once when `ms` <= 0, on a later turn of the event loop). */
  timer(ms: number, fn: () => void): Timer;
  /** Milliseconds from an arbitrary origin that never jumps with the wall clock: for schedules and durations. */
  monotonic(): number;
}

export const systemClock: TimerClock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
  timer: (ms, fn) => {
    const t = setTimeout(fn, Math.max(0, ms));
    return { cancel: () => clearTimeout(t) };
  },
  monotonic: () => performance.now(),
};
