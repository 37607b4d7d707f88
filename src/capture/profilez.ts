/**
 * Profiles through the system account: `$SYS.REQ.SERVER.<server_id>.PROFILEZ`.
 * Request and reply formats are in docs (../shared/docs/nats-profiling.md, section 2).
 */
import type { ProfileName } from '../config/types.js';
import { CaptureError } from '../errors.js';

export function profilezSubject(serverId: string): string {
  return `$SYS.REQ.SERVER.${serverId}.PROFILEZ`;
}

/**
 * The request body: `duration` is integer nanoseconds and only sent for cpu. allocs_delta asks for an
 * `allocs` snapshot (PROFILEZ has no delta; allocs-delta.ts takes two and subtracts them).
 */
export function profilezRequest(profile: ProfileName, cpuDurationMs: number, debug = 0): string {
  const body: Record<string, unknown> = { name: profile === 'allocs_delta' ? 'allocs' : profile, debug };
  if (profile === 'cpu') body['duration'] = Math.round(cpuDurationMs) * 1_000_000;
  return JSON.stringify(body);
}

/**
 * Decodes a PROFILEZ reply into the profile bytes exactly as the server's pprof wrote them.
 * Both error channels are read; the runtime's "cpu profiling already in use" is the retryable `busy`.
 * `debug` is the level the request asked for: above 0 the server writes text, so gzip is not required.
 */
export function parseProfilezReply(data: Uint8Array, ctx: { server: string; profile: string }, debug = 0): Uint8Array {
  const c = { ...ctx, via: 'system_account' };
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
  } catch {
    throw new CaptureError(`PROFILEZ reply is not JSON (${data.byteLength} bytes)`, 'invalid_reply', c);
  }
  if (typeof doc !== 'object' || doc === null) throw new CaptureError('PROFILEZ reply is not a JSON object', 'invalid_reply', c);
  const o = doc as Record<string, unknown>;
  const top = o['error'];
  if (typeof top === 'object' && top !== null) {
    const e = top as Record<string, unknown>;
    throw new CaptureError(`server refused the request: ${String(e['description'] ?? 'unknown error')} (code ${String(e['code'] ?? '?')})`, 'server', c);
  }
  const d = o['data'];
  if (typeof d !== 'object' || d === null) throw new CaptureError('PROFILEZ reply has no "data" object', 'invalid_reply', c);
  const dataObj = d as Record<string, unknown>;
  const err = dataObj['error'];
  if (typeof err === 'string' && err.length > 0) {
    // The server only gives text here; this is the one string we must recognise.
    const busy = /already in use/i.test(err);
    throw new CaptureError(`server could not profile: ${err}`, busy ? 'busy' : 'server', c);
  }
  const profile = dataObj['profile'];
  if (typeof profile !== 'string' || profile.length === 0) {
    throw new CaptureError('PROFILEZ reply has no profile', 'invalid_reply', c);
  }
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(profile) || profile.length % 4 !== 0) {
    throw new CaptureError('PROFILEZ "profile" is not base64', 'invalid_reply', c);
  }
  const bytes = Buffer.from(profile, 'base64');
  if (debug <= 0 && (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b)) {
    throw new CaptureError('PROFILEZ profile is not gzip-compressed protobuf (debug must be 0)', 'invalid_reply', c);
  }
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
