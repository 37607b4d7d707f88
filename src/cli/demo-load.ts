/**
 * The demo's load generator: application traffic against the demo server's APP account, in waves
 * (busy, then quiet), so that the server's CPU and memory go up and come down again.
 *
 * A busy wave publishes, in batches paced by a flush (a round trip, so the event loop and the server
 * both breathe): a flood of small messages on a few subjects (CPU), large messages (the server allocates
 * a buffer for each: memory), and messages on thousands of subjects subscribed one by one for this wave
 * and dropped at its end (subscription churn, allocations). A second connection receives everything.
 *
 * This is application traffic, not the daemon's system-account connection, so it talks to the NATS client
 * directly (closing goes through capture/nats-connection's bounded close).
 */
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { closeBounded } from '../capture/nats-connection.js';
import { systemClock } from '../clock.js';
import { formatSize } from '../config/duration.js';
import { describeError } from '../errors.js';

export const LOAD_SHAPE = {
  floodSubjects: 64,
  floodPayloadBytes: 256,
  floodPerBatch: 1_000,
  bigPayloadBytes: 1024 * 1024,
  bigPerBatch: 8,
  manySubjects: 10_000,
  manyPerBatch: 200,
} as const;

const CONNECT_TIMEOUT_MS = 5_000;

export interface WaveStats {
  readonly messages: number;
  readonly bytes: number;
}

export type LoadEvent =
  | { readonly kind: 'busy'; readonly wave: number; readonly ms: number }
  | { readonly kind: 'quiet'; readonly wave: number; readonly ms: number; readonly sent: WaveStats }
  | { readonly kind: 'problem'; readonly message: string };

export interface WaveOptions {
  readonly busyMs: number;
  readonly quietMs: number;
  readonly signal: AbortSignal;
  readonly onEvent: (e: LoadEvent) => void;
}

/** `a publish flood on 64 subjects, 1MiB messages, 10000 short-lived subscriptions` */
export function describeLoad(): string {
  const s = LOAD_SHAPE;
  return `a publish flood on ${s.floodSubjects} subjects, ${formatSize(s.bigPayloadBytes)} messages, ${s.manySubjects} short-lived subscriptions`;
}


export class LoadGenerator {
  readonly #pub: NatsConnection;
  readonly #sub: NatsConnection;
  readonly #small = new Uint8Array(LOAD_SHAPE.floodPayloadBytes);
  readonly #big = new Uint8Array(LOAD_SHAPE.bigPayloadBytes);
  #received = 0;
  #closed = false;

  private constructor(pub: NatsConnection, sub: NatsConnection) {
    this.#pub = pub;
    this.#sub = sub;
    const count = (): void => {
      this.#received++;
    };
    sub.subscribe('demo.flood.>', { callback: count });
    sub.subscribe('demo.big.>', { callback: count });
  }

  /** Opens the publishing and the receiving connection (no reconnect: the demo owns the server). */
  static async connect(o: { url: string; user: string; password: string }): Promise<LoadGenerator> {
    const opts = { servers: o.url, user: o.user, pass: o.password, timeout: CONNECT_TIMEOUT_MS, reconnect: false, maxReconnectAttempts: 0 };
    const pub = await connect({ ...opts, name: 'nats-autoprof-demo-publisher' });
    let sub: NatsConnection;
    try {
      sub = await connect({ ...opts, name: 'nats-autoprof-demo-subscriber' });
    } catch (err) {
      await closeBounded(pub);
      throw err;
    }
    const gen = new LoadGenerator(pub, sub);
    await sub.flush();
    return gen;
  }

  get received(): number {
    return this.#received;
  }

  /** Busy and quiet waves until the signal aborts. Never throws: a broken connection ends it with a `problem`. */
  async run(o: WaveOptions): Promise<void> {
    for (let wave = 1; !o.signal.aborted; wave++) {
      o.onEvent({ kind: 'busy', wave, ms: o.busyMs });
      let sent: WaveStats;
      try {
        sent = await this.#busy(wave, o.busyMs, o.signal);
      } catch (err) {
        if (!o.signal.aborted) o.onEvent({ kind: 'problem', message: `load generator stopped: ${describeError(err)}` });
        return;
      }
      if (o.signal.aborted) return;
      o.onEvent({ kind: 'quiet', wave, ms: o.quietMs, sent });
      await systemClock.sleep(o.quietMs, o.signal).catch(() => undefined);
    }
  }

  async #busy(wave: number, ms: number, signal: AbortSignal): Promise<WaveStats> {
    const s = LOAD_SHAPE;
    const subs: Subscription[] = [];
    const count = (): void => {
      this.#received++;
    };
    for (let i = 0; i < s.manySubjects; i++) subs.push(this.#sub.subscribe(`demo.many.${wave}.${i}`, { callback: count }));
    await this.#sub.flush();
    const deadline = Date.now() + ms;
    let messages = 0;
    let bytes = 0;
    for (let batch = 0; Date.now() < deadline && !signal.aborted; batch++) {
      for (let i = 0; i < s.floodPerBatch; i++) this.#pub.publish(`demo.flood.${i % s.floodSubjects}`, this.#small);
      for (let i = 0; i < s.bigPerBatch; i++) this.#pub.publish(`demo.big.${(batch * s.bigPerBatch + i) % 1000}`, this.#big);
      for (let i = 0; i < s.manyPerBatch; i++) this.#pub.publish(`demo.many.${wave}.${(batch * s.manyPerBatch + i) % s.manySubjects}`, this.#small);
      messages += s.floodPerBatch + s.bigPerBatch + s.manyPerBatch;
      bytes += (s.floodPerBatch + s.manyPerBatch) * s.floodPayloadBytes + s.bigPerBatch * s.bigPayloadBytes;
      await this.#pub.flush();
    }
    for (const sub of subs) sub.unsubscribe();
    if (!this.#sub.isClosed()) await this.#sub.flush();
    return { messages, bytes };
  }

  /** Closes both connections, each within a bounded time. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([closeBounded(this.#pub), closeBounded(this.#sub)]);
  }
}
