/**
 * The body of the profile worker thread (started by ProfileWorker, never imported elsewhere): decodes
 * profiles off the daemon's event loop. One job at a time, in order; each reply carries the job's id.
 * The last two profiles read from files stay read (pprof-reader.ts; keyed by path, size and mtime), so the
 * flame graph, the top table and the comparison of one page view gunzip each file once; the thread's idle
 * end frees them.
 */
import { open, readFile } from 'node:fs/promises';
import { parentPort } from 'node:worker_threads';
import { compareProfiles, growthSince } from './compare.js';
import { buildFlameGraph } from './flamegraph.js';
import { readProfile, type ProfileData } from './pprof-reader.js';
import { summarizeProfile } from './pprof-summary.js';
import type { JobInput, WorkerJob, WorkerReply, WorkerResults } from './profile-worker.js';
import { buildTop } from './top.js';
import { allocsDelta } from './delta.js';

const KEEP_DECODED = 2;
const decoded: { key: string; profile: ProfileData }[] = [];

async function load(input: JobInput): Promise<ProfileData> {
  if (input.kind === 'bytes') return readProfile(input.bytes);
  const file = await open(input.path, 'r');
  try {
    const st = await file.stat();
    const key = `${input.path}\0${st.size}\0${st.mtimeMs}`;
    const hit = decoded.find((d) => d.key === key);
    if (hit) return hit.profile;
    const profile = readProfile(await file.readFile());
    decoded.unshift({ key, profile });
    decoded.length = Math.min(decoded.length, KEEP_DECODED);
    return profile;
  } finally {
    await file.close();
  }
}

type Operations = { [K in WorkerJob['op']]: (job: Extract<WorkerJob, { op: K }>) => Promise<WorkerResults[K]> };

const operations: Operations = {
  summarize: async (job) => summarizeProfile(job.input.kind === 'bytes' ? job.input.bytes : await readFile(job.input.path), job.topN),
  flamegraph: async (job) => JSON.stringify({ ...job.head, ...buildFlameGraph(await load(job.input), job) }),
  top: async (job) => JSON.stringify({ ...job.head, ...buildTop(await load(job.input), job) }),
  compare: async (job) => {
    const base = await load(job.other);
    const { base_total, target_total, ...diff } = compareProfiles(base, await load(job.input), job);
    return JSON.stringify({ base: { ...job.base, total: base_total }, target: { ...job.target, total: target_total }, ...diff });
  },
  growth: async (job) => {
    const before = await load(job.other);
    return growthSince(before, await load(job.input));
  },
  delta: async (job) => {
    const bytes = async (i: JobInput): Promise<Uint8Array> => (i.kind === 'bytes' ? i.bytes : readFile(i.path));
    return allocsDelta(job.other === undefined ? undefined : await bytes(job.other), await bytes(job.input), job.windowMs);
  },
};

function perform<K extends WorkerJob['op']>(job: Extract<WorkerJob, { op: K }>): Promise<WorkerResults[K]> {
  return (operations[job.op] as (j: typeof job) => Promise<WorkerResults[K]>)(job);
}

async function run(job: WorkerJob): Promise<WorkerReply> {
  try {
    return { id: job.id, ok: true, result: await perform(job) };
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
