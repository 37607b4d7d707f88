/**
 * Recent CPU and memory per watched server, for the incident viewer's charts
 * (GET /api/v1/servers/{name}/samples). The daemon may watch 5,000 servers (issue 16), so each server gets a
 * fixed number of buckets whatever `ui.history` and the poll interval are: a bucket spans history / buckets
 * and keeps the highest cpu and the highest mem recorded in it (a spike is what the chart must not lose)
 * and the time of its latest sample. A longer history or a faster poll makes the buckets coarser, never the
 * ring bigger.
 *
 * Memory: one Float32Array of 3 numbers per bucket (the latest sample's offset in ms from the bucket's start,
 * the highest cpu, the highest mem); with the default 120 buckets that is 1,440 bytes of data (a Float64Array
 * took 2,880 and 3,197 bytes per server in all: at 5,000 servers the rings were the largest single item of
 * the daemon's memory, BENCHMARKS.md issue 16). A chart needs no more than float32's precision: reads give
 * mem as stored (an integer, exact below 16 MiB, within 1 part in 16 million above: 4 bytes at 50 MB), cpu
 * rounded to 7 significant digits (12.34, not 12.340000152587891) and times to the ms. Recording is O(1) and allocates nothing
 * once a server has its ring; reading (an API request) allocates the answer only.
 */

/** Buckets per server: 10m of history (the default) in 5s buckets, the default poll interval. */
export const SAMPLE_BUCKETS = 120;

/** Numbers per bucket in the ring's array: the latest sample's offset from the bucket's start (ms), the highest cpu, the highest mem. */
const STRIDE = 3;

/** A stored float32 cpu as the number it stands for: 7 significant digits (12.34, not 12.340000152587891). */
function digits7(x: number): number {
  return Number(x.toPrecision(7));
}

export interface SamplePoint {
  /** Time of the latest sample in the bucket, ms since the epoch. */
  readonly at: number;
  /** Highest cpu in the bucket: percent of one core, as the server reports it. */
  readonly cpu: number;
  /** Highest resident memory in the bucket, bytes. */
  readonly mem: number;
}

/**
 * One server's ring. Bucket `b` (an absolute number, floor(at / bucketMs)) lives in slot b mod buckets.
 * Invariant: for every bucket in (head - buckets, head] its slot holds that bucket or is empty (NaN time),
 * because moving the head forward empties every slot it passes over.
 */
export class SampleRing {
  readonly #buckets: number;
  #bucketMs: number;
  readonly #data: Float32Array;
  /** Absolute number of the newest bucket; -Infinity while the ring is empty. */
  #head = -Infinity;

  constructor(bucketMs: number, buckets: number = SAMPLE_BUCKETS) {
    if (!(bucketMs > 0) || !Number.isInteger(buckets) || buckets < 1) throw new RangeError(`invalid ring: ${buckets} buckets of ${bucketMs} ms`);
    this.#buckets = buckets;
    this.#bucketMs = bucketMs;
    this.#data = new Float32Array(buckets * STRIDE).fill(NaN);
  }

  get bucketMs(): number {
    return this.#bucketMs;
  }

  /** Bytes of sample data this ring holds (its typed array). */
  get dataBytes(): number {
    return this.#data.byteLength;
  }

  /** Index in the array of bucket `b`'s slot (times before 1970 give negative bucket numbers). */
  #slot(b: number): number {
    const n = this.#buckets;
    return (((b % n) + n) % n) * STRIDE;
  }

  /** One sample. O(1), no allocation (moving the head clears at most `buckets` slots, each once per pass). */
  record(at: number, cpu: number, mem: number): void {
    const b = Math.floor(at / this.#bucketMs);
    const n = this.#buckets;
    const d = this.#data;
    if (b > this.#head) {
      // Empty the slots between the old head and the new one (all of them after a long gap).
      const skipped = this.#head === -Infinity ? n : Math.min(b - this.#head, n);
      for (let k = 0; k < skipped; k++) d[this.#slot(b - k)] = NaN;
      this.#head = b;
    } else if (this.#head - b >= n) {
      // The wall clock stepped back by more than the history: what the ring holds is in the "future"; start over.
      d.fill(NaN);
      this.#head = b;
    }
    const i = this.#slot(b);
    const t = d[i] as number;
    // The offset is exact in float32 for any bucket under 4.6 hours of integer ms.
    const offset = at - b * this.#bucketMs;
    if (Number.isNaN(t)) {
      d[i] = offset;
      d[i + 1] = cpu;
      d[i + 2] = mem;
      return;
    }
    if (offset > t) d[i] = offset;
    if (cpu > (d[i + 1] as number)) d[i + 1] = cpu;
    if (mem > (d[i + 2] as number)) d[i + 2] = mem;
  }

  /** The buckets whose latest sample is at `sinceMs` or later, oldest first. */
  points(sinceMs = -Infinity): SamplePoint[] {
    const out: SamplePoint[] = [];
    if (this.#head === -Infinity) return out;
    const n = this.#buckets;
    const d = this.#data;
    for (let b = this.#head - n + 1; b <= this.#head; b++) {
      const i = this.#slot(b);
      const offset = d[i] as number;
      if (Number.isNaN(offset)) continue;
      const at = Math.round(b * this.#bucketMs + offset);
      if (at < sinceMs) continue;
      out.push({ at, cpu: digits7(d[i + 1] as number), mem: d[i + 2] as number });
    }
    return out;
  }

  /**
   * New bucket width (ui.history changed on reload): the points are put into buckets of the new width, in
   * time order, so that coarser buckets keep the highest values and finer ones keep what there is.
   * `scratch` (at least the ring's array length) lets many rings share one buffer.
   */
  rebucket(bucketMs: number, scratch: Float64Array = new Float64Array(this.#data.length)): void {
    if (!(bucketMs > 0)) throw new RangeError(`invalid bucket width ${bucketMs} ms`);
    if (bucketMs === this.#bucketMs) return;
    // The points oldest first into `scratch` (numbers only: 5,000 rings re-bucket without making objects).
    const n = this.#buckets;
    const d = this.#data;
    let count = 0;
    if (this.#head !== -Infinity) {
      for (let b = this.#head - n + 1; b <= this.#head; b++) {
        const i = this.#slot(b);
        if (Number.isNaN(d[i] as number)) continue;
        scratch[count * STRIDE] = b * this.#bucketMs + (d[i] as number);
        scratch[count * STRIDE + 1] = d[i + 1] as number;
        scratch[count * STRIDE + 2] = d[i + 2] as number;
        count++;
      }
    }
    this.#bucketMs = bucketMs;
    d.fill(NaN);
    this.#head = -Infinity;
    for (let k = 0; k < count; k++) this.record(scratch[k * STRIDE] as number, scratch[k * STRIDE + 1] as number, scratch[k * STRIDE + 2] as number);
  }
}

export interface SampleRingsOptions {
  /** ui.history: how far back the samples go. */
  historyMs: number;
  /** Buckets per server (default SAMPLE_BUCKETS). */
  buckets?: number;
}

/** The rings of every watched server, by inventory key. Fed by the flow; read by the API. */
export class SampleRings {
  readonly #rings = new Map<string, SampleRing>();
  readonly #buckets: number;
  #historyMs: number;
  /** One buffer for every re-bucketing (one ring at a time). */
  readonly #scratch: Float64Array;

  constructor(o: SampleRingsOptions) {
    this.#buckets = o.buckets ?? SAMPLE_BUCKETS;
    if (!(o.historyMs > 0)) throw new RangeError(`invalid history ${o.historyMs} ms`);
    this.#historyMs = o.historyMs;
    this.#scratch = new Float64Array(this.#buckets * STRIDE);
  }

  get historyMs(): number {
    return this.#historyMs;
  }

  /** The span of one bucket: history / buckets. */
  get bucketMs(): number {
    return this.#historyMs / this.#buckets;
  }

  /** Servers with a ring. */
  get size(): number {
    return this.#rings.size;
  }

  /** One sample of the server under `key` (its ring is made at its first sample). */
  record(key: string, at: number, cpu: number, mem: number): void {
    let ring = this.#rings.get(key);
    if (ring === undefined) {
      ring = new SampleRing(this.bucketMs, this.#buckets);
      this.#rings.set(key, ring);
    }
    this.#current(ring).record(at, cpu, mem);
  }

  /** The server's samples of the last history before `now`, oldest first; [] when it has none. */
  samples(key: string, now: number): SamplePoint[] {
    const ring = this.#rings.get(key);
    return ring === undefined ? [] : this.#current(ring).points(now - this.#historyMs);
  }

  /** The ring with the current bucket width: re-bucketed at its first use after a history change. */
  #current(ring: SampleRing): SampleRing {
    const bucketMs = this.bucketMs;
    if (ring.bucketMs !== bucketMs) ring.rebucket(bucketMs, this.#scratch);
    return ring;
  }

  /** Frees the ring of a server that is no longer watched. */
  delete(key: string): boolean {
    return this.#rings.delete(key);
  }

  /**
   * ui.history changed (reload): every ring is re-bucketed to history / buckets, keeping its points. Each
   * ring is re-bucketed at its next sample or read, so that a reload with 5,000 servers does not hold the
   * event loop for all of them at once (the work spreads over the next poll round).
   */
  setHistory(historyMs: number): void {
    if (!(historyMs > 0)) throw new RangeError(`invalid history ${historyMs} ms`);
    this.#historyMs = historyMs;
  }
}
