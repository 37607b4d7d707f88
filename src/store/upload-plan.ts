/**
 * The pure parts of sharing incidents through an object store (issue 17, guarantee 5): object names, the
 * upload order (the manifest last, so that its presence means the incident is whole), which local incidents
 * still wait for an upload, which incidents of a bucket listing are complete, the retry backoff, and the
 * bucket's retention decision (the manifest deleted first, so that a reader never lists half an incident).
 */
import { MANIFEST_FILE, parseIncidentDirName, parseIncidentId } from './naming.js';
import type { RetentionPlan, RetentionPolicy } from './retention.js';
import { planRetention } from './retention.js';

/** `<incident-id>/<file>`: the id (`<serverDir>~<dirName>`) and the file are safe segments, so the name parses back. */
export function objectName(id: string, file: string): string {
  return `${id}/${file}`;
}

/** The incident id and file of an object name, undefined for a foreign object. */
export function parseObjectName(name: string): { id: string; file: string } | undefined {
  const slash = name.indexOf('/');
  if (slash <= 0 || slash !== name.lastIndexOf('/')) return undefined;
  const id = name.slice(0, slash);
  const file = name.slice(slash + 1);
  return parseIncidentId(id) && file.length > 0 ? { id, file } : undefined;
}

/** The files of an incident in upload order: every listed file (sorted), then incident.json last. */
export function uploadOrder(files: readonly string[]): string[] {
  return [...new Set(files.filter((f) => f !== MANIFEST_FILE))].sort().concat(MANIFEST_FILE);
}

/** Local incidents not uploaded yet, oldest first (the order a restart uploads them in). */
export function pendingUploads(local: readonly { id: string; startedAtMs: number }[], uploaded: ReadonlySet<string>): string[] {
  return local
    .filter((e) => !uploaded.has(e.id))
    .sort((a, b) => a.startedAtMs - b.startedAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((e) => e.id);
}

/** Delay before upload attempt `attempt` + 1 (attempt counts from 1): 1 s doubling to `maxMs`. */
export function retryDelayMs(attempt: number, maxMs = 60_000): number {
  return Math.min(maxMs, 1_000 * 2 ** Math.max(0, Math.min(attempt - 1, 16)));
}

export interface BucketObject {
  readonly name: string;
  readonly size: number;
}

export interface BucketIncident {
  readonly id: string;
  readonly serverDir: string;
  readonly startedAtMs: number;
  /** Sum of its objects' sizes. */
  readonly bytes: number;
  /** Its objects' names, the manifest last. */
  readonly objects: string[];
}

/**
 * The complete incidents of a bucket listing: those whose manifest object exists (it is uploaded last).
 * Objects of an incident without a manifest (an upload in progress, or interrupted) are not listed.
 */
export function completeIncidents(objects: readonly BucketObject[]): BucketIncident[] {
  const byId = new Map<string, { objects: BucketObject[]; manifest: boolean }>();
  for (const o of objects) {
    const p = parseObjectName(o.name);
    if (!p) continue;
    let g = byId.get(p.id);
    if (!g) byId.set(p.id, (g = { objects: [], manifest: false }));
    g.objects.push(o);
    if (p.file === MANIFEST_FILE) g.manifest = true;
  }
  const out: BucketIncident[] = [];
  for (const [id, g] of byId) {
    const parsed = parseIncidentId(id);
    const dir = parsed ? parseIncidentDirName(parsed.dirName) : undefined;
    if (!g.manifest || !parsed || !dir) continue;
    const names = g.objects.map((o) => o.name);
    const manifest = objectName(id, MANIFEST_FILE);
    out.push({
      id,
      serverDir: parsed.serverDir,
      startedAtMs: dir.startedAtMs,
      bytes: g.objects.reduce((n, o) => n + o.size, 0),
      objects: names.filter((n) => n !== manifest).sort().concat(manifest),
    });
  }
  return out;
}

/**
 * Retention over the bucket, with the same policy as the local disk: which incidents go, and the objects to
 * delete in order, each incident's manifest FIRST (it stops being listed at once; its other objects follow).
 */
export function planBucketRetention(objects: readonly BucketObject[], policy: RetentionPolicy, nowMs: number): { plan: RetentionPlan; deleteObjects: string[] } {
  const incidents = completeIncidents(objects);
  const plan = planRetention(
    incidents.map((i) => ({ id: i.id, server: i.serverDir, startedAtMs: i.startedAtMs, bytes: i.bytes })),
    policy,
    nowMs,
  );
  const byId = new Map(incidents.map((i) => [i.id, i]));
  const deleteObjects: string[] = [];
  for (const d of plan.delete) {
    const i = byId.get(d.id);
    if (!i) continue;
    const manifest = i.objects[i.objects.length - 1] as string;
    deleteObjects.push(manifest, ...i.objects.slice(0, -1));
  }
  return { plan, deleteObjects };
}
