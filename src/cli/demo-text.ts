/**
 * The demo's words (pure): turns the daemon's JSON log lines, its /api/v1/triggers view and the demo's
 * own numbers into the short human lines `nats-autoprof demo` prints. No I/O here.
 */
import { isAbsolute, relative } from 'node:path';
import { formatDuration, formatSize } from '../config/duration.js';
import type { TriggerConfig, TriggerMetric } from '../config/types.js';
import type { IncidentManifest } from '../store/manifest.js';

const MiB = 1024 * 1024;

/** One parsed JSON log line of the daemon (pino: level, time, msg, plus fields). */
export type LogLine = Readonly<Record<string, unknown>>;

/** One entry of GET /api/v1/triggers, the fields the demo reads. */
export interface TriggerView {
  readonly server: string;
  readonly trigger: string;
  readonly metric: string;
  readonly state: string;
  readonly value: number | null;
  readonly cooldown_until: string | null;
}

/** One entry of GET /api/v1/servers, the fields the demo reads. */
export interface ServerView {
  readonly server: string;
  readonly up: boolean;
  readonly sample: { readonly cpu: number; readonly mem: number } | null;
}

function field(line: LogLine, key: string): string | undefined {
  const v = line[key];
  return typeof v === 'string' ? v : undefined;
}

function numberField(line: LogLine, key: string): number | undefined {
  const v = line[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function formatElapsed(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

export function formatMiB(bytes: number): string {
  return `${Math.round(bytes / MiB)} MiB`;
}

/** Traffic volumes: `640 MiB`, `3.3 GiB`. */
export function formatVolume(bytes: number): string {
  return bytes < 1024 * MiB ? formatMiB(bytes) : `${(bytes / (1024 * MiB)).toFixed(1)} GiB`;
}

/** A metric's value as people read it: `41%` for the percent metrics, `88 MiB` for mem. */
export function formatValue(metric: string, value: number): string {
  return metric === 'mem' ? formatMiB(value) : `${Math.round(value)}%`;
}

/** A rule's threshold as written in the configuration: `25%`, `48MiB`. */
export function formatThreshold(metric: TriggerMetric, above: number): string {
  return metric === 'mem' ? formatSize(above) : `${above}%`;
}

/** `cpu 5s + allocs`: what a firing captures. */
export function describeProfiles(profiles: readonly string[], cpuDurationMs: number): string {
  return profiles.map((p) => (p === 'cpu' ? `cpu ${formatDuration(cpuDurationMs)}` : p)).join(' + ');
}

/** `demo-high-cpu (cpu > 25% for 3s, then cpu 5s + allocs)` */
export function describeRule(t: TriggerConfig, cpuDurationMs: number): string {
  return `${t.name} (${t.metric} > ${formatThreshold(t.metric, t.above)} for ${formatDuration(t.forMs)}, then ${describeProfiles(t.profiles, cpuDurationMs)})`;
}

/** Context the narration needs from the demo's configuration. */
export interface NarrationContext {
  readonly triggers: readonly TriggerConfig[];
  readonly cpuDurationMs: number;
}

/**
 * One human line for a daemon log line, or undefined when it is not worth showing. `incident written` is
 * left to the caller (it reads the manifest for the top functions): see `describeIncident`.
 */
export function narrateLog(line: LogLine, ctx: NarrationContext): string | undefined {
  const msg = field(line, 'msg') ?? '';
  const level = field(line, 'level') ?? 'info';
  const server = field(line, 'server') ?? '?';
  const triggerName = field(line, 'trigger');
  const trigger = ctx.triggers.find((t) => t.name === triggerName);
  const value = numberField(line, 'value');
  const shown = trigger !== undefined && value !== undefined ? `${trigger.metric} ${formatValue(trigger.metric, value)}` : undefined;
  const err = field(line, 'err');

  if (/^rule \S+ fired on /.test(msg)) {
    const why = trigger && shown ? ` (${shown}, above ${formatThreshold(trigger.metric, trigger.above)} for ${formatDuration(trigger.forMs)})` : '';
    return `rule ${triggerName ?? '?'} fired on ${server}${why}`;
  }
  if (msg === 'capturing') {
    const profiles = Array.isArray(line['profiles']) ? line['profiles'].filter((p): p is string => typeof p === 'string') : [];
    return `capturing ${describeProfiles(profiles, ctx.cpuDurationMs)} from ${server}`;
  }
  if (msg === 'rule would fire but is in its cooldown') {
    const cooldown = trigger ? ` ${formatDuration(trigger.cooldownMs)}` : '';
    return `rule ${triggerName ?? '?'} would fire again on ${server}${shown ? ` (${shown})` : ''}, but its${cooldown} cooldown is not over: no capture yet`;
  }
  if (msg.startsWith('capture skipped: ')) return `capture skipped (${triggerName ?? '?'} on ${server}): ${msg.slice('capture skipped: '.length)}`;
  if (msg === 'profile capture failed') return `  ${field(line, 'profile') ?? '?'} profile failed (via ${field(line, 'via') ?? '?'}): ${err ?? 'unknown error'}`;
  if (msg === 'system account connected') return 'daemon connected to nats-server as the system account user (for PROFILEZ captures)';
  if (msg === 'server is down') return `daemon: ${server} is down${err ? ` (${err})` : ''}`;
  if (level === 'warn' || level === 'error' || level === 'fatal') return `daemon ${level}: ${msg}${err ? `: ${err}` : ''}`;
  return undefined;
}

/** The lines for a written incident: where it is, and the top function of each profile. */
export function describeIncident(shownPath: string, m: IncidentManifest | undefined): string[] {
  if (m === undefined) return [`incident written: ${shownPath}`];
  const lines = [`incident written: ${shownPath}  (${m.status}, via ${m.via ?? 'none'})`];
  for (const p of m.profiles) {
    if (p.error !== null) {
      lines.push(`    ${p.name}: FAILED: ${p.error}`);
      continue;
    }
    const top = p.top
      .slice(0, 2)
      .map((t) => `${shortFunction(t.function)} (${Math.round(t.share * 100)}%)`)
      .join(', ');
    lines.push(`    top ${p.name}${p.sample_type ? ` [${p.sample_type}]` : ''}: ${top || '(no samples)'}`);
  }
  return lines;
}

/** `github.com/nats-io/nats-server/v2/server.(*client).flushOutbound` -> `server.(*client).flushOutbound` */
export function shortFunction(name: string): string {
  const slash = name.lastIndexOf('/');
  return slash < 0 ? name : name.slice(slash + 1);
}

/**
 * What changed between two views of one rule on one server, as a line; undefined when nothing worth
 * saying did. Firing itself comes from the daemon's log (with the value that fired it), not from here.
 */
export function narrateTransition(prev: TriggerView | undefined, next: TriggerView, nowMs: number, ctx: NarrationContext): string | undefined {
  const t = ctx.triggers.find((x) => x.name === next.trigger);
  const value = next.value === null ? '' : `${next.metric} ${formatValue(next.metric, next.value)}`;
  const before = prev?.state ?? 'idle';
  if (before === next.state) return undefined;
  const rule = `rule ${next.trigger}`;
  if (next.state === 'pending') {
    const rest = t ? `, above ${formatThreshold(t.metric, t.above)}; fires if it stays above for ${formatDuration(t.forMs)}` : '';
    return `${rule} pending on ${next.server} (${value}${rest})`;
  }
  if (before === 'pending' && next.state !== 'fired') return `${rule} no longer pending on ${next.server} (${value})`;
  if (before === 'fired') {
    const below = t ? `, below ${formatThreshold(t.metric, t.rearmBelow)}` : '';
    const until = next.cooldown_until === null ? Number.NaN : Date.parse(next.cooldown_until);
    const cooling = Number.isFinite(until) && until > nowMs ? `; cooldown: can fire again in ${Math.ceil((until - nowMs) / 1000)}s` : '; can fire again';
    return `${rule} re-armed on ${next.server} (${value}${below})${cooling}`;
  }
  if (before === 'cooling' && next.state === 'idle') return `${rule} cooldown over on ${next.server}: can fire again`;
  return undefined;
}

/** A path as the user should type it: relative to `cwd` when inside it. */
export function displayPath(path: string, cwd: string): string {
  const rel = relative(cwd, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

/** Quotes for a POSIX shell when needed. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/** `go tool pprof` commands to open the profiles of the incidents the demo wrote. */
export function pprofHints(incidents: readonly { shownPath: string; manifest: IncidentManifest | undefined }[]): string[] {
  const files: { file: string; profile: string }[] = [];
  for (const inc of incidents) {
    for (const p of inc.manifest?.profiles ?? []) {
      if (p.file !== null && p.file.endsWith('.pb.gz')) files.push({ file: `${inc.shownPath}/${p.file}`, profile: p.name });
    }
  }
  const cpu = files.find((f) => f.profile === 'cpu');
  const heap = files.find((f) => f.profile === 'heap') ?? files.find((f) => f.profile !== 'cpu');
  const lines: string[] = [];
  for (const f of [cpu, heap]) {
    if (f === undefined) continue;
    lines.push(`go tool pprof -top ${shellQuote(f.file)}`);
  }
  const web = cpu ?? heap;
  if (web) lines.push(`go tool pprof -http=: ${shellQuote(web.file)}     # opens a browser: graph, flame graph, source`);
  return lines;
}
