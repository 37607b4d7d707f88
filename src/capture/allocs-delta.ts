/**
 * `allocs_delta`: what was allocated during a window (`capture.allocs_window`), not since the server
 * started. Through prof_port Go computes it (`/debug/pprof/allocs?seconds=N`); through the system account
 * two `allocs` snapshots taken N seconds apart are subtracted (insight/delta.ts, in the profile worker thread).
 * Either way the result is whole in memory before anything is written (allocs profiles are KBs), so a
 * capture aborted during the window leaves no file behind.
 */
import type { Clock } from '../clock.js';
import { CaptureError } from '../errors.js';

/** The window of the one-shot CLI, and capture.allocs_window's default. */
export const ALLOCS_WINDOW_DEFAULT_MS = 10_000;

/**
 * The profile worker's allocsDelta: `after` minus `before` (both gzip protobuf) as gzip protobuf, or, with
 * no `before`, `after` (already a delta) with its default sample type and duration set.
 */
export type AllocsDelta = (before: Uint8Array | undefined, after: Uint8Array, windowMs: number) => Promise<Uint8Array>;

/** The prof_port reply read whole (at most `maxBytes`), to be given its default sample type. */
export async function readWhole(stream: AsyncIterable<Uint8Array>, maxBytes: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += chunk.byteLength;
    if (total > maxBytes) throw new CaptureError(`profile is more than ${maxBytes} bytes (capture.max_profile_size)`, 'too_large', {});
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

/**
 * Two snapshots `windowMs` apart, subtracted. An abort (shutdown) during the window rejects at once with
 * the clock's abort error; nothing has been written then.
 */
export async function snapshotDelta(o: {
  snapshot: (signal: AbortSignal) => Promise<Uint8Array>;
  windowMs: number;
  clock: Pick<Clock, 'sleep'>;
  signal: AbortSignal;
  subtract: AllocsDelta;
}): Promise<Uint8Array> {
  const before = await o.snapshot(o.signal);
  await o.clock.sleep(o.windowMs, o.signal);
  const after = await o.snapshot(o.signal);
  return o.subtract(before, after, o.windowMs);
}
