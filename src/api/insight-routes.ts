/**
 * Profiles as answers (issue 14, VIEWER-CONTRACT.md): an incident's profile as a flame-graph tree or a top
 * table, two profiles compared, and the previous incident to compare with. The work runs in the profile
 * worker thread, which answers JSON text; answers are cached (LRU bounded by bytes) and sent gzipped when
 * the client accepts it, so the event loop neither decodes, builds nor stringifies a tree.
 */
import { z } from 'zod';
import { InsightCache } from '../insight/insight-cache.js';
import { previousIncident } from '../insight/previous.js';
import { ProfileDecodeError } from '../insight/pprof-summary.js';
import { ProfileWorkerError, type ProfileWorker } from '../insight/profile-worker.js';
import { SampleTypeError } from '../insight/stacks.js';
import { DEFAULT_MIN_SHARE } from '../insight/flamegraph.js';
import { DEFAULT_TOP_LIMIT } from '../insight/top.js';
import type { IncidentStore } from '../store/incident-store.js';
import type { IncidentManifest } from '../store/manifest.js';
import { parseIncidentId } from '../store/naming.js';
import { describeValue, HttpError, type Reply, type Route } from './http-server.js';

export interface InsightDeps {
  store: Pick<IncidentStore, 'read' | 'resolveFile' | 'page'>;
  profiles: Pick<ProfileWorker, 'flamegraph' | 'top' | 'compare'>;
  /** Bound of the answer cache (ui.cache_size). Default 64 MiB. */
  cacheSizeBytes?: number;
  /** `prepare` skips profile files larger than this (gzipped bytes). Default 16 MiB. */
  prepareMaxBytes?: number;
}

/** The top table the incident page asks for next to its flame graph (`limit=100` in ui/page/profile.ts). */
export const PAGE_TOP_LIMIT = 100;

const MAX_LIMIT = 1000;

const sampleType = z
  .string()
  .regex(/^[A-Za-z0-9_.:/-]{1,100}$/, { error: (iss) => `"sample_type" must be a sample type name like "cpu" or "inuse_space", got ${describeValue(iss.input)}` });
const minShare = z.string().transform((text, ctx) => {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < 0 || v > 1) {
    ctx.addIssue({ code: 'custom', message: `"min_share" must be a number from 0 to 1 (a share of the total, e.g. 0.001), got ${describeValue(text)}` });
    return z.NEVER;
  }
  return v;
});
const limit = z.string().transform((text, ctx) => {
  const v = Number(text);
  if (!/^\d+$/.test(text) || v < 1 || v > MAX_LIMIT) {
    ctx.addIssue({ code: 'custom', message: `"limit" must be a whole number from 1 to ${MAX_LIMIT}, got ${describeValue(text)}` });
    return z.NEVER;
  }
  return v;
});
const profileRef = (key: string) =>
  z
    .string({ error: `"${key}" is required: an incident id and a profile name, like ${key}=<incident id>/cpu` })
    .transform((text, ctx) => {
      const at = text.lastIndexOf('/');
      const incident = text.slice(0, at);
      const profile = text.slice(at + 1);
      if (at < 0 || !parseIncidentId(incident) || profile === '') {
        ctx.addIssue({ code: 'custom', message: `"${key}" must be an incident id and a profile name, like ${key}=<incident id>/cpu; got ${describeValue(text)}` });
        return z.NEVER;
      }
      return { incident, profile };
    });

const flamegraphQuery = z.object({ sample_type: sampleType.optional(), min_share: minShare.optional() });
const topQuery = z.object({ sample_type: sampleType.optional(), limit: limit.optional() });
const compareQuery = z.object({ base: profileRef('base'), target: profileRef('target'), sample_type: sampleType.optional(), min_share: minShare.optional() });
const previousQuery = z.object({
  profile: z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/, { error: (iss) => `"profile" must be a profile name like "cpu", got ${describeValue(iss.input)}` }).optional(),
});

/**
 * The query as an object checked by `schema`: unknown and repeated parameters are refused (a misspelt
 * `sampletype` must not silently give the default), then the first problem in the schema's key order.
 */
function parseQuery<T extends z.ZodObject>(schema: T, query: URLSearchParams): z.output<T> {
  const allowed = Object.keys(schema.shape);
  const raw: Record<string, string> = {};
  for (const [k, v] of query) {
    if (!allowed.includes(k)) throw new HttpError(400, `unknown query parameter ${describeValue(k)}; allowed: ${allowed.join(', ')}`);
    if (k in raw) throw new HttpError(400, `query parameter "${k}" is given more than once`);
    raw[k] = v;
  }
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const first = [...r.error.issues].sort((a, b) => allowed.indexOf(String(a.path[0])) - allowed.indexOf(String(b.path[0])))[0];
  throw new HttpError(400, first?.message ?? 'bad query');
}

const clip = (s: string): string => s.slice(0, 200);

async function manifestOf(d: InsightDeps, id: string): Promise<IncidentManifest> {
  const m = parseIncidentId(id) ? await d.store.read(id) : undefined;
  if (!m) throw new HttpError(404, `unknown incident "${clip(id)}"`);
  return m;
}

/** Absolute path of an incident's profile file; 404 naming the profiles it has. */
async function profilePath(d: InsightDeps, id: string, profile: string): Promise<string> {
  const m = await manifestOf(d, id);
  const r = m.profiles.find((p) => p.name === profile && p.file !== null);
  const path = r?.file ? await d.store.resolveFile(id, r.file) : undefined;
  if (!path) {
    const has = m.profiles.filter((p) => p.file !== null).map((p) => p.name);
    throw new HttpError(404, `incident "${clip(id)}" has no profile "${clip(profile)}"; it has: ${has.join(', ') || 'none'}`);
  }
  return path;
}

/** The worker's failures as HTTP answers: a wrong sample type is the caller's, the rest the daemon's. */
function asHttpError(err: unknown, what: string): unknown {
  if (err instanceof SampleTypeError) return new HttpError(400, err.message);
  if (err instanceof ProfileDecodeError) return new HttpError(422, `${what} cannot be read as a pprof profile: ${err.message}`);
  if (err instanceof ProfileWorkerError) {
    if (err.kind === 'failed' && err.code === 'ENOENT') return new HttpError(404, `${what} is gone (deleted by retention?)`);
    return new HttpError(503, `${what} cannot be read now: ${err.message}`, { 'retry-after': '5' });
  }
  return err;
}

const jsonText = (text: string): Reply => ({ status: 200, text, contentType: 'application/json; charset=utf-8', compressible: true });

const flamegraphKey = (incident: string, profile: string, sampleType: string | undefined, minShare: number): string[] => ['flamegraph', incident, profile, sampleType ?? '', String(minShare)];
const topKey = (incident: string, profile: string, sampleType: string | undefined, limit: number): string[] => ['top', incident, profile, sampleType ?? '', String(limit)];

/**
 * The routes and their answer cache. `prepare` builds a new incident's default answers (what its page asks
 * for first) in the worker thread right after it is written, so that the person who follows the link from
 * the alert or the log line sees cached answers instead of waiting for the thread to decode the profiles.
 */
export class InsightAnswers {
  readonly cache: InsightCache<string>;
  readonly #d: InsightDeps;

  constructor(d: InsightDeps) {
    this.#d = d;
    this.cache = new InsightCache<string>({ maxBytes: d.cacheSizeBytes });
  }

  /**
   * The flame graph and top table the incident page asks for first, for each profile of `m`, one after the
   * other (the thread serves jobs in order: a page opened meanwhile waits for one job, not for all). Never
   * throws: a profile that cannot be read now is answered (and reported) when the page asks for it.
   */
  async prepare(m: IncidentManifest): Promise<number> {
    const d = this.#d;
    const maxBytes = d.prepareMaxBytes ?? 16 * 1024 * 1024;
    let prepared = 0;
    for (const p of m.profiles) {
      if (p.file === null || p.bytes > maxBytes) continue;
      try {
        const path = await d.store.resolveFile(m.id, p.file);
        if (path === undefined) continue;
        const head = { incident: m.id, profile: p.name };
        await this.cache.getOrCompute(flamegraphKey(m.id, p.name, undefined, DEFAULT_MIN_SHARE).join('\0'), () => d.profiles.flamegraph({ path }, { head, sampleType: undefined, minShare: DEFAULT_MIN_SHARE }));
        await this.cache.getOrCompute(topKey(m.id, p.name, undefined, PAGE_TOP_LIMIT).join('\0'), () => d.profiles.top({ path }, { head, sampleType: undefined, limit: PAGE_TOP_LIMIT }));
        prepared++;
      } catch {
        // Answered, with the reason, when the page asks for it.
      }
    }
    return prepared;
  }

  routes(): Route[] {
    const d = this.#d;
    const cache = this.cache;
    const answer = async (key: string[], what: string, compute: () => Promise<string>): Promise<Reply> => {
      try {
        return jsonText(await cache.getOrCompute(key.join('\0'), compute));
      } catch (err) {
        throw asHttpError(err, what);
      }
    };
    return [
      {
        method: 'GET',
        path: /^\/api\/v1\/incidents\/([^/]+)\/profiles\/([^/]+)\/flamegraph$/,
        name: 'incident_flamegraph',
        access: 'read',
        handle: async ({ params, query }) => {
          const [incident, profile] = params as [string, string];
          const q = parseQuery(flamegraphQuery, query);
          const path = await profilePath(d, incident, profile);
          const share = q.min_share ?? DEFAULT_MIN_SHARE;
          return answer(flamegraphKey(incident, profile, q.sample_type, share), `profile "${profile}" of incident "${incident}"`, () =>
            d.profiles.flamegraph({ path }, { head: { incident, profile }, sampleType: q.sample_type, minShare: share }),
          );
        },
      },
      {
        method: 'GET',
        path: /^\/api\/v1\/incidents\/([^/]+)\/profiles\/([^/]+)\/top$/,
        name: 'incident_top',
        access: 'read',
        handle: async ({ params, query }) => {
          const [incident, profile] = params as [string, string];
          const q = parseQuery(topQuery, query);
          const path = await profilePath(d, incident, profile);
          const n = q.limit ?? DEFAULT_TOP_LIMIT;
          return answer(topKey(incident, profile, q.sample_type, n), `profile "${profile}" of incident "${incident}"`, () =>
            d.profiles.top({ path }, { head: { incident, profile }, sampleType: q.sample_type, limit: n }),
          );
        },
      },
      {
        method: 'GET',
        path: /^\/api\/v1\/compare$/,
        name: 'compare',
        access: 'read',
        handle: async ({ query }) => {
          const q = parseQuery(compareQuery, query);
          const basePath = await profilePath(d, q.base.incident, q.base.profile);
          const targetPath = await profilePath(d, q.target.incident, q.target.profile);
          const share = q.min_share ?? DEFAULT_MIN_SHARE;
          const key = ['compare', q.base.incident, q.base.profile, q.target.incident, q.target.profile, q.sample_type ?? '', String(share)];
          return answer(key, `profile "${q.base.profile}" of incident "${q.base.incident}" or "${q.target.profile}" of "${q.target.incident}"`, () =>
            d.profiles.compare({ path: basePath }, { path: targetPath }, { base: q.base, target: q.target, sampleType: q.sample_type, minShare: share }),
          );
        },
      },
      {
        method: 'GET',
        path: /^\/api\/v1\/incidents\/([^/]+)\/previous$/,
        name: 'incident_previous',
        access: 'read',
        handle: async ({ params, query }) => {
          const id = params[0] as string;
          const q = parseQuery(previousQuery, query);
          const m = await manifestOf(d, id);
          const previous = await previousIncident(d.store, { server: m.server.name, profile: q.profile, before: id });
          return { status: 200, json: { incident: previous } };
        },
      },
    ];
  }
}

/** The routes with a cache of their own (no `prepare`). */
export function insightRoutes(d: InsightDeps): Route[] {
  return new InsightAnswers(d).routes();
}
