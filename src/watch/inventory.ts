/**
 * What the daemon knows about each watched server: its label, its latest reading, whether it is up.
 * Fed by poll results; read by the trigger engine, the capturer (to find a server's paths) and the API.
 * No I/O here.
 */
import type { ServerConfig } from '../config/types.js';
import type { PollError } from '../errors.js';
import type { Varz, VarzReading } from './varz.js';

export interface WatchedServer {
  /** Stable key: the monitoring URL for HTTP-watched servers. */
  readonly key: string;
  /** The `server` label: configured name, else varz server_name, else the URL. */
  label: string;
  readonly config: ServerConfig;
  up: boolean;
  /** Polled at least once (successfully or not). */
  polled: boolean;
  last: VarzReading | undefined;
  lastOkAt: number | undefined;
  lastPollAt: number | undefined;
  lastError: PollError | undefined;
}

export type ObserveChange =
  /** The server went from up (or never polled) to down, or back: worth one log line. */
  { readonly stateChanged: boolean; readonly previousLabel: string | undefined };

export class Inventory {
  readonly #servers = new Map<string, WatchedServer>();

  get size(): number {
    return this.#servers.size;
  }

  all(): WatchedServer[] {
    return [...this.#servers.values()];
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

  /** Replaces the set of servers; returns the entries that were removed. */
  setServers(configs: readonly ServerConfig[]): WatchedServer[] {
    const wanted = new Map(configs.map((c) => [c.url, c]));
    const removed: WatchedServer[] = [];
    for (const [key, s] of this.#servers) {
      const c = wanted.get(key);
      if (!c || c.name !== s.config.name) {
        // A renamed server is a different series set: drop and re-add it.
        removed.push(s);
        this.#servers.delete(key);
      }
    }
    for (const [key, c] of wanted) {
      const existing = this.#servers.get(key);
      if (existing) {
        (existing as { config: ServerConfig }).config = c;
        continue;
      }
      this.#servers.set(key, {
        key,
        label: c.name ?? key,
        config: c,
        up: false,
        polled: false,
        last: undefined,
        lastOkAt: undefined,
        lastPollAt: undefined,
        lastError: undefined,
      });
    }
    return removed;
  }

  /** Records a successful poll. */
  ok(key: string, reading: VarzReading, at: number): ObserveChange | undefined {
    const s = this.#servers.get(key);
    if (!s) return undefined;
    const stateChanged = !s.up;
    const previousLabel = s.label;
    s.label = s.config.name ?? labelFromVarz(reading.varz);
    s.up = true;
    s.polled = true;
    s.last = reading;
    s.lastOkAt = at;
    s.lastPollAt = at;
    s.lastError = undefined;
    return { stateChanged, previousLabel: previousLabel !== s.label ? previousLabel : undefined };
  }

  /** Records a failed poll. */
  failed(key: string, error: PollError, at: number): ObserveChange | undefined {
    const s = this.#servers.get(key);
    if (!s) return undefined;
    const stateChanged = s.up || !s.polled;
    s.up = false;
    s.polled = true;
    s.lastPollAt = at;
    s.lastError = error;
    return { stateChanged, previousLabel: undefined };
  }

  /** Every server has been polled at least once. */
  allPolled(): boolean {
    for (const s of this.#servers.values()) if (!s.polled) return false;
    return true;
  }
}

function labelFromVarz(v: Varz): string {
  return v.serverName || v.serverId;
}
