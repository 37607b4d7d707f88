/**
 * Profiles through a server's `prof_port` (Go's /debug/pprof handlers): no authentication there,
 * so only loopback URLs are quiet. The reply is streamed, never held whole in memory.
 */
import { Agent, request } from 'undici';
import type { ProfileName } from '../config/types.js';
import { requestCancel } from '../cancel.js';
import { CaptureError } from '../errors.js';

/** `durationMs`: the length of a cpu profile, or the window of allocs_delta. */
export function pprofPath(profile: ProfileName, durationMs: number): string {
  // Always an explicit number of seconds: a missing or zero value means 30 s to the server.
  const seconds = Math.max(1, Math.round(durationMs / 1000));
  if (profile === 'cpu') return `/debug/pprof/profile?seconds=${seconds}`;
  // Go's delta profile: the server takes two snapshots `seconds` apart and answers their difference.
  if (profile === 'allocs_delta') return `/debug/pprof/allocs?seconds=${seconds}`;
  return `/debug/pprof/${profile}`;
}

export function isLoopbackUrl(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return false;
  }
  host = host.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export interface PprofFetchOptions {
  timeoutMs: number;
  signal?: AbortSignal;
}

export class PprofClient {
  readonly #agent = new Agent({ keepAliveTimeout: 10_000 });

  /**
   * Starts the request and returns the body as a stream of chunks, after checking the status and the
   * gzip magic of the first bytes. A 500 while profiling CPU means the profiler is busy (retryable).
   */
  async open(profUrl: string, profile: ProfileName, durationMs: number, opts: PprofFetchOptions): Promise<AsyncIterable<Uint8Array>> {
    const url = `${profUrl}${pprofPath(profile, durationMs)}`;
    const ctx = { url, profile, via: 'prof_port' };
    const cancel = requestCancel(opts.timeoutMs, opts.signal);
    let res;
    try {
      res = await request(url, { dispatcher: this.#agent, signal: cancel.signal, headersTimeout: opts.timeoutMs, bodyTimeout: opts.timeoutMs });
    } catch (err) {
      cancel.release();
      throw mapError(err, ctx, cancel, opts);
    }
    if (res.statusCode !== 200) {
      const text = await readSome(res.body, 512);
      cancel.release();
      if (profile === 'cpu' && res.statusCode === 500 && /already in use/i.test(text)) {
        throw new CaptureError(`${url}: cpu profiling already in use`, 'busy', ctx);
      }
      throw new CaptureError(`${url} answered HTTP ${res.statusCode}: ${text.trim().slice(0, 200)}`, 'server', ctx);
    }
    const body = res.body;
    return (async function* checked(): AsyncGenerator<Uint8Array> {
      let first = true;
      try {
        for await (const chunk of body) {
          const b = chunk as Buffer;
          if (first && b.length > 0) {
            first = false;
            if (b.length < 2 || b[0] !== 0x1f || b[1] !== 0x8b) {
              throw new CaptureError(`${url} did not send a gzip-compressed profile`, 'invalid_reply', ctx);
            }
          }
          yield b;
        }
        if (first) throw new CaptureError(`${url} sent an empty profile`, 'invalid_reply', ctx);
      } catch (err) {
        if (err instanceof CaptureError) throw err;
        throw mapError(err, ctx, cancel, opts);
      } finally {
        cancel.release();
        body.on('error', () => undefined);
        if (!body.destroyed) body.destroy();
      }
    })();
  }

  async close(): Promise<void> {
    await this.#agent.close().catch(() => this.#agent.destroy());
  }
}

async function readSome(body: AsyncIterable<unknown> & { destroy(): void; on(event: 'error', fn: () => void): unknown }, max: number): Promise<string> {
  body.on('error', () => undefined);
  let out = '';
  try {
    for await (const chunk of body) {
      out += (chunk as Buffer).toString('utf8');
      if (out.length >= max) break;
    }
  } catch {
    // the status is what matters
  } finally {
    body.destroy();
  }
  return out.slice(0, max);
}

function mapError(err: unknown, ctx: { url: string; profile: string; via: string }, cancel: { timedOut: boolean }, opts: PprofFetchOptions): CaptureError {
  const code = (err as { code?: string }).code;
  if (cancel.timedOut || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new CaptureError(`${ctx.url} did not finish within ${opts.timeoutMs} ms`, 'timeout', ctx, { cause: err });
  }
  if (opts.signal?.aborted) return new CaptureError('cancelled', 'aborted', ctx, { cause: err });
  return new CaptureError(`${ctx.url} could not be reached: ${code ?? (err as Error).message}`, 'network', ctx, { cause: err });
}
