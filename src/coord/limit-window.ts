/**
 * The fleet-wide `capture.limit`: the start times of recent incidents, shared by every replica in one KV
 * value and changed only by compare-and-set, so that no two replicas can both take the last slot. This is
 * the pure part: given the stored times, may one more start now, and what is stored next. Pure: `now` is
 * passed in.
 */

export interface WindowDecision {
  readonly ok: boolean;
  /** What to store: the times inside the window, plus `now` when admitted. */
  readonly next: readonly number[];
  /** Refused: when a slot frees (the start that must leave the window first, plus the window). */
  readonly freeAt?: number;
}

export function admit(stored: readonly number[], now: number, count: number, windowMs: number): WindowDecision {
  const from = now - windowMs;
  const kept = stored.filter((t) => t > from && Number.isFinite(t)).sort((a, b) => a - b);
  if (kept.length >= count) return { ok: false, next: kept, freeAt: (kept[kept.length - count] ?? now) + windowMs };
  return { ok: true, next: [...kept, now] };
}

/** Reads a stored window; anything unreadable counts as empty (the value is ours, but a bad one must not wedge captures). */
export function parseWindow(bytes: Uint8Array | undefined): number[] {
  if (bytes === undefined || bytes.length === 0) return [];
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes)) as { starts?: unknown };
    return Array.isArray(v.starts) ? v.starts.filter((t): t is number => typeof t === 'number') : [];
  } catch {
    return [];
  }
}

export function encodeWindow(starts: readonly number[]): string {
  return JSON.stringify({ starts });
}
