/**
 * The effective configuration as YAML, in the user's vocabulary (snake_case keys, `5s`, `64MiB`), with
 * every default filled in and every secret shown as `[redacted]`, or as the `<key>_file` it was read from.
 * `nats-autoprof check` prints it. Loading the output gives the same configuration again (with
 * `[redacted]` as the value of each inline secret).
 */
import { stringify } from 'yaml';

import { REDACTED_TEXT } from '../secret.js';
import type { Secret } from '../secret.js';
import { secretFiles } from './fields.js';
import { formatDuration, formatSize } from './duration.js';
import type { AlertsConfig, Config, ServerConfig, SystemAccountConfig, TlsConfig, TriggerConfig } from './types.js';

type Plain = string | number | boolean | Plain[] | { [key: string]: Plain };

/** `key: "[redacted]"`, or `key_file: <path>` when the secret came from a file. */
function putSecret(out: Record<string, Plain>, key: string, secret: Secret | undefined): void {
  if (secret === undefined) return;
  const file = secretFiles.get(secret);
  if (file !== undefined) out[`${key}_file`] = file;
  else out[key] = REDACTED_TEXT;
}

export function renderConfig(config: Config): string {
  const doc: Record<string, Plain> = {
    log: { level: config.log.level },
    http: renderHttp(config.http),
    ui: { history: formatDuration(config.ui.historyMs), cache_size: formatSize(config.ui.cacheSizeBytes) },
    poll: {
      interval: formatDuration(config.poll.intervalMs),
      timeout: formatDuration(config.poll.timeoutMs),
      max_body_size: formatSize(config.poll.maxBodyBytes),
      max_in_flight: config.poll.maxInFlight,
    },
    shutdown_timeout: formatDuration(config.shutdownTimeoutMs),
    servers: config.servers.map(renderServer),
  };
  if (config.systemAccount !== undefined) doc['system_account'] = renderSystemAccount(config.systemAccount);
  doc['triggers'] = config.triggers.map(renderTrigger);
  doc['alerts'] = renderAlerts(config.alerts);
  const c = config.capture;
  doc['capture'] = {
    via: c.via,
    cpu_duration: formatDuration(c.cpuDurationMs),
    timeout: formatDuration(c.timeoutMs),
    max_concurrent: c.maxConcurrent,
    limit: { count: c.limit.count, window: formatDuration(c.limit.windowMs) },
    max_profile_size: formatSize(c.maxProfileBytes),
  };
  const r = config.storage.retention;
  doc['storage'] = {
    dir: config.storage.dir,
    retention: {
      max_incidents_per_server: r.maxIncidentsPerServer,
      max_total_size: formatSize(r.maxTotalSizeBytes),
      max_age: formatDuration(r.maxAgeMs),
      interval: formatDuration(r.intervalMs),
    },
  };
  if (config.coordination !== undefined) doc['coordination'] = renderCoordination(config.coordination);
  return stringify(doc, { lineWidth: 0 });
}

function renderCoordination(c: NonNullable<Config['coordination']>): Plain {
  const out: Record<string, Plain> = { url: c.urls.length === 1 && c.urls[0] !== undefined ? c.urls[0] : [...c.urls] };
  if (c.user !== undefined) out['user'] = c.user;
  putSecret(out, 'password', c.password);
  putSecret(out, 'token', c.token);
  if (c.creds !== undefined) out['creds'] = c.creds;
  putSecret(out, 'nkey_seed', c.nkeySeed);
  if (c.tls !== undefined) out['tls'] = renderTls(c.tls);
  out['timeout'] = formatDuration(c.timeoutMs);
  if (c.instance !== undefined) out['instance'] = c.instance;
  out['heartbeat'] = formatDuration(c.heartbeatMs);
  out['lease_ttl'] = formatDuration(c.leaseTtlMs);
  out['buckets'] = { live: c.buckets.live, state: c.buckets.state };
  out['replicas'] = c.replicas;
  return out;
}

function renderHttp(h: Config['http']): Plain {
  // Like every optional secret, an unset bearer token is left out rather than shown as null.
  const auth: Record<string, Plain> = {};
  putSecret(auth, 'bearer_token', h.auth.bearerToken);
  auth['metrics'] = h.auth.metrics;
  const out: Record<string, Plain> = { listen: h.listen, auth };
  if (h.tls !== undefined) out['tls'] = { cert: h.tls.cert, key: h.tls.key };
  if (h.externalUrl !== undefined) out['external_url'] = h.externalUrl;
  return out;
}

function renderServer(s: ServerConfig): Plain {
  const out: Record<string, Plain> = { url: s.url };
  if (s.name !== undefined) out['name'] = s.name;
  if (s.profUrl !== undefined) out['prof_url'] = s.profUrl;
  const headerNames = Object.keys(s.headers);
  // fromEntries, not assignment: a header named __proto__ must stay a header.
  if (headerNames.length > 0) out['headers'] = Object.fromEntries(headerNames.map((h) => [h, REDACTED_TEXT]));
  if (s.basicAuth !== undefined) {
    const basic: Record<string, Plain> = { username: s.basicAuth.username };
    putSecret(basic, 'password', s.basicAuth.password);
    out['basic_auth'] = basic;
  }
  putSecret(out, 'bearer_token', s.bearerToken);
  if (s.tls !== undefined) out['tls'] = renderTls(s.tls);
  return out;
}

function renderSystemAccount(a: SystemAccountConfig): Plain {
  const out: Record<string, Plain> = { url: a.urls.length === 1 && a.urls[0] !== undefined ? a.urls[0] : [...a.urls] };
  if (a.user !== undefined) out['user'] = a.user;
  putSecret(out, 'password', a.password);
  putSecret(out, 'token', a.token);
  if (a.creds !== undefined) out['creds'] = a.creds;
  putSecret(out, 'nkey_seed', a.nkeySeed);
  if (a.tls !== undefined) out['tls'] = renderTls(a.tls);
  out['timeout'] = formatDuration(a.timeoutMs);
  out['discover'] = a.discover;
  out['select'] = { names: [...a.select.names], clusters: [...a.select.clusters], tags: [...a.select.tags] };
  out['stall'] = formatDuration(a.stallMs);
  out['forget_after'] = formatDuration(a.forgetAfterMs);
  // fromEntries, not assignment: a server named __proto__ must stay a server.
  out['prof_urls'] = Object.fromEntries(Object.entries(a.profUrls));
  return out;
}

function renderAlerts(a: AlertsConfig): Plain {
  return { labels: [...a.labels], profiles: [...a.profiles], cooldown: formatDuration(a.cooldownMs) };
}

function renderTls(t: TlsConfig): Plain {
  const out: Record<string, Plain> = {};
  if (t.ca !== undefined) out['ca'] = t.ca;
  if (t.cert !== undefined) out['cert'] = t.cert;
  if (t.key !== undefined) out['key'] = t.key;
  out['insecure'] = t.insecure;
  return out;
}

function renderTrigger(t: TriggerConfig): Plain {
  // Memory levels are bytes, written as sizes; the other metrics are percentages.
  const level = (n: number): Plain => (t.metric === 'mem' ? formatSize(n) : n);
  const out: Record<string, Plain> = {
    name: t.name,
    metric: t.metric,
    above: level(t.above),
    for: formatDuration(t.forMs),
    rearm_below: level(t.rearmBelow),
    cooldown: formatDuration(t.cooldownMs),
    profiles: [...t.profiles],
  };
  if (t.servers !== undefined) out['servers'] = [...t.servers];
  return out;
}
