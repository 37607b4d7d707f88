/**
 * The JetStream object store that replicas share incidents through (issue 17, guarantee 5), on the
 * coordination connection: created when missing, refused when its settings would break the guarantee
 * (a TTL expires objects one by one, so an incident could lose files under its manifest; a sealed bucket
 * takes no upload). Also the retention lease: a KV create of `retention` in the coordination `live` bucket
 * (TTL lease_ttl), so that one replica at a time prunes the bucket.
 */
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';

import type { IncidentBucket } from '../store/incident-sync.js';
import type { BucketObject } from '../store/upload-plan.js';
import { describeError } from '../errors.js';
import { bounded, CoordinationError } from './buckets.js';

export interface IncidentBucketSettings {
  bucket: string;
  replicas: number;
  maxBytes: number;
  /** The coordination `live` bucket (its TTL is lease_ttl). */
  liveBucket: string;
  timeoutMs: number;
  /** An upload of one object may take longer than a KV call: bounded by this. */
  transferTimeoutMs: number;
  instance: string;
}

export class JetStreamIncidentBucket implements IncidentBucket {
  readonly #s: IncidentBucketSettings;
  readonly #connection: () => NatsConnection | undefined;
  #os: ObjectStore | undefined;
  #live: KV | undefined;
  #on: NatsConnection | undefined;
  /** Settings that differ from the config but do not break anything, said once. */
  readonly notes: string[] = [];

  get name(): string {
    return this.#s.bucket;
  }

  constructor(settings: IncidentBucketSettings, connection: () => NatsConnection | undefined) {
    this.#s = settings;
    this.#connection = connection;
  }

  async #open(): Promise<{ os: ObjectStore; live: KV }> {
    const nc = this.#connection();
    if (!nc) throw new CoordinationError('not connected to the coordination server', 'unavailable');
    if (this.#os && this.#live && this.#on === nc) return { os: this.#os, live: this.#live };
    const s = this.#s;
    const os = await bounded(new Objm(nc).create(s.bucket, { replicas: s.replicas, max_bytes: s.maxBytes }), s.timeoutMs, `opening object store ${s.bucket}`).catch((err: unknown) => {
      // The cluster cannot hold a bucket this large (or this many replicas): only the operator can change that.
      if (/insufficient (storage|resources)|no suitable peers/i.test(describeError(err))) {
        throw new CoordinationError(
          `JetStream cannot create object store "${s.bucket}" with ${s.replicas} replica(s) and max_bytes ${s.maxBytes} (${describeError(err)}): ` +
            'lower storage.object_store.max_bytes (or replicas), or give the servers more JetStream storage (jetstream.max_file_store)',
          'incompatible_bucket',
          { cause: err },
        );
      }
      throw err;
    });
    const st = await bounded(os.status(), s.timeoutMs, `reading object store ${s.bucket}`);
    if (st.ttl !== 0) {
      throw new CoordinationError(
        `object store "${s.bucket}" expires objects after ${Math.round(st.ttl / 1e6)} ms, which could leave an incident without some of its files: ` +
          `delete it (nats object rm ${s.bucket}) so that it is created again without a TTL, or name another bucket in storage.object_store.bucket (retention already applies to the bucket)`,
        'incompatible_bucket',
      );
    }
    if (st.sealed) throw new CoordinationError(`object store "${s.bucket}" is sealed and takes no upload: name another bucket in storage.object_store.bucket`, 'incompatible_bucket');
    if (st.replicas !== s.replicas) this.notes.push(`object store "${s.bucket}" has ${st.replicas} replica(s); storage.object_store.replicas ${s.replicas} applies only when it is created`);
    const maxBytes = st.streamInfo.config.max_bytes;
    if (maxBytes !== s.maxBytes) this.notes.push(`object store "${s.bucket}" has max_bytes ${maxBytes}; storage.object_store.max_bytes ${s.maxBytes} applies only when it is created`);
    const live = await bounded(new Kvm(nc).open(s.liveBucket, { allow_direct: false }), s.timeoutMs, `opening KV bucket ${s.liveBucket}`);
    this.#os = os;
    this.#live = live;
    this.#on = nc;
    return { os, live };
  }

  /** Opens (creating when missing) and checks the bucket; rejects with a CoordinationError. */
  async check(): Promise<void> {
    await this.#open();
  }

  async put(name: string, data: Uint8Array): Promise<void> {
    const { os } = await this.#open();
    await bounded(os.putBlob({ name }, data), this.#s.transferTimeoutMs, `uploading ${name}`);
  }

  async get(name: string): Promise<Uint8Array | undefined> {
    const { os } = await this.#open();
    // getBlob checks the object's digest as it reads: a torn object is an error, never wrong bytes.
    return (await bounded(os.getBlob(name), this.#s.transferTimeoutMs, `downloading ${name}`)) ?? undefined;
  }

  async list(): Promise<BucketObject[]> {
    const { os } = await this.#open();
    const infos = await bounded(os.list(), this.#s.transferTimeoutMs, `listing object store ${this.#s.bucket}`);
    return infos.filter((i) => !i.deleted).map((i) => ({ name: i.name, size: i.size }));
  }

  async delete(name: string): Promise<void> {
    const { os } = await this.#open();
    await bounded(os.delete(name), this.#s.timeoutMs, `deleting ${name}`);
  }

  async withLease(key: string, fn: () => Promise<void>): Promise<boolean> {
    const { live } = await this.#open();
    let rev: number;
    try {
      rev = await bounded(live.create(key, JSON.stringify({ instance: this.#s.instance, at: Date.now() })), this.#s.timeoutMs, `taking the ${key} lease`);
    } catch (err) {
      // Held by another replica (the key has a value): not an error, that replica does the work.
      if (typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 10071) return false;
      throw err;
    }
    try {
      await fn();
    } finally {
      await bounded(live.delete(key, { previousSeq: rev }), this.#s.timeoutMs, `releasing the ${key} lease`).catch(() => undefined);
    }
    return true;
  }
}
