/**
 * The Alertmanager webhook (payload version 4), as pure functions: validate the body into typed alerts,
 * and find the watched server an alert is about from its labels.
 */
import { createHash } from 'node:crypto';
import { parseWebhookBody } from './bodies.js';

export interface Alert {
  status: 'firing' | 'resolved';
  name: string;
  fingerprint: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export { BadRequest, MAX_ALERTS } from './bodies.js';

/** Alertmanager's own fingerprint is preferred; without one, a stable hash of the sorted labels. */
function fingerprintOf(labels: Record<string, string>): string {
  const text = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join('\u0000');
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** Parses a webhook body (checked with zod in bodies.ts). Throws BadRequest with a precise message. */
export function parseWebhook(body: unknown): { version: string; alerts: Alert[] } {
  const { version, commonLabels, alerts } = parseWebhookBody(body);
  return {
    version,
    alerts: alerts.map((x): Alert => {
      const labels = { ...commonLabels, ...x.labels };
      return { status: x.status, name: labels['alertname'] ?? '', fingerprint: x.fingerprint || fingerprintOf(labels), labels, annotations: x.annotations };
    }),
  };
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
