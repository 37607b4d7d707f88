/**
 * Cancelling one HTTP request (a poll through src/watch/http1.ts, a prof_port capture through undici) by a
 * timeout or by a longer-lived parent (a poller's target, the capturer's shutdown). Polls happen thousands of times a second: an AbortController and its EventTarget
 * listeners cost several µs per request (the polling benchmark's profile), an EventEmitter — which undici
 * takes as a request's `signal` — a fraction of that. (AbortSignal.any on a long-lived parent is also out:
 * on Node 20 it keeps every derived signal alive.)
 */
import { EventEmitter } from 'node:events';

export class Canceller extends EventEmitter {
  aborted = false;

  cancel(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.emit('abort');
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
