/**
 * Profile work off the event loop. Decoding a profile is synchronous (gunzip up to 256 MiB, then
 * protobuf), and the daemon's polls must keep their schedule meanwhile, so it runs in one worker thread
 * (node:worker_threads): started on the first job, one job at a time in order, a bounded queue, a
 * timeout per job (the worker is then terminated and a new one serves the next job), a new worker after
 * a crash, and close() for shutdown. Jobs name an operation (`summarize` for manifests, `flamegraph`, `top`
 * and `compare` for the API, `growth` for the capture-time changes), all sharing the thread and lifecycle.
 * The API's answers come back as JSON text serialised in the thread, so the event loop neither builds
 * nor stringifies a tree.
 *
 * The thread's code is profile-worker-thread.{js,ts} beside this file: compiled .js under dist/, and .ts
 * under tsx (tests, benchmarks), where the thread first registers tsx's loader itself (a worker's
 * `--import tsx` does not apply to its entry module on Node 20).
 */
import { Worker } from 'node:worker_threads';
import type { ProfileSummary } from '../store/manifest.js';
import type { GrowthChange } from './compare.js';
import { ProfileDecodeError } from './pprof-summary.js';
import { SampleTypeError } from './stacks.js';

/** A profile as bytes (copied once and transferred to the thread) or as a file the thread reads itself. */
export type ProfileInput = Uint8Array | { path: string };

/** Which profile an API answer is about (its first keys). */
export interface AnswerHead {
  incident: string;
  profile: string;
}

export type JobInput = { kind: 'bytes'; bytes: Uint8Array } | { kind: 'path'; path: string };

/**
 * What the thread is asked to do (internal protocol between ProfileWorker and profile-worker-thread).
 * `input` is the profile (the target of a comparison, the new one for growth); `other` the base/previous one.
 */
export type WorkerJob = { id: number; input: JobInput } & (
  | { op: 'summarize'; topN: number }
  | { op: 'flamegraph'; head: AnswerHead; sampleType: string | undefined; minShare: number }
  | { op: 'top'; head: AnswerHead; sampleType: string | undefined; limit: number }
  | { op: 'compare'; other: JobInput; base: AnswerHead; target: AnswerHead; sampleType: string | undefined; minShare: number }
  | { op: 'growth'; other: JobInput }
);

/** What each operation answers: flamegraph, top and compare as the JSON text of the API's body. */
export interface WorkerResults {
  summarize: ProfileSummary;
  flamegraph: string;
  top: string;
  compare: string;
  growth: GrowthChange[];
}

export type WorkerReply =
  | { id: number; ok: true; result: WorkerResults[keyof WorkerResults] }
  | { id: number; ok: false; error: { name: string; message: string; code?: unknown } };

export type ProfileWorkerErrorKind = 'busy' | 'timeout' | 'crashed' | 'closed' | 'failed';

/** The worker could not do the job: queue full, timed out, crashed, closed, or the job failed (e.g. unreadable file). */
export class ProfileWorkerError extends Error {
  override readonly name = 'ProfileWorkerError';
  readonly kind: ProfileWorkerErrorKind;
  readonly code: string | undefined;
  constructor(message: string, kind: ProfileWorkerErrorKind, opts: { cause?: unknown; code?: string } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.kind = kind;
    this.code = opts.code;
  }
}

export interface ProfileWorkerOptions {
  /** A job that runs longer than this terminates the thread and fails with kind 'timeout'. Default 60 s. */
  timeoutMs?: number;
  /** Jobs waiting behind the running one; more fail at once with kind 'busy'. Default 64 (capture.max_concurrent's maximum). */
  maxQueue?: number;
  /** An idle thread is ended after this long (it holds the memory of its last decode). Default 30 s. */
  idleMs?: number;
  /** The thread's entry module (tests). Default: profile-worker-thread beside this file. */
  entry?: URL;
}

interface Pending {
  job: WorkerJob;
  transfer: ArrayBuffer[];
  what: string;
  timeoutMs: number;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/** Per-job options of the API and capture-time operations. */
export interface JobOptions {
  /** Overrides the worker's timeout for this job (capture-time work must never hold a capture up for long). */
  timeoutMs?: number;
}

const HERE = import.meta.url;
const DEFAULT_ENTRY = new URL(`./profile-worker-thread.${HERE.endsWith('.ts') ? 'ts' : 'js'}`, HERE);

function spawn(entry: URL): Worker {
  if (!entry.pathname.endsWith('.ts')) return new Worker(entry);
  // Under tsx: register its loader inside the thread, then load the TypeScript entry.
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(boot, { eval: true });
}

export class ProfileWorker {
  readonly #timeoutMs: number;
  readonly #maxQueue: number;
  readonly #idleMs: number;
  readonly #entry: URL;
  #worker: Worker | undefined;
  #current: Pending | undefined;
  #timer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  readonly #queue: Pending[] = [];
  #nextId = 1;
  #closed: Promise<void> | undefined;
  #starts = 0;

  constructor(o: ProfileWorkerOptions = {}) {
    this.#timeoutMs = o.timeoutMs ?? 60_000;
    this.#maxQueue = o.maxQueue ?? 64;
    this.#idleMs = o.idleMs ?? 30_000;
    this.#entry = o.entry ?? DEFAULT_ENTRY;
  }

  /** How many threads were started so far (1 after the first job; more after crashes, timeouts, idle ends). */
  get threadsStarted(): number {
    return this.#starts;
  }

  /**
   * Top functions of a profile (see summarizeProfile). Rejects with ProfileDecodeError for bytes that
   * are not a profile, and ProfileWorkerError for everything else.
   */
  summarize(input: ProfileInput, topN = 10): Promise<ProfileSummary> {
    return this.#submit('summarize', [input], (id, [i]) => ({ id, input: i, op: 'summarize', topN }));
  }

  /**
   * The flame graph of a profile (see buildFlameGraph) as JSON text. Rejects with SampleTypeError when the
   * profile lacks `sampleType`, ProfileDecodeError for bytes that are not a profile, ProfileWorkerError otherwise.
   */
  flamegraph(input: ProfileInput, o: { head: AnswerHead; sampleType: string | undefined; minShare: number }, j: JobOptions = {}): Promise<string> {
    return this.#submit('flamegraph', [input], (id, [i]) => ({ id, input: i, op: 'flamegraph', ...o }), j);
  }

  /** The top table of a profile (see buildTop) as JSON text; rejects like flamegraph(). */
  top(input: ProfileInput, o: { head: AnswerHead; sampleType: string | undefined; limit: number }, j: JobOptions = {}): Promise<string> {
    return this.#submit('top', [input], (id, [i]) => ({ id, input: i, op: 'top', ...o }), j);
  }

  /** Two profiles compared (see compareProfiles) as JSON text; rejects like flamegraph(). */
  compare(
    base: ProfileInput,
    target: ProfileInput,
    o: { base: AnswerHead; target: AnswerHead; sampleType: string | undefined; minShare: number },
    j: JobOptions = {},
  ): Promise<string> {
    return this.#submit('compare', [target, base], (id, [t, b]) => ({ id, input: t, other: b, op: 'compare', ...o }), j);
  }

  /** The functions whose share grew since `before` (see growthSince); rejects like flamegraph(). */
  growth(before: ProfileInput, after: ProfileInput, j: JobOptions = {}): Promise<GrowthChange[]> {
    return this.#submit('growth', [after, before], (id, [a, b]) => ({ id, input: a, other: b, op: 'growth' }), j);
  }

  #submit<K extends keyof WorkerResults>(
    _op: K,
    inputs: [ProfileInput, ...ProfileInput[]],
    make: (id: number, inputs: [JobInput, JobInput]) => WorkerJob & { op: K },
    j: JobOptions = {},
  ): Promise<WorkerResults[K]> {
    if (this.#closed) return Promise.reject(new ProfileWorkerError('the profile worker is closed', 'closed'));
    if (this.#queue.length >= this.#maxQueue) {
      return Promise.reject(new ProfileWorkerError(`the profile worker is busy: ${this.#maxQueue} jobs are already waiting`, 'busy'));
    }
    const transfer: ArrayBuffer[] = [];
    const whats: string[] = [];
    const jobInputs = inputs.map((input): JobInput => {
      if (input instanceof Uint8Array) {
        // Copied into a buffer of its own and moved: the caller keeps its bytes, the thread gets them without a second copy.
        const bytes = new Uint8Array(input.byteLength);
        bytes.set(input);
        transfer.push(bytes.buffer);
        whats.push(`a profile of ${input.byteLength} bytes`);
        return { kind: 'bytes', bytes };
      }
      whats.push(input.path);
      return { kind: 'path', path: input.path };
    });
    const first = jobInputs[0] as JobInput;
    const job = make(this.#nextId++, [first, jobInputs[1] ?? first]);
    return new Promise<WorkerResults[K]>((resolve, reject) => {
      this.#queue.push({
        job,
        transfer,
        what: whats.join(' and '),
        timeoutMs: j.timeoutMs ?? this.#timeoutMs,
        // The thread answers job.op's result type (profile-worker-thread's operation table is typed by WorkerResults).
        resolve: resolve as (v: unknown) => void,
        reject,
      });
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#current || this.#closed) return;
    const next = this.#queue.shift();
    if (!next) {
      this.#idle();
      return;
    }
    clearTimeout(this.#idleTimer);
    const worker = this.#worker ?? this.#start();
    worker.ref();
    this.#current = next;
    this.#timer = setTimeout(() => this.#onTimeout(next.timeoutMs), next.timeoutMs);
    worker.postMessage(next.job, next.transfer);
  }

  #idle(): void {
    const worker = this.#worker;
    if (!worker) return;
    // An idle thread must not keep a process (the one-shot CLI) alive.
    worker.unref();
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      if (this.#worker === worker && !this.#current) this.#drop(worker);
    }, this.#idleMs);
    this.#idleTimer.unref();
  }

  #start(): Worker {
    const worker = spawn(this.#entry);
    this.#starts++;
    this.#worker = worker;
    let lastError: Error | undefined;
    worker.on('message', (reply: WorkerReply) => this.#onReply(worker, reply));
    worker.on('error', (err) => {
      lastError = err;
    });
    worker.on('exit', (code) => {
      if (this.#worker !== worker) return; // ended on purpose (timeout, idle, close)
      this.#worker = undefined;
      const p = this.#finish();
      p?.reject(
        new ProfileWorkerError(
          `the profile worker stopped (${lastError ? lastError.message : `exit code ${code}`}) while reading ${p.what}; a new one serves the next job`,
          'crashed',
          { cause: lastError },
        ),
      );
      this.#pump();
    });
    return worker;
  }

  #onReply(worker: Worker, reply: WorkerReply): void {
    if (this.#worker !== worker || this.#current?.job.id !== reply.id) return;
    const p = this.#finish();
    if (!p) return;
    if (reply.ok) p.resolve(reply.result);
    else if (reply.error.name === 'ProfileDecodeError') p.reject(new ProfileDecodeError(reply.error.message));
    else if (reply.error.name === 'SampleTypeError') p.reject(new SampleTypeError(reply.error.message));
    else {
      const code = typeof reply.error.code === 'string' ? reply.error.code : undefined;
      p.reject(new ProfileWorkerError(`cannot read ${p.what}: ${reply.error.message}`, 'failed', code === undefined ? {} : { code }));
    }
    this.#pump();
  }

  #onTimeout(timeoutMs: number): void {
    const worker = this.#worker;
    const p = this.#finish();
    if (worker) this.#drop(worker);
    p?.reject(new ProfileWorkerError(`the profile worker took longer than ${timeoutMs} ms reading ${p.what}; it was stopped and a new one serves the next job`, 'timeout'));
    this.#pump();
  }

  /** Clears the running job and returns it. */
  #finish(): Pending | undefined {
    clearTimeout(this.#timer);
    const p = this.#current;
    this.#current = undefined;
    return p;
  }

  #drop(worker: Worker): Promise<void> {
    if (this.#worker === worker) this.#worker = undefined;
    return worker.terminate().then(() => undefined, () => undefined);
  }

  /** Fails the running and waiting jobs (kind 'closed') and ends the thread. Idempotent; later jobs fail at once. */
  close(): Promise<void> {
    if (this.#closed) return this.#closed;
    clearTimeout(this.#idleTimer);
    const closed = new ProfileWorkerError('the profile worker is closed', 'closed');
    const running = this.#finish();
    const waiting = this.#queue.splice(0);
    const worker = this.#worker;
    this.#closed = worker ? this.#drop(worker) : Promise.resolve();
    for (const p of [...(running ? [running] : []), ...waiting]) p.reject(closed);
    return this.#closed;
  }
}
