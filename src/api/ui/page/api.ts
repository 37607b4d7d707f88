/**
 * The daemon's API as the page reads it. Calls carry `Authorization: Bearer <token>` once the user has
 * typed a token; a 401 opens the token prompt and the call is retried with what is typed. The token lives
 * in sessionStorage (gone with the tab), never in a URL or a cookie.
 */

const TOKEN_KEY = 'nats-autoprof.token';

export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export type TokenPrompt = (message: string) => Promise<string>;

let prompt: TokenPrompt | undefined;
let pendingPrompt: Promise<string> | undefined;

export function setTokenPrompt(p: TokenPrompt): void {
  prompt = p;
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** One prompt at a time: every call that got a 401 while it is open waits for the same answer. */
function askToken(message: string): Promise<string> {
  if (!prompt) return Promise.reject(new ApiError(401, message));
  pendingPrompt ??= prompt(message).finally(() => (pendingPrompt = undefined));
  return pendingPrompt;
}

async function errorText(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { error?: unknown };
    if (typeof body.error === 'string') return body.error;
  } catch {
    // Not JSON: fall through to the status line.
  }
  return `${res.status} ${res.statusText}`;
}

/** GET with the token; resolves with the response once it is not a 401 (asking for a token as often as needed). */
export async function call(path: string, signal?: AbortSignal): Promise<Response> {
  for (;;) {
    const t = token();
    const res = await fetch(path, { headers: t === null ? {} : { authorization: `Bearer ${t}` }, ...(signal ? { signal } : {}), cache: 'no-store' });
    if (res.status !== 401) return res;
    const message = await errorText(res);
    if (t !== null && token() !== t) continue; // another call already got a new token
    const typed = await askToken(t === null ? 'This daemon needs its API token.' : `The token was refused (${message}).`);
    sessionStorage.setItem(TOKEN_KEY, typed);
  }
}

export async function getJson<T>(path: string, signal?: AbortSignal): Promise<T> {
  const res = await call(path, signal);
  if (!res.ok) throw new ApiError(res.status, await errorText(res));
  return (await res.json()) as T;
}

/** Downloads a file through an authenticated fetch (a plain link could not send the token). */
export async function download(path: string, filename: string): Promise<void> {
  const res = await call(path);
  if (!res.ok) throw new ApiError(res.status, await errorText(res));
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export const enc = encodeURIComponent;

// ---- shapes of the answers (snake_case as on the wire) ----------------------------------------------------

export interface ServerView {
  server: string;
  source: string;
  url: string | null;
  up: boolean;
  version: string | null;
  cluster: string | null;
  tags: string[];
  sample: { cpu: number; mem: number; cores: number; at: string | null } | null;
  last_poll_at: string | null;
  last_error: string | null;
  capture_paths: Record<string, string | null>;
}

export interface Samples {
  server: string;
  interval_ms: number;
  history_ms: number;
  samples: { at: string; cpu: number; mem: number }[];
}

export interface TriggerView {
  server: string;
  trigger: string;
  metric: string;
  state: string;
  since: string | null;
  value: number | null;
  above: number;
  rearm_below: number;
  for_ms: number;
  cooldown_ms: number;
  armed: boolean;
  pending_since: string | null;
  fires_at: string | null;
  fires_in_ms: number | null;
  cooldown_until: string | null;
  last_fired_at: string | null;
  last_firing: { at: string | null; outcome: string; incident: string | null; reason: string | null; message: string | null } | null;
}

export interface IncidentEntry {
  id: string;
  server: string;
  reason: string | null;
  trigger: string | null;
  triggers: string[];
  alert: string | null;
  status: string | null;
  started_at: string | null;
  finished_at: string | null;
  bytes: number;
  files: string[];
  profiles?: string[];
}

export interface IncidentPage {
  incidents: IncidentEntry[];
  next: string | null;
}

export interface TriggerRecord {
  name: string;
  metric: string;
  value: number;
  above: number;
  for_ms: number;
  rate_ms?: number | null;
  raw?: number | null;
  escalation_step?: number;
}

export interface Change {
  function: string;
  before_share: number;
  after_share: number;
}

export interface ProfileResult {
  name: string;
  file: string | null;
  bytes: number;
  sha256: string | null;
  duration_ms: number;
  via: string | null;
  error: string | null;
  sample_type: string | null;
  changes?: Change[] | null;
}

export interface Manifest {
  id: string;
  server: { name: string; id: string | null; cluster: string | null; version: string | null; tags: string[]; url: string | null };
  reason: string;
  trigger: TriggerRecord | null;
  triggers: TriggerRecord[];
  alert: { name: string; fingerprint: string; labels: Record<string, string>; annotations: Record<string, string> } | null;
  note: string | null;
  via: string | null;
  started_at: string;
  finished_at: string;
  status: string;
  profiles: ProfileResult[];
  files: string[];
}

export interface SampleType {
  type: string;
  unit: string;
}

export interface Flamegraph {
  incident: string;
  profile: string;
  sample_type: string;
  unit: string;
  sample_types: SampleType[];
  total: number;
  names: string[];
  /** [nameIdx, total, self, parentIdx], preorder */
  nodes: [number, number, number, number][];
}

export interface Top {
  incident: string;
  profile: string;
  sample_type: string;
  unit: string;
  sample_types: SampleType[];
  total: number;
  rows: { function: string; flat: number; flat_share: number; cum: number; cum_share: number }[];
}

export interface Compare {
  base: { incident: string; profile: string; total: number };
  target: { incident: string; profile: string; total: number };
  sample_type: string;
  unit: string;
  names: string[];
  /** [nameIdx, baseTotal, targetTotal, parentIdx], preorder */
  nodes: [number, number, number, number][];
  changes: { function: string; base_share: number; target_share: number; delta: number }[];
}
