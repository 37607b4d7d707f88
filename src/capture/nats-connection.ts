/**
 * The one home of the NATS client: a system-account connection that keeps itself connected
 * (initial connect retried with backoff, then the client's own reconnect forever) and reports its state.
 */
import {
  connect,
  createInbox,
  credsAuthenticator,
  nkeyAuthenticator,
  errors as natsErrors,
  type ConnectionOptions,
  type Msg,
  type NatsConnection,
} from '@nats-io/transport-node';
import { readFileSync } from 'node:fs';
import type { SystemAccountConfig } from '../config/types.js';
import { CaptureError } from '../errors.js';
import type { Logger } from '../log.js';

export type { Msg };

/** What a connection needs: the system account's and coordination's connection keys are the same. */
export type NatsConnectionConfig = Pick<SystemAccountConfig, 'urls' | 'user' | 'password' | 'token' | 'creds' | 'nkeySeed' | 'tls' | 'timeoutMs'>;

export function connectionOptions(cfg: NatsConnectionConfig): ConnectionOptions {
  const opts: ConnectionOptions = { servers: [...cfg.urls], name: 'nats-autoprof', timeout: cfg.timeoutMs };
  if (cfg.user !== undefined) opts.user = cfg.user;
  if (cfg.password !== undefined) opts.pass = cfg.password.reveal();
  if (cfg.token !== undefined) opts.token = cfg.token.reveal();
  if (cfg.creds !== undefined) opts.authenticator = credsAuthenticator(readFileSync(cfg.creds));
  if (cfg.nkeySeed !== undefined) opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(cfg.nkeySeed.reveal()));
  if (cfg.tls) {
    opts.tls = {
      ...(cfg.tls.ca ? { caFile: cfg.tls.ca } : {}),
      ...(cfg.tls.cert ? { certFile: cfg.tls.cert } : {}),
      ...(cfg.tls.key ? { keyFile: cfg.tls.key } : {}),
    };
  }
  return opts;
}

/** Closes a connection, giving up after `ms` (a server that is gone must not hold a shutdown). */
export async function closeBounded(nc: NatsConnection, ms = 2_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    nc.close().catch(() => undefined),
    new Promise<void>((r) => {
      timer = setTimeout(r, ms);
    }),
  ]);
  clearTimeout(timer);
}

/** Connects once, failing fast (for the one-shot CLI). */
export async function connectOnce(cfg: SystemAccountConfig): Promise<NatsConnection> {
  return connect({ ...connectionOptions(cfg), reconnect: false, maxReconnectAttempts: 0 });
}

export interface RequestOpts {
  timeoutMs: number;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

/** Sends one request; maps the client's errors to CaptureError kinds. */
export async function requestOn(nc: NatsConnection, subject: string, body: string, opts: RequestOpts): Promise<Msg> {
  if (opts.signal?.aborted) throw new CaptureError('cancelled', 'aborted', {});
  const p = nc.request(subject, body, { timeout: opts.timeoutMs });
  if (!opts.signal) return p.catch((err: unknown) => Promise.reject(mapRequestError(err, subject, opts.timeoutMs)));
  const signal = opts.signal;
  return new Promise<Msg>((resolve, reject) => {
    const onAbort = (): void => reject(new CaptureError('cancelled', 'aborted', {}));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (m) => {
        signal.removeEventListener('abort', onAbort);
        resolve(m);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(mapRequestError(err, subject, opts.timeoutMs));
      },
    );
  });
}

function mapRequestError(err: unknown, subject: string, timeoutMs: number): CaptureError {
  const noResponders =
    err instanceof natsErrors.NoRespondersError ||
    (err instanceof natsErrors.RequestError && err.isNoResponders());
  if (noResponders) {
    return new CaptureError(
      `no responders for ${subject}: not connected as a system-account user, or the server is older than 2.10 or gone`,
      'no_responders',
      {},
      { cause: err },
    );
  }
  if (err instanceof natsErrors.TimeoutError || (err instanceof natsErrors.RequestError && err.cause instanceof natsErrors.TimeoutError)) {
    return new CaptureError(`no reply to ${subject} within ${timeoutMs} ms`, 'timeout', {}, { cause: err });
  }
  return new CaptureError(`request ${subject} failed: ${(err as Error).message}`, 'network', {}, { cause: err });
}

/** After the expected count arrived, how long a round still listens for replies that raise it. */
export const COUNT_GRACE_MS = 25;

export interface RequestAllOptions {
  /** Overall limit for the whole round. */
  timeoutMs: number;
  /** After the first reply, stop once no reply came for this long. */
  stallMs: number;
  /** Reads the number of replies to expect from a reply (e.g. statsz.active_servers); the largest wins. */
  expected?: (data: Uint8Array) => number | undefined;
  /** Hard cap on replies kept (memory bound). */
  maxReplies?: number;
  signal?: AbortSignal;
}

export interface RequestAllResult {
  replies: Uint8Array[];
  /** The expected count read from the replies, if any. */
  expected: number | undefined;
  /** Why the round ended. */
  ended: 'count' | 'stall' | 'timeout' | 'no_responders' | 'aborted' | 'max_replies';
  durationMs: number;
}

/**
 * Scatter-gather: one request, every reply until the expected count arrived, replies stalled, or the
 * overall timeout passed. There is no end-of-replies marker in NATS, hence the three limits.
 */
export function requestAllOn(nc: NatsConnection, subject: string, body: string, o: RequestAllOptions): Promise<RequestAllResult> {
  const started = performance.now();
  const inbox = createInbox();
  const replies: Uint8Array[] = [];
  let expected: number | undefined;
  return new Promise<RequestAllResult>((resolve) => {
    let stall: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (ended: RequestAllResult['ended']): void => {
      if (done) return;
      done = true;
      clearTimeout(overall);
      clearTimeout(stall);
      o.signal?.removeEventListener('abort', onAbort);
      sub.unsubscribe();
      resolve({ replies, expected, ended, durationMs: performance.now() - started });
    };
    const onAbort = (): void => finish('aborted');
    const overall = setTimeout(() => finish('timeout'), o.timeoutMs);
    const sub = nc.subscribe(inbox, {
      callback: (err, msg) => {
        if (err || done) return finish('timeout');
        if (msg.data.length === 0 && msg.headers?.code === 503) return finish('no_responders');
        replies.push(msg.data);
        const e = o.expected?.(msg.data);
        if (e !== undefined && e > 0) expected = Math.max(expected ?? 0, e);
        if (o.maxReplies !== undefined && replies.length >= o.maxReplies) return finish('max_replies');
        clearTimeout(stall);
        if (expected !== undefined && replies.length >= expected) {
          // The count is read from the replies themselves, and the first one may be low (a server that
          // does not know its peers yet): wait a moment for stragglers that would raise it.
          stall = setTimeout(() => finish('count'), Math.min(o.stallMs, COUNT_GRACE_MS));
          return;
        }
        stall = setTimeout(() => finish('stall'), o.stallMs);
      },
    });
    if (o.signal?.aborted) return finish('aborted');
    o.signal?.addEventListener('abort', onAbort, { once: true });
    nc.publish(subject, body, { reply: inbox });
  });
}

export interface SystemAccountOptions {
  config: NatsConnectionConfig;
  /** What the connection is called in log lines (default "system account"; coordination reuses this class). */
  label?: string;
  log: Logger;
  onConnectedChange: (connected: boolean) => void;
}

/** A long-lived system-account connection. `start()` returns at once; the connection comes when it can. */
export class SystemAccount {
  readonly #opts: SystemAccountOptions;
  #nc: NatsConnection | undefined;
  #stopping = false;
  #loop: Promise<void> | undefined;
  #wake: AbortController = new AbortController();
  #connected = false;

  constructor(opts: SystemAccountOptions) {
    this.#opts = opts;
  }

  get connected(): boolean {
    return this.#connected;
  }

  get connection(): NatsConnection | undefined {
    return this.#connected ? this.#nc : undefined;
  }

  start(): void {
    if (this.#loop) return;
    this.#opts.onConnectedChange(false);
    this.#loop = this.#run();
  }

  #set(connected: boolean): void {
    if (connected === this.#connected) return;
    this.#connected = connected;
    this.#opts.onConnectedChange(connected);
    if (connected) for (const w of this.#waiters.splice(0)) w();
  }

  readonly #waiters: (() => void)[] = [];

  /** Resolves true once connected, or false after `ms`. */
  waitConnected(ms: number): Promise<boolean> {
    if (this.#connected) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(done);
        if (i >= 0) this.#waiters.splice(i, 1);
        resolve(false);
      }, ms);
      this.#waiters.push(done);
    });
  }

  /*
   * The first connection is retried here rather than with the client's `waitOnFirstConnect`: with that
   * option `connect()` hands out no connection until the first one succeeds, so nothing could close or
   * cancel it and `stop()` against a server that never answers would leave the client dialling forever.
   * Here each attempt is one bounded `connect()` (`timeout` per URL), and `stop()` ends the loop between
   * attempts. After the first connection the client reconnects by itself, forever.
   */
  async #run(): Promise<void> {
    const { log, config } = this.#opts;
    const label = this.#opts.label ?? 'system account';
    let delay = 500;
    let reported = false;
    while (!this.#stopping) {
      try {
        const nc = await connect({ ...connectionOptions(config), maxReconnectAttempts: -1, reconnectTimeWait: 1000 });
        if (this.#stopping) {
          // stop() ran while this connect was pending and could not see it: close it here, or it would
          // stay open and reconnect forever.
          await closeBounded(nc);
          break;
        }
        this.#nc = nc;
        this.#set(true);
        log.info({ server: nc.getServer() }, `${label} connected`);
        reported = false;
        delay = 500;
        for await (const s of nc.status()) {
          if (s.type === 'disconnect') {
            this.#set(false);
            log.warn({ server: s.server }, `${label} disconnected; reconnecting`);
          } else if (s.type === 'reconnect') {
            this.#set(true);
            log.info({ server: s.server }, `${label} reconnected`);
          }
        }
        // status() ends when the connection is closed for good (by stop(), or by the client giving up).
        this.#set(false);
        if (this.#stopping) break;
        const err = await nc.closed();
        if (!this.#stopping) log.warn({ err }, `${label} connection closed; connecting again`);
      } catch (err) {
        this.#set(false);
        if (!reported && !this.#stopping) {
          log.error({ err, urls: config.urls }, `cannot connect to the ${label}; retrying with backoff`);
          reported = true;
        }
      }
      if (this.#stopping) break;
      await sleep(delay, this.#wake.signal);
      delay = Math.min(delay * 2, 30_000);
    }
  }

  async requestAll(subject: string, body: string, opts: RequestAllOptions): Promise<RequestAllResult> {
    const nc = this.connection;
    if (!nc) throw new CaptureError('the system-account connection is not up', 'network', { via: 'system_account' });
    return requestAllOn(nc, subject, body, opts);
  }

  async request(subject: string, body: string, opts: RequestOpts): Promise<Msg> {
    const nc = this.connection;
    if (!nc) throw new CaptureError('the system-account connection is not up', 'network', { via: 'system_account' });
    return requestOn(nc, subject, body, opts);
  }

  /**
   * Idempotent. Resolves once the connection is closed; a connect still pending cannot be cancelled, so
   * stop() waits for it at most `waitMs` (its handshake timeout ends it later, and the loop closes any
   * connection it brings: nothing is left open either way).
   */
  async stop(waitMs = 2_000): Promise<void> {
    this.#stopping = true;
    this.#wake.abort();
    const nc = this.#nc;
    this.#nc = undefined;
    if (nc && !nc.isClosed()) await closeBounded(nc, waitMs);
    if (this.#loop) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.#loop.catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
      clearTimeout(timer);
    }
    this.#set(false);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}
