/**
 * The Alertmanager webhook (payload version 4), as pure functions: validate the body into typed alerts,
 * and find the watched server an alert is about from its labels.
 */
import { createHash } from 'node:crypto';
import { describeValue } from './http-server.js';

export interface Alert {
  status: 'firing' | 'resolved';
  name: string;
  fingerprint: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export class BadRequest extends Error {
  override readonly name = 'BadRequest';
}

function stringMap(v: unknown, where: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new BadRequest(`${where} must be an object of strings`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (typeof val !== 'string') throw new BadRequest(`${where}.${k.length > 100 ? `${k.slice(0, 100)}...` : k} must be a string`);
    out[k] = val;
  }
  return out;
}

/** Alertmanager's own fingerprint is preferred; without one, a stable hash of the sorted labels. */
function fingerprintOf(labels: Record<string, string>): string {
  const text = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join('\u0000');
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

export const MAX_ALERTS = 10_000;

/** Parses a webhook body. Throws BadRequest with a precise message. */
export function parseWebhook(body: unknown): { version: string; alerts: Alert[] } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequest('the body must be a JSON object (an Alertmanager webhook payload)');
  const o = body as Record<string, unknown>;
  const version = o['version'];
  if (version !== undefined && version !== '4') throw new BadRequest(`unsupported webhook payload version ${describeValue(version)}; expected "4"`);
  const list = o['alerts'];
  if (!Array.isArray(list)) throw new BadRequest('"alerts" must be a list');
  if (list.length > MAX_ALERTS) throw new BadRequest(`too many alerts in one payload (${list.length}, at most ${MAX_ALERTS})`);
  const common = stringMap(o['commonLabels'], 'commonLabels');
  const alerts = list.map((a: unknown, i): Alert => {
    if (typeof a !== 'object' || a === null || Array.isArray(a)) throw new BadRequest(`alerts[${i}] must be an object`);
    const x = a as Record<string, unknown>;
    const status = x['status'];
    if (status !== 'firing' && status !== 'resolved') throw new BadRequest(`alerts[${i}].status must be "firing" or "resolved"`);
    const labels = { ...common, ...stringMap(x['labels'], `alerts[${i}].labels`) };
    const annotations = stringMap(x['annotations'], `alerts[${i}].annotations`);
    const fp = x['fingerprint'];
    if (fp !== undefined && typeof fp !== 'string') throw new BadRequest(`alerts[${i}].fingerprint must be a string`);
    return { status, name: labels['alertname'] ?? '', fingerprint: fp || fingerprintOf(labels), labels, annotations };
  });
  return { version: typeof version === 'string' ? version : '4', alerts };
}

export interface MatchableServer {
  label: string;
  /** Monitoring URL (HTTP-watched servers). */
  url: string | undefined;
  host: string | undefined;
}

/** host:port of a URL, for matching Prometheus `instance` labels. */
function hostPort(url: string): string | undefined {
  try {
    const u = new URL(url);
    return u.port ? `${u.hostname}:${u.port}` : u.hostname;
  } catch {
    return undefined;
  }
}

/**
 * The server an alert is about: the first configured label that names a watched server. `instance`
 * (host:port of the scraped target) also matches a watched monitoring URL's host:port or host.
 */
export function findServer<T extends MatchableServer>(labels: Record<string, string>, order: readonly string[], servers: readonly T[]): T | undefined {
  for (const key of order) {
    const value = labels[key];
    if (!value) continue;
    const byName = servers.find((s) => s.label === value);
    if (byName) return byName;
    if (key === 'instance') {
      const byUrl = servers.find((s) => {
        if (!s.url) return false;
        const hp = hostPort(s.url);
        return hp === value || s.url === value || hp?.split(':')[0] === value;
      });
      if (byUrl) return byUrl;
    }
  }
  return undefined;
}
