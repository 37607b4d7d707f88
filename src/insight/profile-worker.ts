/**
 * Profile work off the event loop. Decoding a profile is synchronous (gunzip up to 256 MiB, then
 * protobuf), and the daemon's polls must keep their schedule meanwhile, so it runs in one worker thread
 * (node:worker_threads): started on the first job, one job at a time in order, a bounded queue, a
 * timeout per job (the worker is then terminated and a new one serves the next job), a new worker after
 * a crash, and close() for shutdown. Jobs name an operation (`summarize` today) so that heavier profile
 * work (flame-graph trees, diffs) shares the same thread and lifecycle.
 *
 * The thread's code is profile-worker-thread.{js,ts} beside this file: compiled .js under dist/, and .ts
 * under tsx (tests, benchmarks), where the thread first registers tsx's loader itself (a worker's
 * `--import tsx` does not apply to its entry module on Node 20).
 */
import { Worker } from 'node:worker_threads';
import type { ProfileSummary } from '../store/manifest.js';
import { ProfileDecodeError } from './pprof-summary.js';

/** A profile as bytes (copied once and transferred to the thread) or as a file the thread reads itself. */
export type ProfileInput = Uint8Array | { path: string };

/** What the thread is asked to do (internal protocol between ProfileWorker and profile-worker-thread). */
export type WorkerJob = {
  id: number;
  input: { kind: 'bytes'; bytes: Uint8Array } | { kind: 'path'; path: string };
} & { op: 'summarize'; topN: number };

export type WorkerReply =
  | { id: number; ok: true; result: ProfileSummary }
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
  resolve: (v: ProfileSummary) => void;
  reject: (e: Error) => void;
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
    return this.#submit(input, (id, i) => ({ id, input: i, op: 'summarize', topN }));
  }

  #submit(input: ProfileInput, make: (id: number, input: WorkerJob['input']) => WorkerJob): Promise<ProfileSummary> {
    if (this.#closed) return Promise.reject(new ProfileWorkerError('the profile worker is closed', 'closed'));
    if (this.#queue.length >= this.#maxQueue) {
      return Promise.reject(new ProfileWorkerError(`the profile worker is busy: ${this.#maxQueue} jobs are already waiting`, 'busy'));
    }
    let jobInput: WorkerJob['input'];
    let transfer: ArrayBuffer[] = [];
    let what: string;
    if (input instanceof Uint8Array) {
      // Copied into a buffer of its own and moved: the caller keeps its bytes, the thread gets them without a second copy.
      const bytes = new Uint8Array(input.byteLength);
      bytes.set(input);
      jobInput = { kind: 'bytes', bytes };
      transfer = [bytes.buffer];
      what = `a profile of ${input.byteLength} bytes`;
    } else {
      jobInput = { kind: 'path', path: input.path };
      what = input.path;
    }
    return new Promise<ProfileSummary>((resolve, reject) => {
      this.#queue.push({ job: make(this.#nextId++, jobInput), transfer, what, resolve, reject });
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
    this.#timer = setTimeout(() => this.#onTimeout(), this.#timeoutMs);
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
    else {
      const code = typeof reply.error.code === 'string' ? reply.error.code : undefined;
      p.reject(new ProfileWorkerError(`cannot read ${p.what}: ${reply.error.message}`, 'failed', code === undefined ? {} : { code }));
    }
    this.#pump();
  }

  #onTimeout(): void {
    const worker = this.#worker;
    const p = this.#finish();
    if (worker) this.#drop(worker);
    p?.reject(new ProfileWorkerError(`the profile worker took longer than ${this.#timeoutMs} ms reading ${p.what}; it was stopped and a new one serves the next job`, 'timeout'));
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
