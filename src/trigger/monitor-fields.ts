/**
 * The fields a rule's `metric:` may name besides the built-ins, recorded from real nats-server 2.10.27
 * monitoring documents (test/fixtures/varz/*.json and test/fixtures/statsz/*.json; a unit test checks that
 * this table is exactly what those recordings hold, so a new recording that adds fields fails until the table
 * is updated).
 *
 * Two documents, two sets of names:
 * - varz (`GET /varz`) is what a server watched over HTTP (`servers:`) reports. Paths are from its root:
 *   `slow_consumers`, `in_msgs`, `jetstream.stats.memory`, `slow_consumer_stats.clients`.
 * - STATSZ (`$SYS.REQ.SERVER.PING.STATSZ`) is what a discovered server (system_account.discover) reports.
 *   Paths are from the reply's `statsz` object. It is smaller: no limits or ports, no `slow_consumer_stats`,
 *   and message counters are named differently (`received.msgs` and `sent.msgs` for varz's `in_msgs` and
 *   `out_msgs`). Connections, subscriptions, slow_consumers and the JetStream block have the same names.
 * A JetStream block is present only when JetStream is enabled; a rule on a field a server does not report
 * sees no value (like a failed poll: nothing fires).
 * `http_req_stats` is left out on purpose: its keys are endpoint paths (`/varz`), not fields.
 */

/** What a recorded field holds. Only `number` fields can be a metric. */
export type FieldKind = 'number' | 'string' | 'boolean' | 'list' | 'object';

export const VARZ_FIELDS: Readonly<Record<string, FieldKind>> = {
  'auth_required': 'boolean',
  'auth_timeout': 'number',
  'cluster.addr': 'string',
  'cluster.auth_timeout': 'number',
  'cluster.cluster_port': 'number',
  'cluster.name': 'string',
  'cluster.pool_size': 'number',
  'cluster.tls_timeout': 'number',
  'config_load_time': 'string',
  'connections': 'number',
  'cores': 'number',
  'cpu': 'number',
  'gateway': 'object',
  'go': 'string',
  'gomaxprocs': 'number',
  'host': 'string',
  'http_base_path': 'string',
  'http_host': 'string',
  'http_port': 'number',
  'http_req_stats': 'object',
  'https_port': 'number',
  'in_bytes': 'number',
  'in_msgs': 'number',
  'jetstream.config.compress_ok': 'boolean',
  'jetstream.config.max_memory': 'number',
  'jetstream.config.max_storage': 'number',
  'jetstream.config.store_dir': 'string',
  'jetstream.config.sync_interval': 'number',
  'jetstream.stats.accounts': 'number',
  'jetstream.stats.api.errors': 'number',
  'jetstream.stats.api.total': 'number',
  'jetstream.stats.ha_assets': 'number',
  'jetstream.stats.memory': 'number',
  'jetstream.stats.reserved_memory': 'number',
  'jetstream.stats.reserved_storage': 'number',
  'jetstream.stats.storage': 'number',
  'leaf': 'object',
  'leafnodes': 'number',
  'max_connections': 'number',
  'max_control_line': 'number',
  'max_payload': 'number',
  'max_pending': 'number',
  'mem': 'number',
  'mqtt': 'object',
  'now': 'string',
  'out_bytes': 'number',
  'out_msgs': 'number',
  'ping_interval': 'number',
  'ping_max': 'number',
  'port': 'number',
  'proto': 'number',
  'remotes': 'number',
  'routes': 'number',
  'server_id': 'string',
  'server_name': 'string',
  'slow_consumer_stats.clients': 'number',
  'slow_consumer_stats.gateways': 'number',
  'slow_consumer_stats.leafs': 'number',
  'slow_consumer_stats.routes': 'number',
  'slow_consumers': 'number',
  'start': 'string',
  'subscriptions': 'number',
  'system_account': 'string',
  'tags': 'list',
  'tls_timeout': 'number',
  'total_connections': 'number',
  'uptime': 'string',
  'version': 'string',
  'websocket': 'object',
  'write_deadline': 'number',
};

export const STATSZ_FIELDS: Readonly<Record<string, FieldKind>> = {
  'active_accounts': 'number',
  'active_servers': 'number',
  'connections': 'number',
  'cores': 'number',
  'cpu': 'number',
  'jetstream.config.compress_ok': 'boolean',
  'jetstream.config.max_memory': 'number',
  'jetstream.config.max_storage': 'number',
  'jetstream.config.sync_interval': 'number',
  'jetstream.stats.accounts': 'number',
  'jetstream.stats.api.errors': 'number',
  'jetstream.stats.api.total': 'number',
  'jetstream.stats.ha_assets': 'number',
  'jetstream.stats.memory': 'number',
  'jetstream.stats.reserved_memory': 'number',
  'jetstream.stats.reserved_storage': 'number',
  'jetstream.stats.storage': 'number',
  'mem': 'number',
  'received.bytes': 'number',
  'received.msgs': 'number',
  'routes': 'list',
  'sent.bytes': 'number',
  'sent.msgs': 'number',
  'slow_consumers': 'number',
  'start': 'string',
  'subscriptions': 'number',
  'total_connections': 'number',
};

/** Which document a rule reads: varz for servers watched over HTTP, STATSZ for discovered ones. */
export type MonitorDoc = 'varz' | 'statsz';

export const FIELDS: Readonly<Record<MonitorDoc, Readonly<Record<string, FieldKind>>>> = { varz: VARZ_FIELDS, statsz: STATSZ_FIELDS };

/** The numeric paths of one document, sorted. */
export function numericPaths(doc: MonitorDoc): string[] {
  return Object.keys(FIELDS[doc])
    .filter((p) => FIELDS[doc][p] === 'number')
    .sort();
}

/** A path that names nothing, or a field that is not a number, for a rule that reads `docs`. */
export interface PathProblem {
  readonly message: string;
  readonly hint: string;
  /** Set when the path names nothing in this document (the caller may offer a did-you-mean instead of the hint). */
  readonly unknownIn?: MonitorDoc;
}

const DOC_NAME: Readonly<Record<MonitorDoc, string>> = { varz: 'varz', statsz: 'STATSZ' };

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j] as number;
      row[j] = Math.min(cur + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length] as number;
}

/** The numeric path closest to `path` when it is close enough to be a typo (or a dash/case variant). */
export function closestPath(path: string, candidates: readonly string[]): string | undefined {
  const norm = (s: string): string => s.toLowerCase().replace(/-/g, '_');
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = distance(norm(path), norm(c));
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  // A third of the length, at least 2: catches "slow_consumer", "slowconsumers", "jetstream.stat.memory".
  return best !== undefined && bestD <= Math.max(2, Math.floor(path.length / 3)) ? best : undefined;
}

/**
 * Checks a dotted path against the recorded fields of every document the rule reads. Undefined when it is
 * a numeric field of each; otherwise the first problem, with a hint.
 */
export function checkPath(path: string, docs: readonly MonitorDoc[]): PathProblem | undefined {
  for (const doc of docs) {
    const kind = FIELDS[doc][path];
    if (kind === 'number') continue;
    const where = DOC_NAME[doc];
    if (kind !== undefined) {
      return { message: `${where} field "${path}" is a ${kind}, not a number`, hint: `use a numeric field, e.g. ${examples(doc)}` };
    }
    const other: MonitorDoc = doc === 'varz' ? 'statsz' : 'varz';
    if (FIELDS[other][path] === 'number') {
      return doc === 'statsz'
        ? {
            message: `"${path}" is a varz field that STATSZ does not report, and this rule applies to discovered servers`,
            hint: `limit the rule to servers watched over HTTP with servers: [...], or use a STATSZ field${renamed(path)}`,
          }
        : {
            message: `"${path}" is a STATSZ field that varz does not report, and this rule applies to servers watched over HTTP`,
            hint: `limit the rule to discovered servers with servers: [...], or use a varz field${renamed(path)}`,
          };
    }
    const prefix = Object.keys(FIELDS[doc]).some((p) => p.startsWith(`${path}.`));
    if (prefix) {
      const under = numericPaths(doc).filter((p) => p.startsWith(`${path}.`));
      return { message: `${where} field "${path}" is an object, not a number`, hint: `name a number inside it: ${under.slice(0, 4).join(', ')}` };
    }
    return { message: `unknown metric "${path}"`, hint: `use cpu, cpu_per_core, mem, mem_of_limit or a ${where} field like ${examples(doc)}`, unknownIn: doc };
  }
  return undefined;
}

const RENAMED: Readonly<Record<string, string>> = {
  in_msgs: 'received.msgs',
  out_msgs: 'sent.msgs',
  in_bytes: 'received.bytes',
  out_bytes: 'sent.bytes',
  'received.msgs': 'in_msgs',
  'sent.msgs': 'out_msgs',
  'received.bytes': 'in_bytes',
  'sent.bytes': 'out_bytes',
};

function renamed(path: string): string {
  const to = RENAMED[path];
  return to === undefined ? '' : ` (${path} is ${to} there)`;
}

function examples(doc: MonitorDoc): string {
  return doc === 'varz' ? 'slow_consumers, connections, jetstream.stats.memory' : 'slow_consumers, connections, received.msgs';
}

/**
 * Reads one numeric field from a parsed document: built once per config (the path split once), then a few
 * property reads per poll. Undefined when the server does not report it or it is not a finite number.
 */
export function compilePath(path: string): (doc: Readonly<Record<string, unknown>> | undefined) => number | undefined {
  const parts = path.split('.');
  if (parts.length === 1) {
    const [a] = parts as [string];
    return (doc) => finite(doc?.[a]);
  }
  if (parts.length === 2) {
    const [a, b] = parts as [string, string];
    return (doc) => finite(child(doc?.[a])?.[b]);
  }
  return (doc) => {
    let o: unknown = doc;
    for (const p of parts) {
      const c = child(o);
      if (c === undefined) return undefined;
      o = c[p];
    }
    return finite(o);
  };
}

function child(v: unknown): Readonly<Record<string, unknown>> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function finite(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}
