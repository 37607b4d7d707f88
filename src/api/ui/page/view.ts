/** What every view shares: its mount signature, polling that stops with the view, and a status line. */
import { ApiError } from './api.js';
import { h } from './dom.js';

export interface ViewContext {
  root: HTMLElement;
  /** The part of the hash after the route (`?a=b`), parsed. */
  query: URLSearchParams;
  /** Aborted when the user leaves the view. */
  signal: AbortSignal;
}

export type View = (ctx: ViewContext, ...params: string[]) => void;

/**
 * Runs `fn` now and then every `intervalMs` after each run ends (never two at once), until `signal` aborts.
 * Errors go to `onError`; the next run still happens (the daemon may be restarting).
 */
export function poll(fn: () => Promise<void>, intervalMs: number, signal: AbortSignal, onError: (err: unknown) => void): void {
  let timer: number | undefined;
  const run = async (): Promise<void> => {
    try {
      await fn();
      onError(undefined);
    } catch (err) {
      if (!signal.aborted) onError(err);
    }
    if (!signal.aborted) timer = window.setTimeout(() => void run(), intervalMs);
  };
  signal.addEventListener('abort', () => window.clearTimeout(timer));
  void run();
}

export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return `${err.message} (HTTP ${err.status})`;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** A line that shows the last error of a view (or nothing). */
export function statusLine(): { el: HTMLElement; set(err: unknown): void } {
  const el = h('p', { class: 'status', role: 'status' });
  return {
    el,
    set(err: unknown) {
      if (err === undefined || (err instanceof DOMException && err.name === 'AbortError')) {
        el.textContent = '';
        el.classList.remove('error');
      } else {
        el.textContent = errorMessage(err);
        el.classList.add('error');
      }
    },
  };
}

/** Sets text only when it changed (no layout work for unchanged cells on every poll). */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}
