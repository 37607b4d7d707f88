/**
 * What the daemon knows about each watched server: its label, its latest reading, whether it is up.
 * Fed by HTTP poll results and by system-account discovery rounds; read by the trigger engine, the
 * capturer (to find a server's paths) and the API. No I/O here.
 */
import type { ServerConfig } from '../config/types.js';
import type { Varz } from './varz.js';

export type Source = 'http' | 'system_account';

export interface Reading {
  readonly varz: Varz;
  /** The document as received: varz JSON (HTTP, the bytes) or a STATSZ reply (discovery). */
  readonly body: string | Uint8Array;
  readonly kind: 'varz' | 'statsz';
}

export interface WatchedServer {
  /** Stable key: the monitoring URL for HTTP-watched servers, `system_account:<name>` for discovered ones. */
  readonly key: string;
  readonly source: Source;
  /** The `server` label: configured name, else the reported server_name, else the URL. */
  label: string;
  /** HTTP-watched servers only. */
  readonly config: ServerConfig | undefined;
  profUrl: string | undefined;
  up: boolean;
  /** Polled at least once (successfully or not). */
  polled: boolean;
  /** Successful and failed polls (or discovery rounds) since the server is watched under this key. */
  okPolls: number;
  failedPolls: number;
  /** The latest reading, updated in place by each one (a capture copies what it keeps: `snapshotOf`). */
  last: LastReading | undefined;
  lastOkAt: number | undefined;
  lastPollAt: number | undefined;
  lastError: string | undefined;
  /** Discovered servers: when they first went missing from discovery rounds. */
  missingSince: number | undefined;
}

export interface ObserveChange {
  /** The server went from up (or never polled) to down, or back: worth one log line. */
  readonly stateChanged: boolean;
  /** The label changed after series were exported under the old one (the URL): those series must go. */
  readonly previousLabel: string | undefined;
  /** A discovered server seen for the first time. */
  readonly added: boolean;
}

/**
 * A copy of a string that does not share its characters with another. JSON.parse returns a value of 13
 * characters or more as a slice of the whole document's text, so keeping one such value keeps the text.
 */
function own(s: string): string {
  return s.length < 13 ? s : (' ' + s).slice(1);
}

function sameTags(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * A server's latest reading, written in place by each new one. At 5,000 servers polled every second, a new
 * reading object per poll lived one interval: long enough for the young generation to promote it, so the old
 * space filled with one dead reading (its strings, the document text they were sliced from, its body) per
 * server per second between full collections. Here the object, its strings and its body buffer stay from
 * poll to poll; only what changed is written, and strings are copied off the document's text.
 */
export class LastReading implements Reading {
  readonly varz: Varz;
  kind: Reading['kind'];
  #bytes: Buffer | undefined;
  #length = 0;
  #text: string | undefined;

  constructor(r: Reading) {
    const v = r.varz;
    this.varz = {
      serverId: own(v.serverId),
      serverName: own(v.serverName),
      cluster: v.cluster === undefined ? undefined : own(v.cluster),
      tags: v.tags.map(own),
      version: own(v.version),
      cpu: v.cpu,
      mem: v.mem,
      cores: v.cores,
      gomaxprocs: v.gomaxprocs,
      gomemlimit: v.gomemlimit,
    };
    this.kind = r.kind;
    this.#setBody(r.body);
    this.#share(v);
  }

  /** The document as received. A view of a buffer the next reading overwrites: copy what must outlive it. */
  get body(): string | Uint8Array {
    return this.#text ?? (this.#bytes as Buffer).subarray(0, this.#length);
  }

  /**
   * Writes `r` over this reading. `r.varz`'s strings are then replaced by this reading's equal copies, so that
   * whoever keeps one after this poll (a rule's state keeps the server_id) does not keep the document's text.
   */
  update(r: Reading): void {
    const v = r.varz;
    const k = this.varz;
    if (k.serverId !== v.serverId) k.serverId = own(v.serverId);
    if (k.serverName !== v.serverName) k.serverName = own(v.serverName);
    if (k.cluster !== v.cluster) k.cluster = v.cluster === undefined ? undefined : own(v.cluster);
    if (!sameTags(k.tags, v.tags)) k.tags = v.tags.map(own);
    if (k.version !== v.version) k.version = own(v.version);
    this.#share(v);
    k.cpu = v.cpu;
    k.mem = v.mem;
    k.cores = v.cores;
    k.gomaxprocs = v.gomaxprocs;
    k.gomemlimit = v.gomemlimit;
    this.kind = r.kind;
    this.#setBody(r.body);
  }

  /** Gives the new reading's varz this reading's copies of its (equal) strings. */
  #share(v: Varz): void {
    const k = this.varz;
    v.serverId = k.serverId;
    v.serverName = k.serverName;
    v.cluster = k.cluster;
    v.tags = k.tags;
    v.version = k.version;
  }

  #setBody(body: string | Uint8Array): void {
    if (typeof body === 'string') {
      this.#text = body;
      this.#bytes = undefined;
      return;
    }
    this.#text = undefined;
    if (!this.#bytes || this.#bytes.length < body.length) {
      // Its own memory (not a slice of a shared pool), with room for the document to grow a little.
      this.#bytes = Buffer.allocUnsafeSlow(Math.max(1024, Math.ceil(body.length * 1.25)));
    }
    this.#bytes.set(body);
    this.#length = body.length;
  }
}

/** What a capture keeps of a server's latest reading: its body copied (the reading's buffer is reused). */
export function snapshotOf(r: Reading): { kind: Reading['kind']; body: string | Uint8Array } {
  const body = r.body;
  return { kind: r.kind, body: typeof body === 'string' ? body : Buffer.from(body) };
}

function entry(key: string, source: Source, label: string, config: ServerConfig | undefined, profUrl: string | undefined): WatchedServer {
  return {
    key,
    source,
    label,
    config,
    profUrl,
    up: false,
    polled: false,
    okPolls: 0,
    failedPolls: 0,
    last: undefined,
    lastOkAt: undefined,
    lastPollAt: undefined,
    lastError: undefined,
    missingSince: undefined,
  };
}

export class Inventory {
  readonly #servers = new Map<string, WatchedServer>();

  get size(): number {
    return this.#servers.size;
  }

  all(): WatchedServer[] {
    return [...this.#servers.values()];
  }

  /** The entries themselves, without a copy (read at each metrics scrape). */
  values(): IterableIterator<WatchedServer> {
    return this.#servers.values();
  }

  get(key: string): WatchedServer | undefined {
    return this.#servers.get(key);
  }

  byLabel(label: string): WatchedServer | undefined {
    for (const s of this.#servers.values()) if (s.label === label) return s;
    return undefined;
  }

  byServerId(id: string): WatchedServer | undefined {
    for (const s of this.#servers.values()) if (s.last?.varz.serverId === id) return s;
    return undefined;
  }

  /** server_ids currently watched over HTTP (a discovered server with one of these is not watched twice). */
  httpServerIds(): Set<string> {
    const ids = new Set<string>();
    for (const s of this.#servers.values()) if (s.source === 'http' && s.last) ids.add(s.last.varz.serverId);
    return ids;
  }

  /** Replaces the set of HTTP-watched servers; returns the entries that were removed. */
  setServers(configs: readonly ServerConfig[]): WatchedServer[] {
    const wanted = new Map(configs.map((c) => [c.url, c]));
    const removed: WatchedServer[] = [];
    for (const [key, s] of this.#servers) {
      if (s.source !== 'http') continue;
      const c = wanted.get(key);
      if (!c || c.name !== s.config?.name) {
        // A renamed server is a different series set: drop and re-add it.
        removed.push(s);
        this.#servers.delete(key);
      }
    }
    for (const [key, c] of wanted) {
      const existing = this.#servers.get(key);
      if (existing) {
        (existing as { config: ServerConfig }).config = c;
        existing.profUrl = c.profUrl;
        continue;
      }
      this.#servers.set(key, entry(key, 'http', c.name ?? key, c, c.profUrl));
    }
    return removed;
  }

  /** Records a successful reading (HTTP poll or discovery round). Unknown HTTP keys are ignored. */
  ok(key: string, reading: Reading, at: number, discovered?: { profUrl: string | undefined }): ObserveChange | undefined {
    let s = this.#servers.get(key);
    let added = false;
    if (!s) {
      if (!discovered) return undefined;
      s = entry(key, 'system_account', reading.varz.serverName, undefined, discovered.profUrl);
      this.#servers.set(key, s);
      added = true;
    }
    if (discovered) s.profUrl = discovered.profUrl;
    const stateChanged = !s.up;
    const previousLabel = s.label;
    // Only a label that was already exported (a poll was counted under it) has series to remove.
    const hadSeries = s.polled;
    s.label = s.config?.name ?? (reading.varz.serverName || reading.varz.serverId);
    s.up = true;
    s.polled = true;
    s.okPolls++;
    if (s.last) s.last.update(reading);
    else s.last = new LastReading(reading);
    s.lastOkAt = at;
    s.lastPollAt = at;
    s.lastError = undefined;
    s.missingSince = undefined;
    return { stateChanged, previousLabel: previousLabel !== s.label && !added && hadSeries ? previousLabel : undefined, added };
  }

  /** Records a failed poll, or a discovered server missing from a round. */
  failed(key: string, error: string, at: number): ObserveChange | undefined {
    const s = this.#servers.get(key);
    if (!s) return undefined;
    const stateChanged = s.up || !s.polled;
    s.up = false;
    s.polled = true;
    s.failedPolls++;
    s.lastPollAt = at;
    s.lastError = error;
    if (s.source === 'system_account') s.missingSince ??= at;
    return { stateChanged, previousLabel: undefined, added: false };
  }

  /** Discovered servers, by key. */
  discoveredKeys(): string[] {
    return [...this.#servers.values()].filter((s) => s.source === 'system_account').map((s) => s.key);
  }

  /** Removes discovered servers missing for longer than `forgetAfterMs`; returns them. */
  forgetMissing(now: number, forgetAfterMs: number): WatchedServer[] {
    const out: WatchedServer[] = [];
    for (const [key, s] of this.#servers) {
      if (s.source === 'system_account' && s.missingSince !== undefined && now - s.missingSince >= forgetAfterMs) {
        this.#servers.delete(key);
        out.push(s);
      }
    }
    return out;
  }

  /** Removes one entry (e.g. a discovered server now watched over HTTP). */
  remove(key: string): WatchedServer | undefined {
    const s = this.#servers.get(key);
    if (s) this.#servers.delete(key);
    return s;
  }

  /** Every server has been polled at least once. */
  allPolled(): boolean {
    for (const s of this.#servers.values()) if (!s.polled) return false;
    return true;
  }
}
