/**
 * incident.json: what was captured, why, from where, and how it went. Types plus a light check for
 * reading manifests back from disk (files may be from an older version, or damaged).
 */

export type IncidentReason = 'trigger' | 'manual' | 'alert';

export interface TopFunction {
  function: string;
  flat: number;
  /** flat / total of the profile, 0..1 */
  share: number;
}

/** A function whose flat share grew since the previous incident of the same server and profile. */
export interface ProfileChange {
  function: string;
  /** flat share in the previous incident's profile, 0..1 */
  before_share: number;
  /** flat share in this one, 0..1 */
  after_share: number;
}

export interface ProfileSummary {
  sampleType: string;
  unit: string;
  total: number;
  top: TopFunction[];
}

export interface ProfileResult {
  /** cpu, allocs, heap, goroutine, ... */
  name: string;
  /** e.g. "cpu.pb.gz"; null when the capture failed */
  file: string | null;
  bytes: number;
  sha256: string | null;
  duration_ms: number;
  via: 'system_account' | 'prof_port' | null;
  /** clear reason when it failed */
  error: string | null;
  /** [] when failed or undecodable */
  top: TopFunction[];
  /** the sample type `top` is ranked by */
  sample_type: string | null;
  /**
   * Up to 5 functions whose flat share grew by at least 1 percentage point since the previous incident of
   * the same server with this profile, most first; [] when none grew; null for the first incident of its
   * server, or when the comparison could not be made. Absent in manifests written before it existed:
   * `parseManifest` fills in null.
   */
  changes?: ProfileChange[] | null;
}

/** One rule's firing as recorded in an incident. */
export interface TriggerRecord {
  name: string;
  /** The field the rule watches: a built-in (cpu, mem, ...) or a path into varz/STATSZ (slow_consumers). */
  metric: string;
  /** The value compared with `above`: the field, or its per-second increase over `rate_ms`. */
  value: number;
  above: number;
  for_ms: number;
  /** The rate window (absent in older manifests, null when the rule compares the field itself). */
  rate_ms?: number | null;
  /** The field's own value at the firing (the counter of a rate rule). */
  raw?: number | null;
  /** 0 for a firing, 1.. for an escalation within the cooldown (absent in older manifests). */
  escalation_step?: number;
}

export interface IncidentManifest {
  version: 1;
  id: string;
  server: {
    name: string;
    id: string | null;
    cluster: string | null;
    version: string | null;
    tags: string[];
    url: string | null;
  };
  reason: IncidentReason;
  /** The first (primary) rule that fired; kept for readers of version 1 manifests. */
  trigger: TriggerRecord | null;
  /**
   * Every rule that fired on the observation that led to this incident (the first is `trigger`); its profiles
   * are the union of theirs. [] for manual and alert captures. Absent in manifests written before it existed:
   * `parseManifest` fills it in from `trigger`.
   */
  triggers: TriggerRecord[];
  alert: {
    name: string;
    fingerprint: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
  } | null;
  note: string | null;
  /** e.g. "system_account", "prof_port", "mixed" */
  via: string | null;
  /** ISO 8601 */
  started_at: string;
  /** ISO 8601 */
  finished_at: string;
  status: 'ok' | 'partial' | 'failed';
  profiles: ProfileResult[];
  /** every file in the incident directory besides incident.json (varz.json, *.pb.gz) */
  files: string[];
}

const REASONS: ReadonlySet<unknown> = new Set(['trigger', 'manual', 'alert']);
const STATUSES: ReadonlySet<unknown> = new Set(['ok', 'partial', 'failed']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringOrNull(v: unknown): boolean {
  return v === null || typeof v === 'string';
}

function isProfileResult(v: unknown): boolean {
  return (
    isRecord(v) &&
    typeof v.name === 'string' &&
    isStringOrNull(v.file) &&
    typeof v.bytes === 'number' &&
    isStringOrNull(v.error) &&
    Array.isArray(v.top)
  );
}

/**
 * The manifest, or undefined when `json` does not have its shape. Checks the fields that readers
 * rely on (ids, server name, reason, status, times, profiles, files); it does not check every leaf.
 */
export function parseManifest(json: unknown): IncidentManifest | undefined {
  if (!isRecord(json)) return undefined;
  if (json.version !== 1 || typeof json.id !== 'string') return undefined;
  const server = json.server;
  if (!isRecord(server) || typeof server.name !== 'string') return undefined;
  if (!REASONS.has(json.reason) || !STATUSES.has(json.status)) return undefined;
  if (typeof json.started_at !== 'string' || typeof json.finished_at !== 'string') return undefined;
  if (json.trigger !== null && !isRecord(json.trigger)) return undefined;
  if (json.triggers !== undefined && (!Array.isArray(json.triggers) || !json.triggers.every(isRecord))) return undefined;
  if (json.alert !== null && !isRecord(json.alert)) return undefined;
  if (!Array.isArray(json.profiles) || !json.profiles.every(isProfileResult)) return undefined;
  if (!Array.isArray(json.files) || !json.files.every((f) => typeof f === 'string')) return undefined;
  const m = json as unknown as IncidentManifest;
  // Older manifests have `trigger` only.
  if (json.triggers === undefined) m.triggers = m.trigger === null ? [] : [m.trigger];
  for (const p of m.profiles) if (!Array.isArray(p.changes)) p.changes = null;
  return m;
}
