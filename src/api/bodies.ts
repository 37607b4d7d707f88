/**
 * The untrusted JSON bodies of the POST endpoints (a manual capture, an Alertmanager webhook), checked with
 * zod. Each answer names the first problem, in the order the fields are documented, with the 400 message
 * the API has always given; a check never renders a deep value (describeValue), so hostile bodies stay cheap.
 */
import { z } from 'zod';

import { parseDuration } from '../config/duration.js';
import { PROFILE_NAMES, type ProfileName, type Selector } from '../config/types.js';
import { describeValue } from './http-server.js';

/** The body is refused; `message` is the 400 answer. */
export class BadRequest extends Error {
  override readonly name = 'BadRequest';
}

type Path = readonly PropertyKey[];

/** Parses `body` with `schema`; on failure throws BadRequest with the issue that `rank` puts first. */
function parseOrThrow<T extends z.ZodType>(schema: T, body: unknown, rank: (path: Path) => number[]): z.output<T> {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const key = (i: z.core.$ZodIssue): number[] => [...rank(i.path), ...i.path.map((p) => (typeof p === 'number' ? p : 0))];
  const first = r.error.issues
    .map((issue, i) => ({ issue, k: [...key(issue), i] }))
    .sort((a, b) => {
      for (let j = 0; j < Math.max(a.k.length, b.k.length); j++) {
        const d = (a.k[j] ?? -1) - (b.k[j] ?? -1);
        if (d !== 0) return d;
      }
      return 0;
    })[0];
  throw new BadRequest(first?.issue.message ?? 'bad request');
}

/** `unknown field "x"; allowed: ...` for the first key not in `shape`. */
function strict<T extends z.ZodRawShape>(shape: T, notObject: string, prefix = '') {
  const allowed = Object.keys(shape).join(', ');
  return z.strictObject(shape, {
    error: (iss) => {
      if (iss.code === 'invalid_type') return notObject;
      if (iss.code === 'unrecognized_keys') return `${prefix}unknown field ${describeValue(iss.keys[0])}; allowed: ${allowed}`;
      return undefined;
    },
  });
}

// ---------------------------------------------------------------------------------------------------------
// POST /api/v1/captures

const PROFILES = PROFILE_NAMES.join(', ');
const stringList = (where: string) => z.array(z.string({ error: `${where} must be a list of strings` }), { error: `${where} must be a list of strings` }).prefault([]);

const captureBody = strict(
  {
    server: z.string({ error: '"server" must be a server name' }).min(1, '"server" must be a server name').optional(),
    select: strict(
      { names: stringList('select.names'), clusters: stringList('select.clusters'), tags: stringList('select.tags') },
      '"select" must be an object like {"names": ["nats-*"], "clusters": ["east"], "tags": ["az:eu-1"]}',
      'select: ',
    ).optional(),
    profiles: z
      .array(z.enum(PROFILE_NAMES, { error: (iss) => `unknown profile ${describeValue(iss.input)}; use any of: ${PROFILES}` }), {
        error: `"profiles" must be a non-empty list of: ${PROFILES}`,
      })
      .min(1, `"profiles" must be a non-empty list of: ${PROFILES}`)
      .superRefine((list, ctx) => {
        if (!Array.isArray(list)) return;
        list.forEach((p, i) => {
          if (list.indexOf(p) < i) ctx.addIssue({ code: 'custom', path: [i], message: `profile "${p}" is listed twice` });
        });
      }, { when: () => true })
      .prefault(['cpu', 'allocs']),
    cpu_duration: z
      .string({ error: '"cpu_duration" must be a duration string like "5s"' })
      .transform((text, ctx) => {
        let ms: number;
        try {
          ms = parseDuration(text);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: `"cpu_duration": ${(err as Error).message}` });
          return z.NEVER;
        }
        if (ms < 1_000 || ms > 300_000) ctx.addIssue({ code: 'custom', message: `"cpu_duration" must be between 1s and 5m, got ${text}` });
        return ms;
      })
      .optional(),
    note: z.string({ error: '"note" must be a string of at most 1000 characters' }).max(1_000, '"note" must be a string of at most 1000 characters').optional(),
  },
  'the body must be a JSON object like {"server": "nats-a", "profiles": ["cpu", "allocs"]}',
).superRefine(
  (o, ctx) => {
    if ((o.server === undefined) === (o.select === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'give exactly one of "server" (a server name) or "select" ({names, clusters, tags})', params: { first: true } });
    }
  },
  { when: (payload) => typeof payload.value === 'object' && payload.value !== null && !Array.isArray(payload.value) },
);

const CAPTURE_ORDER = ['profiles', 'cpu_duration', 'note', 'server', 'select'];

/** A manual capture request: one server by name, or a selection; `cpuDurationMs` when the body sets it. */
export interface CaptureBody {
  server: string | undefined;
  select: Selector | undefined;
  profiles: ProfileName[];
  cpuDurationMs: number | undefined;
  note: string | undefined;
}

export function parseCaptureBody(body: unknown): CaptureBody {
  const o = parseOrThrow(captureBody, body, (path) => {
    // The body's type, then an unknown field, then server-or-select, then the fields in order.
    if (path.length === 0) return [0];
    const at = CAPTURE_ORDER.indexOf(String(path[0]));
    return [at < 0 ? 1 : 2 + at];
  });
  return { server: o.server, select: o.select, profiles: o.profiles, cpuDurationMs: o.cpu_duration, note: o.note };
}

// ---------------------------------------------------------------------------------------------------------
// POST /api/v1/alerts/alertmanager

const clip = (k: string): string => (k.length > 100 ? `${k.slice(0, 100)}...` : k);

/** An object of strings (labels, annotations); nothing is an empty one. A `__proto__` label is dropped. */
function stringMap(where: string) {
  return z
    .unknown()
    .superRefine((v, ctx) => {
      if (v === undefined || v === null) return;
      if (typeof v !== 'object' || Array.isArray(v)) return ctx.addIssue({ code: 'custom', message: `${where} must be an object of strings` });
      const bad = Object.entries(v).find(([, val]) => typeof val !== 'string');
      if (bad !== undefined) ctx.addIssue({ code: 'custom', path: [bad[0]], message: `${where}.${clip(bad[0])} must be a string` });
    })
    .transform((v) => {
      const out: Record<string, string> = {};
      for (const [k, val] of Object.entries((v ?? {}) as Record<string, string>)) if (k !== '__proto__') out[k] = val;
      return out;
    })
    .prefault({});
}

export const MAX_ALERTS = 10_000;

const webhook = z.object(
  {
    version: z.unknown().superRefine((v, ctx) => {
      if (v !== undefined && v !== '4') ctx.addIssue({ code: 'custom', message: `unsupported webhook payload version ${describeValue(v)}; expected "4"` });
    }).optional(),
    alerts: z.array(z.unknown(), { error: '"alerts" must be a list' }).superRefine((list, ctx) => {
      if (list.length > MAX_ALERTS) ctx.addIssue({ code: 'custom', message: `too many alerts in one payload (${list.length}, at most ${MAX_ALERTS})` });
    }),
    commonLabels: stringMap('commonLabels'),
  },
  { error: 'the body must be a JSON object (an Alertmanager webhook payload)' },
);
const WEBHOOK_ORDER = ['version', 'alerts', 'commonLabels'];

function alert(i: number) {
  return z.object(
    {
      status: z.enum(['firing', 'resolved'], { error: `alerts[${i}].status must be "firing" or "resolved"` }),
      labels: stringMap(`alerts[${i}].labels`),
      annotations: stringMap(`alerts[${i}].annotations`),
      fingerprint: z.string({ error: `alerts[${i}].fingerprint must be a string` }).optional(),
    },
    { error: `alerts[${i}] must be an object` },
  );
}
const ALERT_ORDER = ['status', 'labels', 'annotations', 'fingerprint'];

export interface WebhookBody {
  version: string;
  commonLabels: Record<string, string>;
  alerts: { status: 'firing' | 'resolved'; labels: Record<string, string>; annotations: Record<string, string>; fingerprint?: string | undefined }[];
}

/** A version 4 webhook payload: the top level first, then each alert in order. */
export function parseWebhookBody(body: unknown): WebhookBody {
  const top = parseOrThrow(webhook, body, (path) => [path.length === 0 ? 0 : 1 + WEBHOOK_ORDER.indexOf(String(path[0]))]);
  const alerts = top.alerts.map((a, i) => parseOrThrow(alert(i), a, (path) => [path.length === 0 ? 0 : 1 + ALERT_ORDER.indexOf(String(path[0]))]));
  return { version: typeof top.version === 'string' ? top.version : '4', commonLabels: top.commonLabels, alerts };
}
