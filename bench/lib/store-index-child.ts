/**
 * One side of bench/store-index.ts, in its own process: the IncidentStore and the API routes of the source
 * tree at argv[2] (this checkout or a "before" copy), on the store at argv[3]. Times opening the store
 * (init), the first page of GET /api/v1/incidents (the route's own handler, reply serialised), and writing
 * one incident as the capturer does (begin, two files, commit, then the retention pass it schedules).
 * Prints one JSON line: { initMs, pageMs: number[], writeMs: number[], pageCount }.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';

interface Writer {
  writeFile(name: string, data: Uint8Array | string): Promise<unknown>;
  commit(m: unknown): Promise<{ id: string }>;
}
interface Store {
  init(): Promise<unknown>;
  begin(server: string, startedAtMs: number, label: string): Promise<Writer>;
  prune(policy: unknown, nowMs?: number): Promise<unknown>;
}
interface Route {
  name: string;
  handle(ctx: { params: string[]; query: URLSearchParams; body: () => Promise<unknown> }): Promise<{ status: number; json?: unknown }>;
}

async function main(): Promise<void> {
  const [root, dir, pagesArg, writesArg] = process.argv.slice(2);
  if (!root || !dir) throw new Error('usage: store-index-child.ts <source root> <store dir> [pages] [writes]');
  const pages = Number(pagesArg ?? 20);
  const writes = Number(writesArg ?? 20);

  const storeMod = (await import(pathToFileURL(join(root, 'src/store/incident-store.ts')).href)) as { IncidentStore: new (o: unknown) => Store };
  const routesMod = (await import(pathToFileURL(join(root, 'src/api/routes.ts')).href)) as { apiRoutes: (d: unknown) => Route[] };

  const log = pino({ level: 'silent' });
  const store = new storeMod.IncidentStore({ dir, log });
  let t = performance.now();
  await store.init();
  const initMs = performance.now() - t;

  const route = routesMod.apiRoutes({ store, config: () => ({ http: {} }) }).find((r) => r.name === 'incidents');
  if (!route) throw new Error('no incidents route');
  const pageMs: number[] = [];
  let pageCount = 0;
  for (let i = 0; i < pages; i++) {
    t = performance.now();
    const reply = await route.handle({ params: [], query: new URLSearchParams('limit=50'), body: async () => undefined });
    JSON.stringify(reply.json);
    pageMs.push(performance.now() - t);
    pageCount = (reply.json as { incidents: unknown[] }).incidents.length;
  }

  // The capturer's default retention (keep 50 per server, 1 GiB, 30 days) would delete: keep everything.
  const policy = { maxIncidentsPerServer: Infinity, maxTotalSizeBytes: Infinity, maxAgeMs: Infinity };
  const varz = JSON.stringify({ server_id: 'N'.repeat(56), server_name: 'bench', cpu: 12.5, mem: 123456789, pad: 'x'.repeat(2000) });
  const profile = Buffer.alloc(4096, 7);
  const writeMs: number[] = [];
  const base = Date.now();
  for (let i = 0; i < writes; i++) {
    t = performance.now();
    const server = `srv-${i % 20}`;
    const startedAt = base + i;
    const w = await store.begin(server, startedAt, 'manual');
    await w.writeFile('varz.json', varz);
    await w.writeFile('heap.pb.gz', profile);
    await w.commit(manifest(server, startedAt));
    await store.prune(policy, startedAt);
    writeMs.push(performance.now() - t);
  }

  process.stdout.write(`${JSON.stringify({ initMs, pageMs, writeMs, pageCount })}\n`);
  }

export function manifest(server: string, startedAtMs: number): Record<string, unknown> {
  const trigger = { name: 'high-cpu', metric: 'cpu', value: 91, above: 80, for_ms: 15000 };
  return {
    version: 1,
    id: 'placeholder',
    server: { name: server, id: null, cluster: null, version: '2.10.27', tags: [], url: null },
    reason: 'trigger',
    trigger,
    triggers: [trigger],
    alert: null,
    note: null,
    via: 'prof_port',
    started_at: new Date(startedAtMs).toISOString(),
    finished_at: new Date(startedAtMs + 1200).toISOString(),
    status: 'ok',
    profiles: [
      { name: 'heap', file: 'heap.pb.gz', bytes: 4096, sha256: null, duration_ms: 40, via: 'prof_port', error: null, top: [{ function: 'runtime.mallocgc', flat: 100, share: 0.5 }], sample_type: 'inuse_space' },
    ],
    files: ['heap.pb.gz', 'varz.json'],
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
