/**
 * Opens coordination's two KV buckets on a connection, creating them when missing and refusing ones whose
 * settings would break the guarantees: `live` must expire entries after exactly `lease_ttl` (members and
 * capture leases die with it), `state` must not expire anything (the capture.limit window, last firings).
 */
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { AutoprofError } from '../errors.js';
import { formatDuration } from '../config/duration.js';

/** Why coordination cannot work. `permanent` problems need an operator (restarting will not help). */
export class CoordinationError extends AutoprofError {
  override readonly name = 'CoordinationError';
  readonly kind: 'system_account' | 'no_jetstream' | 'incompatible_bucket' | 'unavailable';
  constructor(message: string, kind: CoordinationError['kind'], options?: { cause?: unknown }) {
    super(message, {}, options);
    this.kind = kind;
  }
  /**
   * Restarting cannot fix these. "JetStream not enabled" for an ordinary account is not counted: a server
   * answers so for a moment after a connection is made or a cluster forms, and an operator may enable it.
   */
  get permanent(): boolean {
    return this.kind === 'system_account' || this.kind === 'incompatible_bucket';
  }
}

export interface BucketSettings {
  live: string;
  state: string;
  leaseTtlMs: number;
  replicas: number;
  timeoutMs: number;
}

export interface Buckets {
  readonly live: KV;
  readonly state: KV;
  /** Settings that differ from the config but do not break anything (replicas), for a warning. */
  readonly notes: string[];
}

/** JetStream API error codes (fields of the client's JetStreamApiError). */
export const JS_WRONG_LAST_SEQUENCE = 10071;
const JS_STREAM_NOT_FOUND = 10059;

const codeOf = (err: unknown): number | undefined => (typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : undefined);

/** Rejects after `ms`: a KV call against a server that is gone must not hold a heartbeat or a capture. */
export async function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new CoordinationError(`${what}: no answer within ${ms} ms`, 'unavailable')), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export async function openBuckets(nc: NatsConnection, s: BucketSettings): Promise<Buckets> {
  const kvm = new Kvm(nc);
  const notes: string[] = [];
  const live = await openOne(nc, kvm, s.live, s.leaseTtlMs, s, notes);
  const state = await openOne(nc, kvm, s.state, 0, s, notes);
  return { live, state, notes };
}

async function openOne(nc: NatsConnection, kvm: Kvm, name: string, ttlMs: number, s: BucketSettings, notes: string[]): Promise<KV> {
  const wanted = ttlMs === 0 ? 'no TTL' : `TTL ${formatDuration(ttlMs)} (coordination.lease_ttl)`;
  let kv: KV;
  try {
    // Bound without direct gets (the client's default for open): reads through the stream leader, as above.
    kv = await bounded(kvm.open(name, { allow_direct: false }), s.timeoutMs, `opening KV bucket ${name}`);
    const st = await bounded(kv.status(), s.timeoutMs, `reading KV bucket ${name}`);
    if (st.ttl !== ttlMs) {
      throw new CoordinationError(
        `KV bucket "${name}" exists with ${st.ttl === 0 ? 'no TTL' : `TTL ${formatDuration(st.ttl)}`}, and coordination needs ${wanted}: ` +
          `delete it (nats kv del ${name}) so that it is created again, or ${ttlMs === 0 ? 'name another bucket in coordination.buckets.state' : `set lease_ttl: ${formatDuration(st.ttl)}`}`,
        'incompatible_bucket',
      );
    }
    if (st.replicas !== s.replicas) notes.push(`KV bucket "${name}" has ${st.replicas} replica(s); coordination.replicas ${s.replicas} applies only when a bucket is created`);
    return kv;
  } catch (err) {
    if (err instanceof CoordinationError) throw err;
    if (codeOf(err) !== JS_STREAM_NOT_FOUND && !isNotFound(err)) throw await explain(nc, err, s.timeoutMs);
  }
  try {
    // allow_direct off: reads go to the stream leader, so a read right after another replica's write sees
    // it (a direct get may answer from a follower that lags, or find no responder on a stream just created).
    return await bounded(kvm.create(name, { ttl: ttlMs, history: 1, replicas: s.replicas, allow_direct: false }), s.timeoutMs, `creating KV bucket ${name}`);
  } catch (err) {
    throw await explain(nc, err, s.timeoutMs);
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof Error && err.name === 'StreamNotFoundError';
}

/**
 * Turns "JetStream is not enabled" into what to do about it: the system account answers `$SYS` requests
 * (and can never have JetStream), any other account lacks `jetstream: enabled`.
 */
async function explain(nc: NatsConnection, err: unknown, timeoutMs: number): Promise<Error> {
  if (err instanceof CoordinationError) return err;
  if (!(err instanceof Error && err.name === 'JetStreamNotEnabled')) {
    return new CoordinationError(`JetStream KV is not usable: ${err instanceof Error ? err.message : String(err)}`, 'unavailable', { cause: err });
  }
  let system = false;
  try {
    await nc.request('$SYS.REQ.SERVER.PING', '', { timeout: Math.min(timeoutMs, 2_000) });
    system = true;
  } catch {
    // No responders: an ordinary account.
  }
  return system
    ? new CoordinationError(
        'coordination connects to the system account, which cannot use JetStream: use a user of an account with JetStream enabled (jetstream: enabled in its accounts block)',
        'system_account',
        { cause: err },
      )
    : new CoordinationError('JetStream is not enabled for the account coordination connects to: enable it for that account (jetstream: enabled) or use another user', 'no_jetstream', {
        cause: err,
      });
}
