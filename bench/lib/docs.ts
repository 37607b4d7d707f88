/**
 * Documents for the simulators: N distinct /varz and STATSZ replies built from the fixtures recorded from
 * a real nats-server (test/fixtures), with varied ids, names, clusters, tags and values. Deterministic
 * for a seed, so two runs serve the same fleet.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './children.js';
import { prng } from '../../test/helpers/prng.js';

type Json = Record<string, unknown>;

const FIXTURES = join(ROOT, 'test', 'fixtures');

function load(path: string): Json {
  return JSON.parse(readFileSync(join(FIXTURES, path), 'utf8')) as Json;
}

export const VARZ_TEMPLATES: readonly Json[] = [load('varz/2.10.27-cluster-tags.json'), load('varz/2.10.27-standalone.json')];
export const STATSZ_TEMPLATES: readonly Json[] = [load('statsz/2.10.27-fx-a.json'), load('statsz/2.10.27-fx-b.json')];

/** Seedable PRNG shared with the tests. */
export const rng = prng;

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const REGIONS = ['eu-west', 'eu-north', 'us-east', 'us-west', 'ap-south', 'ap-east'];

export interface SimServer {
  index: number;
  id: string;
  name: string;
  cluster: string | undefined;
  tags: string[];
  template: number;
}

/** The fleet: server i gets a 56-char nkey-like id, a name, and (mostly) a cluster and tags. */
export function simServers(n: number, seed = 1): SimServer[] {
  const r = rng(seed);
  const out: SimServer[] = [];
  for (let i = 0; i < n; i++) {
    let id = 'N';
    for (let k = 0; k < 55; k++) id += B32[Math.floor(r() * 32)];
    const region = REGIONS[i % REGIONS.length] as string;
    const clustered = i % 10 !== 9;
    const clusterNo = Math.floor(i / 3);
    out.push({
      index: i,
      id,
      name: `nats-${region}-${String(i).padStart(5, '0')}`,
      cluster: clustered ? `${region}-c${clusterNo}` : undefined,
      tags: clustered ? [`az:${region}-${1 + (i % 3)}`, i % 4 === 0 ? 'env:prod' : 'env:staging'] : [],
      template: clustered ? 0 : 1,
    });
  }
  return out;
}

export interface Values {
  cpu: number;
  mem: number;
  connections: number;
  msgs: number;
  bytes: number;
  subscriptions: number;
  requests: number;
}

/** Plausible values for a quiet server (cpu a few percent), or with cpu forced. */
export function values(r: () => number, cpu?: number): Values {
  const msgs = Math.floor(r() * 5e8);
  return {
    cpu: cpu ?? Math.round(r() * 2500) / 100,
    mem: Math.floor(2e7 + r() * 8e8),
    connections: Math.floor(r() * 2000),
    msgs,
    bytes: msgs * Math.floor(64 + r() * 1024),
    subscriptions: Math.floor(60 + r() * 50000),
    requests: Math.floor(r() * 1e6),
  };
}

function iso(ms: number): string {
  // nats-server prints nanoseconds
  return new Date(ms).toISOString().replace('Z', `${String(Math.floor((ms % 1) * 1e6)).padStart(6, '0')}Z`);
}

const START = Date.UTC(2026, 10, 20, 8, 0, 0);

/** A /varz document for `s`, pretty-printed as nats-server sends it. */
export function renderVarz(s: SimServer, v: Values, ports: { client: number; http: number }, nowMs: number): string {
  const doc = structuredClone(VARZ_TEMPLATES[s.template]) as Json;
  doc['server_id'] = s.id;
  doc['server_name'] = s.name;
  doc['port'] = ports.client;
  doc['http_port'] = ports.http;
  if (s.cluster) {
    doc['cluster'] = { ...(doc['cluster'] as Json), name: s.cluster, cluster_port: ports.client + 1 };
    doc['tags'] = s.tags;
    doc['routes'] = 2;
  }
  const start = START + s.index * 1000;
  doc['start'] = iso(start);
  doc['config_load_time'] = iso(start);
  doc['now'] = iso(nowMs);
  const up = Math.max(0, Math.floor((nowMs - start) / 1000));
  doc['uptime'] = `${Math.floor(up / 86400)}d${Math.floor((up % 86400) / 3600)}h${Math.floor((up % 3600) / 60)}m${up % 60}s`;
  doc['mem'] = v.mem;
  doc['cpu'] = v.cpu;
  doc['connections'] = v.connections;
  doc['total_connections'] = v.connections * 3;
  doc['in_msgs'] = v.msgs;
  doc['out_msgs'] = v.msgs * 2;
  doc['in_bytes'] = v.bytes;
  doc['out_bytes'] = v.bytes * 2;
  doc['subscriptions'] = v.subscriptions;
  doc['http_req_stats'] = { '/varz': v.requests };
  return JSON.stringify(doc, null, 2);
}

/** A `$SYS.REQ.SERVER.PING.STATSZ` reply for `s` (compact JSON, as the server sends it). */
export function renderStatsz(s: SimServer, v: Values, activeServers: number, seq: number, nowMs: number): string {
  const doc = structuredClone(STATSZ_TEMPLATES[s.index % 2]) as Json;
  const server = doc['server'] as Json;
  server['name'] = s.name;
  server['id'] = s.id;
  server['cluster'] = s.cluster ?? '';
  server['tags'] = s.tags;
  server['seq'] = seq;
  server['time'] = iso(nowMs);
  const st = doc['statsz'] as Json;
  st['start'] = iso(START + s.index * 1000);
  st['mem'] = v.mem;
  st['cpu'] = v.cpu;
  st['connections'] = v.connections;
  st['total_connections'] = v.connections * 3;
  st['subscriptions'] = v.subscriptions;
  st['sent'] = { msgs: v.msgs * 2, bytes: v.bytes * 2 };
  st['received'] = { msgs: v.msgs, bytes: v.bytes };
  st['active_servers'] = activeServers;
  const routes = st['routes'] as Json[] | undefined;
  if (routes) st['routes'] = routes.map((rt, k) => ({ ...rt, name: `${s.name}-peer${k % 2}` }));
  return JSON.stringify(doc);
}
