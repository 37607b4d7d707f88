/**
 * Whole-cluster watching through the system account: parsing `$SYS.REQ.SERVER.PING.STATSZ` replies into
 * the same fields as varz (pure), and exact client-side selection (the servers' own filters match
 * substrings before 2.12, so they are not used).
 */
import type { Selector } from '../config/types.js';
import { VarzParseError, type Varz } from './varz.js';

export const STATSZ_PING_SUBJECT = '$SYS.REQ.SERVER.PING.STATSZ';

export interface StatszReading {
  varz: Varz;
  /** The reply as received, kept for the incident snapshot (statsz.json). */
  body: string;
  /** `statsz.active_servers`: how many servers this one knows of (may be stale after a server died). */
  activeServers: number | undefined;
  host: string | undefined;
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new VarzParseError(`${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

function finite(o: Record<string, unknown>, key: string): number | undefined {
  const v = o[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Parses one STATSZ reply. Throws VarzParseError for anything else. */
export function parseStatsz(text: string): StatszReading {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new VarzParseError(`statsz reply is not valid JSON: ${(err as Error).message}`);
  }
  const root = obj(doc, 'statsz reply');
  const server = obj(root['server'], 'statsz "server"');
  const stats = obj(root['statsz'], 'statsz "statsz"');
  const id = server['id'];
  if (typeof id !== 'string' || id.length === 0) throw new VarzParseError('statsz "server.id" is missing');
  const cpu = finite(stats, 'cpu');
  const mem = finite(stats, 'mem');
  if (cpu === undefined) throw new VarzParseError('statsz field "cpu" is missing or not a number');
  if (mem === undefined) throw new VarzParseError('statsz field "mem" is missing or not a number');
  const name = typeof server['name'] === 'string' && server['name'] ? server['name'] : id;
  const cluster = typeof server['cluster'] === 'string' && server['cluster'] ? server['cluster'] : undefined;
  const tags = Array.isArray(server['tags']) ? server['tags'].filter((t): t is string => typeof t === 'string').map((t) => t.toLowerCase()) : [];
  const gomemlimit = finite(stats, 'gomemlimit');
  return {
    varz: {
      serverId: id,
      serverName: name,
      cluster,
      tags,
      version: typeof server['ver'] === 'string' ? server['ver'] : '',
      cpu,
      mem,
      cores: finite(stats, 'cores') ?? 0,
      gomaxprocs: finite(stats, 'gomaxprocs'),
      gomemlimit: gomemlimit !== undefined && gomemlimit > 0 ? gomemlimit : undefined,
      doc: stats,
    },
    body: text,
    activeServers: finite(stats, 'active_servers'),
    host: typeof server['host'] === 'string' ? server['host'] : undefined,
  };
}

/**
 * Cheap read of `active_servers` for the collector's expected count (every reply is parsed in full once,
 * later, by the discovery round); undefined when absent.
 */
export function activeServersOf(data: Uint8Array): number | undefined {
  const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('latin1');
  const m = /"active_servers"\s*:\s*(\d+)/.exec(text);
  return m ? Number(m[1]) : undefined;
}

/**
 * Glob with `*` (any run) and `?` (one character), anchored at both ends; anything else is literal.
 * Linear-time matching with one backtrack point (no regular expression: `a*a*a*...` must not explode).
 */
export function globMatch(pattern: string, name: string): boolean {
  if (!pattern.includes('*') && !pattern.includes('?')) return pattern === name;
  let p = 0;
  let n = 0;
  let star = -1;
  let resume = 0;
  while (n < name.length) {
    if (p < pattern.length && (pattern[p] === '?' || pattern[p] === name[n])) {
      p++;
      n++;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p++;
      resume = n;
    } else if (star >= 0) {
      p = star + 1;
      n = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

export interface Selectable {
  name: string;
  cluster: string | undefined;
  tags: readonly string[];
}

/** Exact selection: each list is an OR, the lists combine with AND, an empty list passes everything. */
export function selects(sel: Selector, s: Selectable): boolean {
  if (sel.names.length > 0 && !sel.names.some((p) => globMatch(p, s.name))) return false;
  if (sel.clusters.length > 0 && (s.cluster === undefined || !sel.clusters.includes(s.cluster))) return false;
  if (sel.tags.length > 0) {
    const have = new Set(s.tags.map((t) => t.toLowerCase()));
    if (!sel.tags.every((t) => have.has(t.toLowerCase()))) return false;
  }
  return true;
}

export function describeSelector(sel: Selector): string {
  const parts: string[] = [];
  if (sel.names.length) parts.push(`name ${sel.names.join('|')}`);
  if (sel.clusters.length) parts.push(`cluster ${sel.clusters.join('|')}`);
  if (sel.tags.length) parts.push(`tags ${sel.tags.join('+')}`);
  return parts.length ? parts.join(', ') : 'every server';
}
