/**
 * The body of the profile worker thread (started by ProfileWorker, never imported elsewhere): decodes
 * profiles off the daemon's event loop. One job at a time, in order; each reply carries the job's id.
 * Jobs name an operation, so flame-graph trees and diffs can join `summarize` without a new thread.
 */
import { readFile } from 'node:fs/promises';
import { parentPort } from 'node:worker_threads';
import type { ProfileSummary } from '../store/manifest.js';
import { summarizeProfile } from './pprof-summary.js';
import type { WorkerReply, WorkerJob } from './profile-worker.js';

type Operations = { [K in WorkerJob['op']]: (job: Extract<WorkerJob, { op: K }>, data: Uint8Array) => ProfileSummary };

const operations: Operations = {
  summarize: (job, data) => summarizeProfile(data, job.topN),
};

async function run(job: WorkerJob): Promise<WorkerReply> {
  try {
    const data = job.input.kind === 'bytes' ? job.input.bytes : await readFile(job.input.path);
    return { id: job.id, ok: true, result: operations[job.op](job, data) };
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    return { id: job.id, ok: false, error: { name: e.name, message: e.message, code: (e as { code?: unknown }).code } };
  }
}

const port = parentPort;
if (!port) throw new Error('profile-worker-thread must run in a worker thread (new ProfileWorker())');
port.on('message', (job: WorkerJob) => {
  void run(job).then((reply) => port.postMessage(reply));
});
