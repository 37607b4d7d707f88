/**
 * The HTTP API's handlers: health, metrics, and /api/v1 (servers, triggers, incidents, captures,
 * Alertmanager webhook). They read the inventory, the rule engine and the store, and ask the capturer;
 * they never touch a server themselves.
 */
import type { Capturer, SubmitResult } from '../capture/capturer.js';
import { choosePath, type SystemAccountState } from '../capture/paths.js';
import { targetOf, type CaptureRequest } from '../capture/request.js';
import type { Clock } from '../clock.js';
import { parseDuration } from '../config/duration.js';
import { PROFILE_NAMES, type Config, type ProfileName, type Selector } from '../config/types.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import type { IncidentStore } from '../store/incident-store.js';
import { parseIncidentId } from '../store/naming.js';
import type { TriggerEngine } from '../trigger/engine.js';
import { inCooldown, nextFireAt } from '../trigger/rules.js';
import { selects } from '../watch/fleet.js';
import type { Inventory, WatchedServer } from '../watch/inventory.js';
import { BadRequest, findServer, parseWebhook } from './alertmanager.js';
import { describeValue, HttpError, type Reply, type Route } from './http-server.js';

export interface ApiDeps {
  inventory: Inventory;
  engine: TriggerEngine;
  store: IncidentStore;
  capturer: Capturer;
  metrics: Metrics;
  clock: Clock;
  log: Logger;
  config: () => Config;
  readiness: () => { ready: boolean; reason?: string };
  systemAccount: () => SystemAccountState;
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

function checkKeys(o: Record<string, unknown>, allowed: readonly string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new HttpError(400, `${where}unknown field ${describeValue(k)}; allowed: ${allowed.join(', ')}`);
  }
}

function stringList(v: unknown, where: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new HttpError(400, `${where} must be a list of strings`);
  return v as string[];
}

function parseProfiles(v: unknown): ProfileName[] {
  if (v === undefined) return ['cpu', 'allocs'];
  if (!Array.isArray(v) || v.length === 0) throw new HttpError(400, `"profiles" must be a non-empty list of: ${PROFILE_NAMES.join(', ')}`);
  const out: ProfileName[] = [];
  for (const p of v) {
    if (typeof p !== 'string' || !(PROFILE_NAMES as readonly string[]).includes(p)) {
      throw new HttpError(400, `unknown profile ${describeValue(p)}; use any of: ${PROFILE_NAMES.join(', ')}`);
    }
    if (out.includes(p as ProfileName)) throw new HttpError(400, `profile "${p}" is listed twice`);
    out.push(p as ProfileName);
  }
  return out;
}

/** Maps capturer refusals to HTTP codes: 409 busy, 429 limit, 422 unsupported. */
function refusalStatus(reason: string): number {
  return reason === 'limit' ? 429 : reason === 'busy' ? 409 : 422;
}

export function apiRoutes(d: ApiDeps): Route[] {
  const capture = async (body: unknown): Promise<Reply> => {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'the body must be a JSON object like {"server": "nats-a", "profiles": ["cpu", "allocs"]}');
    const o = body as Record<string, unknown>;
    checkKeys(o, ['server', 'select', 'profiles', 'cpu_duration', 'note'], '');
    if ((o['server'] === undefined) === (o['select'] === undefined)) throw new HttpError(400, 'give exactly one of "server" (a server name) or "select" ({names, clusters, tags})');
    const profiles = parseProfiles(o['profiles']);
    const config = d.config();
    let cpuDurationMs = config.capture.cpuDurationMs;
    if (o['cpu_duration'] !== undefined) {
      if (typeof o['cpu_duration'] !== 'string') throw new HttpError(400, '"cpu_duration" must be a duration string like "5s"');
      try {
        cpuDurationMs = parseDuration(o['cpu_duration']);
      } catch (err) {
        throw new HttpError(400, `"cpu_duration": ${(err as Error).message}`);
      }
      if (cpuDurationMs < 1_000 || cpuDurationMs > 300_000) throw new HttpError(400, `"cpu_duration" must be between 1s and 5m, got ${o['cpu_duration']}`);
    }
    const note = o['note'];
    if (note !== undefined && (typeof note !== 'string' || note.length > 1_000)) throw new HttpError(400, '"note" must be a string of at most 1000 characters');

    let targets: WatchedServer[];
    if (o['server'] !== undefined) {
      if (typeof o['server'] !== 'string' || o['server'] === '') throw new HttpError(400, '"server" must be a server name');
      const s = d.inventory.byLabel(o['server']);
      if (!s) {
        const known = d.inventory.all().map((x) => x.label).sort();
        throw new HttpError(404, `unknown server "${o['server'].slice(0, 100)}"; watched: ${known.join(', ') || 'none'}`);
      }
      targets = [s];
    } else {
      const sel = o['select'];
      if (typeof sel !== 'object' || sel === null || Array.isArray(sel)) throw new HttpError(400, '"select" must be an object like {"names": ["nats-*"], "clusters": ["east"], "tags": ["az:eu-1"]}');
      const so = sel as Record<string, unknown>;
      checkKeys(so, ['names', 'clusters', 'tags'], 'select: ');
      const selector: Selector = { names: stringList(so['names'], 'select.names'), clusters: stringList(so['clusters'], 'select.clusters'), tags: stringList(so['tags'], 'select.tags') };
      targets = d.inventory.all().filter((s) => s.last && selects(selector, { name: s.label, cluster: s.last.varz.cluster, tags: s.last.varz.tags }));
      if (targets.length === 0) throw new HttpError(404, 'no watched server matches "select"');
    }
    const sys = d.systemAccount();
    if (profiles.includes('cpu') && cpuDurationMs > 15_000) {
      for (const s of targets) {
        const c = choosePath('cpu', targetOf(s), config.capture.via, sys);
        if (c.ok && c.via === 'system_account') throw new HttpError(400, `"cpu_duration" over 15s cannot be captured from ${s.label} through the system account (PROFILEZ refuses it)`);
      }
    }
    const results = targets.map((s) => {
      const req: CaptureRequest = { target: targetOf(s), reason: 'manual', profiles, cpuDurationMs, ...(typeof note === 'string' ? { note } : {}) };
      return { server: s.label, r: d.capturer.submit(req) };
    });
    for (const { server, r } of results) {
      if (r.accepted) d.log.info({ server, incident: r.id, profiles, via: 'api' }, 'manual capture started');
    }
    const accepted = results.filter((x): x is { server: string; r: Extract<SubmitResult, { accepted: true }> } => x.r.accepted);
    const refused = results.filter((x): x is { server: string; r: Extract<SubmitResult, { accepted: false }> } => !x.r.accepted);
    if (o['server'] !== undefined) {
      const only = results[0] as (typeof results)[number];
      if (only.r.accepted) return json(202, { id: only.r.id, server: only.server, profiles, status: 'capturing', url: `/api/v1/incidents/${encodeURIComponent(only.r.id)}` });
      return json(refusalStatus(only.r.reason), { error: only.r.message, reason: only.r.reason });
    }
    const body2 = {
      incidents: accepted.map((x) => ({ server: x.server, id: x.r.id })),
      skipped: refused.map((x) => ({ server: x.server, reason: x.r.reason, message: x.r.message })),
    };
    if (accepted.length > 0) return json(202, body2);
    const reasons = new Set(refused.map((x) => x.r.reason));
    return json(reasons.size === 1 ? refusalStatus([...reasons][0] as string) : 409, { error: 'no capture was started', ...body2 });
  };

  const alertSeen = new Map<string, number>();
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
    const servers = d.inventory.all().map((s) => ({ s, label: s.label, url: s.config?.url, host: undefined }));
    const results = payload.alerts.map((a) => {
      const count = (result: string): void => d.metrics.alertsReceived.inc({ result });
      if (a.status === 'resolved') {
        count('resolved');
        return { fingerprint: a.fingerprint, alert: a.name, result: 'resolved' };
      }
      const hit = findServer(a.labels, config.alerts.labels, servers);
      if (!hit) {
        count('unknown_server');
        d.log.info({ alert: a.name, fingerprint: a.fingerprint, labels: a.labels }, 'alert names no watched server; ignored');
        return { fingerprint: a.fingerprint, alert: a.name, result: 'unknown_server' };
      }
      if (alertSeen.has(a.fingerprint)) {
        count('deduplicated');
        return { fingerprint: a.fingerprint, alert: a.name, server: hit.label, result: 'deduplicated' };
      }
      const r = d.capturer.submit({
        target: targetOf(hit.s),
        reason: 'alert',
        alert: { name: a.name, fingerprint: a.fingerprint, labels: a.labels, annotations: a.annotations },
        profiles: config.alerts.profiles,
        cpuDurationMs: config.capture.cpuDurationMs,
      });
      if (!r.accepted) {
        count('skipped');
        return { fingerprint: a.fingerprint, alert: a.name, server: hit.label, result: 'skipped', reason: r.reason, message: r.message };
      }
      alertSeen.set(a.fingerprint, now);
      count('captured');
      d.log.info({ alert: a.name, fingerprint: a.fingerprint, server: hit.label, incident: r.id }, 'alert capture started');
      return { fingerprint: a.fingerprint, alert: a.name, server: hit.label, result: 'captured', id: r.id };
    });
    return json(200, { results });
  };

  return [
    {
      method: 'GET',
      path: /^\/metrics$/,
      name: 'metrics',
      access: 'metrics',
      handle: async () => ({ status: 200, text: await d.metrics.exposition(), contentType: d.metrics.registry.contentType, compressible: true }),
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
            last_skip: v.lastSkip ? { at: iso(v.lastSkip.at), reason: v.lastSkip.reason, message: v.lastSkip.message } : null,
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
        const server = query.get('server') ?? undefined;
        const all = await d.store.list(server !== undefined ? { server } : {});
        // Newest first; ties broken by id so that paging is stable.
        const order = (e: { startedAtMs: number; id: string }): string => `${String(e.startedAtMs).padStart(15, '0')}|${e.id}`;
        all.sort((a, b) => order(b).localeCompare(order(a)));
        let start = 0;
        if (beforeKey !== undefined) {
          const i = all.findIndex((e) => e.id === beforeKey);
          if (i < 0) throw new HttpError(404, `unknown incident "${beforeKey}"`);
          start = i + 1;
        }
        const page = all.slice(start, start + limit);
        const next = start + limit < all.length ? (page[page.length - 1]?.id ?? null) : null;
        return json(200, {
          incidents: page.map((e) => ({
            id: e.id,
            server: e.server,
            reason: e.manifest?.reason ?? null,
            trigger: e.manifest?.trigger?.name ?? null,
            alert: e.manifest?.alert?.name ?? null,
            status: e.manifest?.status ?? null,
            started_at: iso(e.startedAtMs),
            finished_at: e.manifest?.finished_at ?? null,
            bytes: e.bytes,
            files: e.manifest?.files ?? [],
          })),
          next,
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
