/**
 * The body of the profile worker thread (started by ProfileWorker, never imported elsewhere): decodes
 * profiles off the daemon's event loop. One job at a time, in order; each reply carries the job's id.
 * The last two profiles read from files stay decoded (keyed by path, size and mtime), so the flame graph,
 * the top table and the comparison of one page view decode each file once; the thread's idle end frees them.
 */
import { open } from 'node:fs/promises';
import { parentPort } from 'node:worker_threads';
import type { Profile } from 'pprof-format';
import { compareProfiles, growthSince } from './compare.js';
import { buildFlameGraph } from './flamegraph.js';
import { decodeProfile, summarizeDecoded } from './pprof-summary.js';
import type { JobInput, WorkerJob, WorkerReply, WorkerResults } from './profile-worker.js';
import { buildTop } from './top.js';

const KEEP_DECODED = 2;
const decoded: { key: string; profile: Profile }[] = [];

async function load(input: JobInput): Promise<Profile> {
  if (input.kind === 'bytes') return decodeProfile(input.bytes);
  const file = await open(input.path, 'r');
  try {
    const st = await file.stat();
    const key = `${input.path}\0${st.size}\0${st.mtimeMs}`;
    const hit = decoded.find((d) => d.key === key);
    if (hit) return hit.profile;
    const profile = decodeProfile(await file.readFile());
    decoded.unshift({ key, profile });
    decoded.length = Math.min(decoded.length, KEEP_DECODED);
    return profile;
  } finally {
    await file.close();
  }
}

type Operations = { [K in WorkerJob['op']]: (job: Extract<WorkerJob, { op: K }>) => Promise<WorkerResults[K]> };

const operations: Operations = {
  summarize: async (job) => summarizeDecoded(await load(job.input), job.topN),
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
