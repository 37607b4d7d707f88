/**
 * A least-recently-used cache of computed answers (flame graphs, top tables, diffs as JSON text), bounded
 * by their approximate size in bytes, so that reloading an incident's page does not decode its profiles
 * again. Concurrent requests for the same key share one computation. Failures are not cached.
 */

export const DEFAULT_CACHE_SIZE_BYTES = 64 * 1024 * 1024;

export interface InsightCacheOptions<V> {
  /** Total approximate size kept; the least recently used go first. Default 64 MiB. */
  maxBytes?: number;
  /** Approximate bytes of a value. Default: 2 per character of a string (V8's worst case), 64 otherwise. */
  sizeOf?: (value: V) => number;
}

/** Fixed cost of an entry besides its value and key (map slot, bookkeeping). */
const ENTRY_OVERHEAD_BYTES = 64;

export class InsightCache<V> {
  readonly maxBytes: number;
  readonly #sizeOf: (value: V) => number;
  readonly #entries = new Map<string, { value: V; bytes: number }>();
  readonly #pending = new Map<string, Promise<V>>();
  #bytes = 0;
  hits = 0;
  misses = 0;

  constructor(o: InsightCacheOptions<V> = {}) {
    this.maxBytes = o.maxBytes ?? DEFAULT_CACHE_SIZE_BYTES;
    this.#sizeOf = o.sizeOf ?? ((v) => (typeof v === 'string' ? v.length * 2 : 64));
  }

  /** Approximate bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(key: string): V | undefined {
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    // Map keeps insertion order: re-inserting makes it the most recently used.
    this.#entries.delete(key);
    this.#entries.set(key, e);
    return e.value;
  }

  /** Stores `value`, evicting the least recently used; a value larger than the whole cache is not stored. */
  set(key: string, value: V): void {
    this.delete(key);
    const bytes = this.#sizeOf(value) + key.length * 2 + ENTRY_OVERHEAD_BYTES;
    if (bytes > this.maxBytes) return;
    this.#entries.set(key, { value, bytes });
    this.#bytes += bytes;
    for (const [k, e] of this.#entries) {
      if (this.#bytes <= this.maxBytes) break;
      this.#entries.delete(k);
      this.#bytes -= e.bytes;
    }
  }

  delete(key: string): void {
    const e = this.#entries.get(key);
    if (e === undefined) return;
    this.#entries.delete(key);
    this.#bytes -= e.bytes;
  }

  /** The cached value, or `compute()`'s (stored on success); callers asking while it runs share it. */
  async getOrCompute(key: string, compute: () => Promise<V>): Promise<V> {
    const hit = this.get(key);
    if (hit !== undefined) {
      this.hits++;
      return hit;
    }
    const running = this.#pending.get(key);
    if (running) return running;
    this.misses++;
    const p = compute().then(
      (v) => {
        this.#pending.delete(key);
        this.set(key, v);
        return v;
      },
      (err: unknown) => {
        this.#pending.delete(key);
        throw err;
      },
    );
    this.#pending.set(key, p);
    return p;
  }
}
