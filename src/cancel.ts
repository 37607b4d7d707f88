/**
 * Cancelling one HTTP request (a poll through src/watch/http1.ts, a prof_port capture through undici) by a
 * timeout or by a longer-lived parent (a poller's target, the capturer's shutdown). Polls happen thousands of times a second: an AbortController and its EventTarget
 * listeners cost several µs per request (the polling benchmark's profile), an EventEmitter — which undici
 * takes as a request's `signal` — a fraction of that. (AbortSignal.any on a long-lived parent is also out:
 * on Node 20 it keeps every derived signal alive.)
 */
type Listener = () => void;

/**
 * Fires 'abort' once. It has the part of an EventEmitter's API that undici (a request's `signal`) and this
 * daemon use: `on`/`once`/`off`/`removeListener`/`listenerCount` for 'abort'. Not an EventEmitter: a
 * poller's target keeps one Canceller for its whole life and each poll adds and removes one listener, and an
 * EventEmitter replaces its listener table whenever the last listener goes: at 5,000 polls a second, one
 * table per poll that lived an interval, was promoted, and (dead, still pointing at that poll's young
 * objects) dragged those into the old space too. Here the usual single listener sits in a field.
 */
export class Canceller {
  aborted = false;
  #first: Listener | undefined;
  #firstOnce = false;
  /** Listeners beyond the first, in the order they came (rare: a slot wait and a request overlap). */
  #more: { fn: Listener; once: boolean }[] | undefined;

  on(_event: 'abort', fn: Listener): this {
    return this.#add(fn, false);
  }

  addListener(event: 'abort', fn: Listener): this {
    return this.on(event, fn);
  }

  once(_event: 'abort', fn: Listener): this {
    return this.#add(fn, true);
  }

  /** Removes the most recently added instance of `fn`, as an EventEmitter does. */
  off(_event: 'abort', fn: Listener): this {
    const more = this.#more;
    if (more) {
      for (let i = more.length - 1; i >= 0; i--) {
        if (more[i]?.fn === fn) {
          more.splice(i, 1);
          return this;
        }
      }
    }
    if (this.#first === fn) this.#first = undefined;
    return this;
  }

  removeListener(event: 'abort', fn: Listener): this {
    return this.off(event, fn);
  }

  listenerCount(_event: 'abort'): number {
    return (this.#first ? 1 : 0) + (this.#more?.length ?? 0);
  }

  cancel(): void {
    if (this.aborted) return;
    this.aborted = true;
    const first = this.#first;
    const more = this.#more;
    // A once-listener is gone after it fired, as with an EventEmitter.
    if (this.#firstOnce) this.#first = undefined;
    if (more) this.#more = more.filter((l) => !l.once);
    first?.();
    if (more) for (const l of more) l.fn();
  }

  #add(fn: Listener, once: boolean): this {
    // The first slot only while nothing waits in `more`, so listeners still run in the order they came.
    if (this.#first === undefined && (this.#more === undefined || this.#more.length === 0)) {
      this.#first = fn;
      this.#firstOnce = once;
    } else {
      (this.#more ??= []).push({ fn, once });
    }
    return this;
  }
}

export interface RequestCancel {
  /** Pass as undici's `signal`, or as the poller's client's `cancel`. */
  readonly signal: Canceller;
  /** The timeout fired (rather than the parent). */
  readonly timedOut: boolean;
  /** Clears the timer and the parent's listener: call once the request is over, whatever the outcome. */
  release(): void;
}

/** A canceller for one request, fired after `timeoutMs` or when `parent` is. */
export function requestCancel(timeoutMs: number, parent: Canceller | AbortSignal | undefined): RequestCancel {
  const signal = new Canceller();
  const onParent = (): void => signal.cancel();
  const r = {
    signal,
    timedOut: false,
    release(): void {
      clearTimeout(timer);
      if (parent instanceof Canceller) parent.removeListener('abort', onParent);
      else parent?.removeEventListener('abort', onParent);
    },
  };
  const timer = setTimeout(() => {
    r.timedOut = true;
    signal.cancel();
  }, timeoutMs);
  if (parent?.aborted) signal.cancel();
  else if (parent instanceof Canceller) parent.once('abort', onParent);
  else parent?.addEventListener('abort', onParent, { once: true });
  return r;
}
