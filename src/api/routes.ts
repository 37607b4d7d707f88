/**
 * The HTTP API's handlers: health, metrics, and /api/v1 (servers, triggers, incidents, captures,
 * Alertmanager webhook). They read the inventory, the rule engine and the store, and ask the capturer;
 * they never touch a server themselves.
 */
import type { Capturer, GateAnswer, SubmitResult } from '../capture/capturer.js';
import { choosePath, type SystemAccountState } from '../capture/paths.js';
import { targetOf, type CaptureRequest } from '../capture/request.js';
import type { Clock } from '../clock.js';
import { PROFILE_NAMES, type Config, type ProfileName, type Selector } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import type { IncidentFilter, IncidentStore } from '../store/incident-store.js';
import type { IncidentManifest, IncidentReason } from '../store/manifest.js';
import { parseIncidentId } from '../store/naming.js';
import { incidentPageUrl } from '../store/page-url.js';
import type { LastFiring, TriggerEngine } from '../trigger/engine.js';
import { inCooldown, nextFireAt } from '../trigger/rules.js';
import { selects } from '../watch/fleet.js';
import type { Inventory, WatchedServer } from '../watch/inventory.js';
import { BadRequest, findServer, parseWebhook, UnknownServerLog, type Alert } from './alertmanager.js';
import { parseCaptureBody, type CaptureBody } from './bodies.js';
import { HttpError, type Reply, type Route } from './http-server.js';

export interface ApiDeps {
  inventory: Inventory;
  engine: TriggerEngine;
  /** The local store, or with storage.object_store every replica's incidents (src/store/incident-sync.ts). */
  store: Pick<IncidentStore, 'page' | 'read' | 'openFile'>;
  capturer: Capturer;
  metrics: Metrics;
  clock: Clock;
  log: Logger;
  config: () => Config;
  readiness: () => { ready: boolean; reason?: string };
  systemAccount: () => SystemAccountState;
  /** Replicas: the servers another replica owns; alerts and manual captures about them are taken here too. */
  elsewhere?: Inventory;
  /** Replicas: the fleet-wide gate's answer for an admitted request (the lease, the memory, the limit). */
  gateDecision?: (req: CaptureRequest) => Promise<GateAnswer & { answeredBy?: { triggers: readonly string[]; instance: string; at: number } }> | undefined;
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());
const json = (status: number, body: unknown): Reply => ({ status, json: body });

function serverView(s: WatchedServer, via: Config['capture']['via'], sys: SystemAccountState): Record<string, unknown> {
  const v = s.last?.varz;
  const t = targetOf(s);
  const path = (p: ProfileName): string | null => {
    const c = choosePath(p, t, via, sys);
    return c.ok ? c.via : null;
  };
  return {
    server: s.label,
    source: s.source,
    url: s.config?.url ?? null,
    prof_url: s.profUrl ?? null,
    up: s.up,
    server_id: v?.serverId ?? null,
    version: v?.version ?? null,
    cluster: v?.cluster ?? null,
    tags: v?.tags ?? [],
    sample: v
      ? { cpu: v.cpu, mem: v.mem, cores: v.cores, gomaxprocs: v.gomaxprocs ?? null, gomemlimit: v.gomemlimit ?? null, at: iso(s.lastOkAt) }
      : null,
    last_poll_at: iso(s.lastPollAt),
    last_error: s.lastError ?? null,
    capture_paths: { cpu: path('cpu'), allocs: path('allocs'), heap: path('heap'), goroutine: path('goroutine') },
  };
}

function lastFiringView(f: LastFiring | undefined): Record<string, unknown> | null {
  if (!f) return null;
  if (f.outcome === 'captured') return { at: iso(f.at), outcome: 'captured', incident: f.incident, reason: null, message: null };
  return { at: iso(f.at), outcome: 'refused', incident: null, reason: f.reason, message: f.message };
}

const REASONS: readonly IncidentReason[] = ['trigger', 'manual', 'alert'];
const STATUSES: readonly IncidentManifest['status'][] = ['ok', 'partial', 'failed'];
/** A trigger's name as the config allows it (src/config/schema.ts). */
const RULE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/**
 * The list filters of GET /api/v1/incidents (an empty value does not filter); 400 naming the parameter and
 * what it allows. A rule name need not be configured now: old incidents keep the names of removed rules.
 */
function incidentFilter(query: URLSearchParams): IncidentFilter {
  const get = (name: string): string | undefined => {
    const v = query.get(name);
    return v === null || v === '' ? undefined : v;
  };
  const oneOf = <T extends string>(name: string, allowed: readonly T[]): T | undefined => {
    const v = get(name);
    if (v === undefined || (allowed as readonly string[]).includes(v)) return v as T | undefined;
    throw new HttpError(400, `"${name}" must be one of ${allowed.join(', ')}; got ${JSON.stringify(v.slice(0, 100))}`);
  };
  const trigger = get('trigger');
  if (trigger !== undefined && !RULE_NAME.test(trigger)) {
    throw new HttpError(400, `"trigger" must be a rule name (lower-case letters, digits and "-", at most 63); got ${JSON.stringify(trigger.slice(0, 100))}`);
  }
  return {
    server: query.get('server') ?? undefined,
    reason: oneOf('reason', REASONS),
    trigger,
    status: oneOf('status', STATUSES),
    profile: oneOf('profile', PROFILE_NAMES),
  };
}

/** `{ page_url }` of an incident when http.external_url is set, else nothing (answers look as they always have). */
function pageUrlOf(config: Config, id: string): { page_url?: string } {
  const url = incidentPageUrl(config.http.externalUrl, id);
  return url === undefined ? {} : { page_url: url };
}

/** Maps capturer refusals to HTTP codes: 409 busy, 429 limit, 422 unsupported. */
function refusalStatus(reason: string): number {
  return reason === 'limit' ? 429 : reason === 'busy' || reason === 'held_elsewhere' || reason === 'cooldown' ? 409 : 422;
}

/**
 * Replicas: waits for the fleet-wide gate's answer to an admitted request, so that a capture another replica
 * is taking (or took) is answered as refused, not with an id that will never be an incident.
 */
async function gated(d: ApiDeps, req: CaptureRequest, r: SubmitResult): Promise<SubmitResult> {
  if (!r.accepted) return r;
  const g = await d.gateDecision?.(req);
  if (g === undefined || g.ok) return r;
  return { accepted: false, reason: g.reason, message: g.message };
}

export function apiRoutes(d: ApiDeps): Route[] {
  const capture = async (body: unknown): Promise<Reply> => {
    let o: CaptureBody;
    try {
      o = parseCaptureBody(body);
    } catch (err) {
      if (err instanceof BadRequest) throw new HttpError(400, err.message);
      throw err;
    }
    const { profiles, note } = o;
    const config = d.config();
    const cpuDurationMs = o.cpuDurationMs ?? config.capture.cpuDurationMs;

    let targets: WatchedServer[];
    if (o.server !== undefined) {
      const s = d.inventory.byLabel(o.server) ?? d.elsewhere?.byLabel(o.server);
      if (!s) {
        const known = [...d.inventory.all(), ...(d.elsewhere?.all() ?? [])].map((x) => x.label).sort();
        throw new HttpError(404, `unknown server "${o.server.slice(0, 100)}"; watched: ${known.join(', ') || 'none'}`);
      }
      targets = [s];
    } else {
      const selector: Selector = o.select ?? { names: [], clusters: [], tags: [] };
      // Another replica's servers that this one does not poll (configured ones) have no reading: matched by name only.
      targets = [
        ...d.inventory.all().filter((s) => s.last && selects(selector, { name: s.label, cluster: s.last.varz.cluster, tags: s.last.varz.tags })),
        ...(d.elsewhere?.all() ?? []).filter((s) => selects(selector, { name: s.label, cluster: s.last?.varz.cluster, tags: s.last?.varz.tags ?? [] })),
      ];
      if (targets.length === 0) throw new HttpError(404, 'no watched server matches "select"');
    }
    const sys = d.systemAccount();
    if (profiles.includes('cpu') && cpuDurationMs > 15_000) {
      for (const s of targets) {
        const c = choosePath('cpu', targetOf(s), config.capture.via, sys);
        if (c.ok && c.via === 'system_account') throw new HttpError(400, `"cpu_duration" over 15s cannot be captured from ${s.label} through the system account (PROFILEZ refuses it)`);
      }
    }
    const results = await Promise.all(
      targets.map(async (s) => {
        const req: CaptureRequest = { target: targetOf(s), reason: 'manual', profiles, cpuDurationMs, ...(typeof note === 'string' ? { note } : {}) };
        return { server: s.label, r: await gated(d, req, d.capturer.submit(req)) };
      }),
    );
    for (const { server, r } of results) {
      if (r.accepted) d.log.info({ server, incident: r.id, profiles, via: 'api', ...pageUrlOf(config, r.id) }, 'manual capture started');
    }
    const accepted = results.filter((x): x is { server: string; r: Extract<SubmitResult, { accepted: true }> } => x.r.accepted);
    const refused = results.filter((x): x is { server: string; r: Extract<SubmitResult, { accepted: false }> } => !x.r.accepted);
    if (o.server !== undefined) {
      const only = results[0] as (typeof results)[number];
      if (only.r.accepted) {
        return json(202, { id: only.r.id, server: only.server, profiles, status: 'capturing', url: `/api/v1/incidents/${encodeURIComponent(only.r.id)}`, ...pageUrlOf(config, only.r.id) });
      }
      return json(refusalStatus(only.r.reason), { error: only.r.message, reason: only.r.reason });
    }
    const body2 = {
      incidents: accepted.map((x) => ({ server: x.server, id: x.r.id, ...pageUrlOf(config, x.r.id) })),
      skipped: refused.map((x) => ({ server: x.server, reason: x.r.reason, message: x.r.message })),
    };
    if (accepted.length > 0) return json(202, body2);
    const reasons = new Set(refused.map((x) => x.r.reason));
    return json(reasons.size === 1 ? refusalStatus([...reasons][0] as string) : 409, { error: 'no capture was started', ...body2 });
  };

  const alertSeen = new Map<string, number>();
  const unknownLog = new UnknownServerLog();
  const alertmanager = async (body: unknown): Promise<Reply> => {
    let payload;
    try {
      payload = parseWebhook(body);
    } catch (err) {
      if (err instanceof BadRequest) throw new HttpError(400, err.message);
      throw err;
    }
    const config = d.config();
    const now = d.clock.now();
    for (const [fp, at] of alertSeen) if (now - at >= config.alerts.cooldownMs) alertSeen.delete(fp);
    const servers = [...d.inventory.all(), ...(d.elsewhere?.all() ?? [])].map((s) => ({ s, label: s.label, url: s.config?.url, host: undefined }));
    const unknown: Alert[] = [];
    const results = await Promise.all(payload.alerts.map(async (a) => {
      const count = (result: string): void => d.metrics.alertsReceived.inc({ result });
      if (a.status === 'resolved') {
        count('resolved');
        return { fingerprint: a.fingerprint, alert: a.name, result: 'resolved' };
      }
      const hit = findServer(a.labels, config.alerts.labels, servers);
      if (!hit) {
        count('unknown_server');
        unknown.push(a);
        return { fingerprint: a.fingerprint, alert: a.name, result: 'unknown_server' };
      }
      if (alertSeen.has(a.fingerprint)) {
        count('deduplicated');
        return { fingerprint: a.fingerprint, alert: a.name, server: hit.label, result: 'deduplicated' };
      }
      // The daemon's own rules usually see the trouble first (no scrape, no `for: 1m`, no Alertmanager group
      // wait). An alert about a server that a rule captured within alerts.cooldown, with every profile the
      // alert asks for, is answered with that incident: the onset is already on disk, and a second capture
      // minutes later would spend capture.limit and the CPU profiler on a near-copy (or be refused as busy).
      const recent = d.capturer.recentIncident(hit.s.key);
      if (
        recent !== undefined &&
        recent.reason === 'trigger' &&
        now - recent.at < config.alerts.cooldownMs &&
        config.alerts.profiles.every((p) => recent.profiles.includes(p))
      ) {
        alertSeen.set(a.fingerprint, now);
        count('already_captured');
        d.log.info(
          { alert: a.name, fingerprint: a.fingerprint, server: hit.label, incident: recent.id, triggers: recent.triggers },
          'alert answered with the incident a rule captured',
        );
        return { fingerprint: a.fingerprint, alert: a.name, server: hit.label, result: 'already_captured', id: recent.id, triggers: recent.triggers, ...pageUrlOf(config, recent.id) };
      }
      const req: CaptureRequest = {
        target: targetOf(hit.s),
        reason: 'alert',
        alert: { name: a.name, fingerprint: a.fingerprint, labels: a.labels, annotations: a.annotations },
        profiles: config.alerts.profiles,
        cpuDurationMs: config.capture.cpuDurationMs,
      };
      const submitted = d.capturer.submit(req);
      // Remembered at once: a second copy of the alert in this payload, or the next one, is deduplicated here.
      if (submitted.accepted) alertSeen.set(a.fingerprint, now);
      const g = submitted.accepted ? await d.gateDecision?.(req) : undefined;
      if (g !== undefined && !g.ok && g.answeredBy !== undefined) {
        // A rule captured the server on another replica within alerts.cooldown: that capture answers the alert.
        count('already_captured');
        return { fingerprint: a.fingerprint, alert: a.name, server: hit.label, result: 'already_captured', triggers: g.answeredBy.triggers, replica: g.answeredBy.instance, captured_at: new Date(g.answeredBy.at).toISOString() };
      }
      const r = await gated(d, req, submitted);
      if (!r.accepted) {
        if (submitted.accepted) alertSeen.delete(a.fingerprint);
        count('skipped');
        return { fingerprint: a.fingerprint, alert: a.name, server: hit.label, result: 'skipped', reason: r.reason, message: r.message };
      }
      alertSeen.set(a.fingerprint, now);
      count('captured');
      d.log.info({ alert: a.name, fingerprint: a.fingerprint, server: hit.label, incident: r.id, ...pageUrlOf(config, r.id) }, 'alert capture started');
      return { fingerprint: a.fingerprint, alert: a.name, server: hit.label, result: 'captured', id: r.id, ...pageUrlOf(config, r.id) };
    }));
    // One line per payload, not one per alert (a payload can name 10,000 unknown servers).
    const note = unknownLog.note(unknown, config.alerts.labels);
    if (note) d.log[note.level](note.fields, note.msg);
    return json(200, { results });
  };

  return [
    {
      method: 'GET',
      path: /^\/metrics$/,
      name: 'metrics',
      access: 'metrics',
      handle: async () => ({ status: 200, chunks: d.metrics.expositionChunks(), contentType: d.metrics.registry.contentType }),
    },
    { method: 'GET', path: /^\/healthz$/, name: 'healthz', access: 'metrics', handle: async () => json(200, { status: 'ok' }) },
    {
      method: 'GET',
      path: /^\/readyz$/,
      name: 'readyz',
      access: 'metrics',
      handle: async () => {
        const r = d.readiness();
        return json(r.ready ? 200 : 503, r.ready ? { status: 'ready' } : { status: 'not ready', reason: r.reason });
      },
    },
    {
      method: 'GET',
      path: /^\/api\/v1\/servers$/,
      name: 'servers',
      access: 'read',
      handle: async () => {
        const c = d.config();
        const sys = d.systemAccount();
        const servers = d.inventory.all().sort((a, b) => a.label.localeCompare(b.label)).map((s) => serverView(s, c.capture.via, sys));
        return json(200, { servers });
      },
    },
    {
      method: 'GET',
      path: /^\/api\/v1\/triggers$/,
      name: 'triggers',
      access: 'read',
      handle: async () => {
        const now = d.clock.now();
        const triggers = d.engine.view().map((v) => {
          const t = v.trigger;
          const fireAt = nextFireAt(t, v.state);
          const cooling = inCooldown(t, v.state, now);
          return {
            server: v.label,
            trigger: t.name,
            metric: t.metric,
            state: v.state.phase,
            since: iso(v.state.since),
            value: v.state.value ?? null,
            // The field's own value (the counter, for a rate rule) and the rate window.
            raw: v.state.raw ?? null,
            rate_ms: t.rateMs ?? null,
            above: t.above,
            rearm_below: t.rearmBelow,
            for_ms: t.forMs,
            cooldown_ms: t.cooldownMs,
            armed: v.state.armed,
            pending_since: iso(v.state.pendingSince),
            fires_at: iso(fireAt),
            fires_in_ms: fireAt === undefined ? null : Math.max(0, fireAt - now),
            cooldown_until: cooling && v.state.lastFiredAt !== undefined ? iso(v.state.lastFiredAt + t.cooldownMs) : null,
            last_fired_at: iso(v.state.lastFiredAt),
            escalate_percent: t.escalatePercent ?? null,
            escalate_max: t.escalateMax,
            // Escalations captured since the last firing, and the value at the last capture they must exceed.
            escalation_step: v.state.step,
            peak: v.state.peak ?? null,
            last_skip: v.lastSkip ? { at: iso(v.lastSkip.at), reason: v.lastSkip.reason, message: v.lastSkip.message } : null,
            // What became of the last firing: captured into an incident, or refused (the rule stayed armed).
            last_firing: lastFiringView(v.lastFiring),
          };
        });
        triggers.sort((a, b) => a.server.localeCompare(b.server) || a.trigger.localeCompare(b.trigger));
        return json(200, { triggers });
      },
    },
    {
      method: 'GET',
      path: /^\/api\/v1\/incidents$/,
      name: 'incidents',
      access: 'read',
      handle: async ({ query }) => {
        const limitText = query.get('limit');
        const limit = limitText === null ? 50 : Number(limitText);
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new HttpError(400, '"limit" must be a whole number from 1 to 1000');
        const before = query.get('before');
        let beforeKey: string | undefined;
        if (before !== null) {
          if (!parseIncidentId(before)) throw new HttpError(400, '"before" must be an incident id (the "next" value of the previous page)');
          beforeKey = before;
        }
        const filter = incidentFilter(query);
        // From the store's index (filters included): only this page's directories are looked at, no manifest is parsed.
        const page = await d.store.page({ ...filter, ...(beforeKey !== undefined ? { before: beforeKey } : {}), limit });
        if (!page) throw new HttpError(404, `unknown incident "${beforeKey}"`);
        const externalUrl = d.config().http.externalUrl;
        return json(200, {
          incidents: page.incidents.map((e) => ({
            id: e.id,
            server: e.server,
            reason: e.summary?.reason ?? null,
            trigger: e.summary?.trigger ?? null,
            triggers: e.summary?.triggers ?? [],
            alert: e.summary?.alert ?? null,
            status: e.summary?.status ?? null,
            started_at: iso(e.startedAtMs),
            finished_at: e.summary?.finishedAt ?? null,
            bytes: e.bytes,
            files: e.summary?.files ?? [],
            profiles: e.summary?.profiles ?? [],
            page_url: incidentPageUrl(externalUrl, e.id) ?? null,
          })),
          next: page.next,
        });
      },
    },
    {
      method: 'GET',
      path: /^\/api\/v1\/incidents\/([^/]+)$/,
      name: 'incident',
      access: 'read',
      handle: async ({ params }) => {
        const id = params[0] as string;
        const m = parseIncidentId(id) ? await d.store.read(id) : undefined;
        if (!m) throw new HttpError(404, `unknown incident "${id.slice(0, 200)}"`);
        return json(200, m);
      },
    },
    {
      method: 'GET',
      path: /^\/api\/v1\/incidents\/([^/]+)\/files\/([^/]+)$/,
      name: 'incident_file',
      access: 'read',
      handle: async ({ params }) => {
        const [id, file] = params as [string, string];
        const f = parseIncidentId(id) ? await d.store.openFile(id, file) : undefined;
        if (!f) throw new HttpError(404, `no file "${file.slice(0, 100)}" in incident "${id.slice(0, 200)}"`);
        const contentType = file.endsWith('.json') ? 'application/json' : file.endsWith('.txt') ? 'text/plain; charset=utf-8' : 'application/octet-stream';
        const download = `${id.replace('~', '_')}_${file}`.replace(/[^A-Za-z0-9._-]/g, '_');
        return { status: 200, stream: f.stream, size: f.size, contentType, headers: { 'content-disposition': `attachment; filename="${download}"` } };
      },
    },
    { method: 'POST', path: /^\/api\/v1\/captures$/, name: 'captures', access: 'write', handle: async ({ body }) => capture(await body()) },
    { method: 'POST', path: /^\/api\/v1\/alerts\/alertmanager$/, name: 'alertmanager', access: 'write', handle: async ({ body }) => alertmanager(await body()) },
  ];
}
