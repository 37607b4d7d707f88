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

/** One log line for the alerts of a payload that named no watched server. */
export interface UnknownServerNote {
  /** `warn` when the payload has an alert name not reported before; `info` for names already reported. */
  readonly level: 'warn' | 'info';
  readonly msg: string;
  readonly fields: Record<string, unknown>;
}

const EXAMPLES = 3;
const MAX_NEW_NAMES = 10;
/** Names remembered as reported; beyond this the memory starts again (a payload holds at most MAX_ALERTS). */
const MAX_REMEMBERED = 10_000;

const INSTANCE_HINT =
  'instance names the target Prometheus scraped: when Prometheus scrapes nats-autoprof, that is the daemon itself, not a NATS server; keep the series\' server label on the alert (or set alerts.labels)';

/**
 * Summarises the alerts of one payload that named no watched server: one line with the count, the labels
 * looked for and a few examples, instead of one line per alert (a payload can hold 10,000). It is at `warn`
 * the first time an alert name is seen here, at `info` after that.
 */
export class UnknownServerLog {
  readonly #reported = new Set<string>();

  note(alerts: readonly Alert[], order: readonly string[]): UnknownServerNote | undefined {
    if (alerts.length === 0) return undefined;
    const fresh: string[] = [];
    const examples: Alert[] = [];
    for (const a of alerts) {
      if (this.#reported.has(a.name)) continue;
      if (this.#reported.size >= MAX_REMEMBERED) this.#reported.clear();
      this.#reported.add(a.name);
      fresh.push(a.name);
      if (examples.length < EXAMPLES) examples.push(a);
    }
    for (const a of alerts) {
      if (examples.length >= EXAMPLES) break;
      if (!examples.includes(a)) examples.push(a);
    }
    const found = (a: Alert): Record<string, string> => Object.fromEntries(order.filter((k) => a.labels[k]).map((k) => [k, a.labels[k] as string]));
    const onlyInstance = examples.some((a) => {
      const keys = Object.keys(found(a));
      return keys.length === 1 && keys[0] === 'instance';
    });
    const fields: Record<string, unknown> = {
      count: alerts.length,
      looked_for: order,
      examples: examples.map((a) => ({ alert: a.name, fingerprint: a.fingerprint, found: found(a) })),
    };
    if (fresh.length > 0) {
      fields['new_alert_names'] = fresh.slice(0, MAX_NEW_NAMES);
      if (fresh.length > MAX_NEW_NAMES) fields['new_alert_names_more'] = fresh.length - MAX_NEW_NAMES;
    }
    if (onlyInstance) fields['hint'] = INSTANCE_HINT;
    return {
      level: fresh.length > 0 ? 'warn' : 'info',
      msg: `${alerts.length} alert(s) named no watched server (looked for labels ${order.join(', ')}); ignored`,
      fields,
    };
  }
}
