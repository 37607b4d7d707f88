/**
 * The one capture path both the daemon (capturer.ts) and the one-shot CLI (cli/capture.ts) write incidents
 * through: one profile fetched (a "busy" CPU profiler retried with backoff), written into the incident,
 * summarised; and the manifest built from the results. Admission, limits and slots stay in the capturer;
 * selection and progress stay in the CLI.
 */
import { join } from 'node:path';
import type { Clock } from '../clock.js';
import type { ProfileName } from '../config/types.js';
import { CaptureError, describeError, StorageError } from '../errors.js';
import { describeGrowth } from '../insight/compare.js';
import type { FindChanges } from '../insight/changes.js';
import type { ProfileInput } from '../insight/profile-worker.js';
import type { Logger } from '../log.js';
import { TooLargeError, type IncidentWriter } from '../store/incident-store.js';
import type { IncidentManifest, ProfileResult, TopFunction } from '../store/manifest.js';
import { profileFileName } from '../store/naming.js';
import type { Path } from './paths.js';
import type { CaptureRequest } from './request.js';

/**
 * Top functions and sample type of a gzip pprof profile, from its bytes or its file: decoded off the event
 * loop by insight/'s ProfileWorker (`(input) => worker.summarize(input, 10)`).
 */
export type Summarize = (input: ProfileInput) => Promise<{ top: TopFunction[]; sampleType: string }>;

/**
 * Profiles larger than this are kept but not summarised: decoding needs the whole profile in memory,
 * several times its compressed size (a 20 MB heap profile took ~700 MB), while captures are streamed to
 * disk precisely so that memory stays bounded (bench/capture-memory.ts). Real profiles are KBs to a few MB.
 */
export const SUMMARY_MAX_BYTES = 4 * 1024 * 1024;
const CPU_RETRY_FIRST_MS = 250;
const CPU_RETRY_MAX_MS = 2_000;

export function isGzip(data: Uint8Array): boolean {
  return data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b;
}

/** What one attempt at a profile returns: the whole reply (PROFILEZ) or a body to stream (prof_port). */
export type Fetched = { readonly bytes: Uint8Array } | { readonly stream: AsyncIterable<Uint8Array> };

export interface ProfileCaptureOptions {
  readonly writer: IncidentWriter;
  readonly server: string;
  readonly profile: ProfileName;
  readonly via: Path;
  /** One attempt; throws CaptureError('busy') when another client holds the CPU profiler. */
  readonly fetch: (signal: AbortSignal) => Promise<Fetched>;
  /** File name for the bytes (default `<profile>.pb.gz`). */
  readonly fileName?: (bytes: Uint8Array | undefined) => string;
  /** Larger profiles are refused (undefined: no cap). */
  readonly maxBytes: number | undefined;
  /** A busy CPU profiler is retried with backoff until this time (ms since the epoch; 0: no retry). */
  readonly retryBusyUntil: number;
  /** Message of a profile cut short by `signal`. */
  readonly abortedMessage: string;
  readonly signal: AbortSignal;
  readonly clock: Clock;
  readonly summarize: Summarize;
  /** What grew since the previous incident of this server and profile (the daemon; the one-shot CLI has none). */
  readonly changes?: FindChanges | undefined;
  readonly log: Logger | undefined;
}

export function failedProfile(name: string, via: Path | null, error: string, ms: number): ProfileResult {
  return { name, file: null, bytes: 0, sha256: null, duration_ms: Math.round(ms), via, error, top: [], sample_type: null, changes: null };
}

/** One profile into the incident. Only StorageError escapes; every other failure is a failed result. */
export async function captureProfile(o: ProfileCaptureOptions): Promise<ProfileResult> {
  const { writer, server, profile, via, signal, clock, log } = o;
  const started = performance.now();
  let backoff = CPU_RETRY_FIRST_MS;
  let attempts = 0;
  for (;;) {
    attempts++;
    try {
      const got = await o.fetch(signal);
      let written: { bytes: number; sha256: string };
      let data: Uint8Array | undefined;
      let file: string;
      if ('bytes' in got) {
        data = got.bytes;
        if (o.maxBytes !== undefined && data.byteLength > o.maxBytes) {
          throw new CaptureError(`profile is ${data.byteLength} bytes, more than capture.max_profile_size`, 'too_large', {});
        }
        file = o.fileName?.(data) ?? profileFileName(profile);
        written = await writer.writeFile(file, data);
      } else {
        file = o.fileName?.(undefined) ?? profileFileName(profile);
        written = await writer.writeStream(file, got.stream, o.maxBytes ?? Number.MAX_SAFE_INTEGER, signal);
      }
      const result: ProfileResult = {
        name: profile,
        file,
        bytes: written.bytes,
        sha256: written.sha256,
        duration_ms: Math.round(performance.now() - started),
        via,
        error: null,
        top: [],
        sample_type: null,
        changes: null,
      };
      await summarizeInto(result, data, o);
      return result;
    } catch (err) {
      if (err instanceof StorageError) throw err;
      const busy = err instanceof CaptureError && err.kind === 'busy';
      if (busy && !signal.aborted && clock.now() + backoff < o.retryBusyUntil) {
        log?.debug({ server, profile, via, attempt: attempts }, 'cpu profiler busy; retrying');
        try {
          await clock.sleep(backoff, signal);
        } catch {
          // aborted: fall through to the next attempt, which reports it
        }
        backoff = Math.min(backoff * 2, CPU_RETRY_MAX_MS);
        continue;
      }
      let message = describeError(err);
      if (signal.aborted) message = o.abortedMessage;
      else if (err instanceof TooLargeError) message = `profile larger than capture.max_profile_size (${err.limit} bytes)`;
      else if (busy && attempts > 1) message = `${message} (gave up after ${attempts} attempts: another client holds the CPU profiler)`;
      return failedProfile(profile, via, message, performance.now() - started);
    }
  }
}

/** The one place profiles are summarised: gzip profiles up to SUMMARY_MAX_BYTES; failures only logged. */
async function summarizeInto(result: ProfileResult, data: Uint8Array | undefined, o: ProfileCaptureOptions): Promise<void> {
  const { server, profile, log } = o;
  if (result.file === null) return;
  if (result.bytes > SUMMARY_MAX_BYTES) {
    log?.info({ server, profile, bytes: result.bytes }, 'profile too large to summarise in memory; top functions left out (open it with go tool pprof)');
    return;
  }
  try {
    // Text profiles (debug levels 1 and 2, only ever whole replies) are kept as sent; there is nothing to rank.
    if (data !== undefined && !isGzip(data)) return;
    // A streamed profile is read from its file in the worker thread: no copy of its bytes on the event loop.
    const summary = await o.summarize(data ?? { path: join(o.writer.tmpPath, result.file) });
    result.top = summary.top;
    result.sample_type = summary.sampleType;
  } catch (err) {
    log?.warn({ server, profile, err: describeError(err) }, 'captured profile could not be summarised');
    return;
  }
  // Only a profile that could be summarised is compared; changes() answers null on any problem itself.
  if (o.changes) result.changes = await o.changes(server, profile, data ?? { path: join(o.writer.tmpPath, result.file) });
}

/**
 * What grew, for the capture's log line: `cpu: runtime.mapassign 3% -> 41%; allocs: ...` (the first
 * three changes of each profile); '' when nothing grew or nothing was compared.
 */
export function describeChanges(results: readonly ProfileResult[]): string {
  return results
    .filter((r) => r.changes && r.changes.length > 0)
    .map((r) => `${r.name}: ${describeGrowth((r.changes ?? []).slice(0, 3))}`)
    .join('; ');
}

/** The manifest of an incident from its request and its profiles' results. */
export function buildManifest(o: {
  id: string;
  req: Pick<CaptureRequest, 'target' | 'reason' | 'trigger' | 'triggers' | 'alert' | 'note'>;
  startedAt: number;
  finishedAt: number;
  results: ProfileResult[];
  files: string[];
  /** The incident could not be written (every profile counts as failed). */
  storageFailed?: boolean;
}): IncidentManifest {
  const { req, results } = o;
  const ok = results.filter((r) => r.error === null).length;
  const vias = [...new Set(results.map((r) => r.via).filter((v) => v !== null))];
  return {
    version: 1,
    id: o.id,
    server: {
      name: req.target.label,
      id: req.target.serverId ?? null,
      cluster: req.target.cluster ?? null,
      version: req.target.version ?? null,
      tags: [...req.target.tags],
      url: req.target.url ?? null,
    },
    reason: req.reason,
    trigger: req.trigger ?? null,
    triggers: req.triggers ? [...req.triggers] : req.trigger ? [req.trigger] : [],
    alert: req.alert ?? null,
    note: req.note ?? null,
    via: vias.length === 0 ? null : vias.length === 1 ? (vias[0] as string) : 'mixed',
    started_at: new Date(o.startedAt).toISOString(),
    finished_at: new Date(o.finishedAt).toISOString(),
    status: o.storageFailed === true || ok === 0 ? 'failed' : ok === results.length ? 'ok' : 'partial',
    profiles: results,
    files: [...o.files, ...results.flatMap((r) => (r.file ? [r.file] : []))].sort(),
  };
}
