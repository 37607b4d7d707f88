/**
 * Benchmark: what sharing incidents through a JetStream object store costs (issue 17, guarantee 5). A
 * 3-node JetStream cluster (bucket with 3 replicas); replica A holds N incidents on its disk (incident.json, varz.json 2 KB, heap.pb.gz
 * 4 KB each, written through the store) and uploads each (src/store/incident-sync.ts over
 * src/coord/incident-bucket.ts); replica B has an empty disk and lists and reads through the bucket. Figures,
 * medians: one upload; the API's first page of 50 as B answers it from the bucket with its listing cache
 * expired (what a page costs every 2 s), against A's page from its local index (the baseline: a single
 * daemon); a listing of the bucket; the first read of a file B does not have, against A's local open;
 * following the bucket's retention (done each retention interval).
 *
 *   node --import tsx bench/object-store.ts [--n 1000] [--trials 20] [--smoke]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { connect } from '@nats-io/transport-node';
import { pino } from 'pino';

import { JetStreamIncidentBucket } from '../src/coord/incident-bucket.js';
import { IncidentStore } from '../src/store/incident-store.js';
import { IncidentSync } from '../src/store/incident-sync.js';
import { testManifest } from '../test/helpers/manifest.js';
import { startJetStreamCluster } from '../test/helpers/nats-cluster.js';
import { APP_PASSWORD, APP_USER, cleanupTempDirs } from '../test/helpers/nats-server.js';
import { percentile } from './lib/prom.js';
import { log, row, runAlone, type BenchOptions, type BenchResult } from './lib/report.js';

const BENCH = 'object-store';
const SERVERS = 20;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

export async function objectStore(o: BenchOptions): Promise<BenchResult> {
  const n = o.n?.[0] ?? (o.smoke ? 40 : 1_000);
  const trials = o.trials ?? (o.smoke ? 3 : 20);
  const started = performance.now();
  const cluster = await startJetStreamCluster(['ob1', 'ob2', 'ob3'], 'objbench');
  const nc = await connect({ servers: cluster.map((s) => s.natsUrl), user: APP_USER, pass: APP_PASSWORD });
  const dirs = [mkdtempSync(join(tmpdir(), 'nats-autoprof-bench-obj-a-')), mkdtempSync(join(tmpdir(), 'nats-autoprof-bench-obj-b-'))] as const;
  const silent = pino({ level: 'silent' });
  try {
    const bucket = (instance: string): JetStreamIncidentBucket =>
      new JetStreamIncidentBucket(
        { bucket: 'bench_incidents', replicas: 3, maxBytes: 200 * 1024 * 1024, liveBucket: 'bench_live', timeoutMs: 10_000, transferTimeoutMs: 60_000, instance },
        () => nc,
      );
    // The `retention` lease lives in the coordination `live` bucket: create it as the coordinator would.
    const { Kvm } = await import('@nats-io/kv');
    await new Kvm(nc).create('bench_live', { ttl: 10_000, replicas: 3 });
    const replica = async (dir: string, instance: string): Promise<{ store: IncidentStore; sync: IncidentSync; bucket: JetStreamIncidentBucket }> => {
      const store = new IncidentStore({ dir, log: silent });
      await store.init();
      const b = bucket(instance);
      await b.check();
      return { store, sync: new IncidentSync({ store, bucket: b, log: silent, onUpload: () => undefined, listCacheMs: 0 }), bucket: b };
    };
    const a = await replica(dirs[0], 'a');
    const b = await replica(dirs[1], 'b');

    log(o, `${BENCH}: writing and uploading ${n} incidents`);
    const t0 = Date.UTC(2026, 11, 1);
    const varz = JSON.stringify({ server_name: 'x', pad: 'x'.repeat(2000) });
    const heap = Buffer.alloc(4096, 7);
    const uploadMs: number[] = [];
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const name = `srv-${i % SERVERS}`;
      const at = t0 + i * 60_000;
      const w = await a.store.begin(name, at, 'trigger');
      await w.writeFile('varz.json', varz);
      await w.writeFile('heap.pb.gz', heap);
      const id = (await w.commit(testManifest(name, at, { files: ['varz.json', 'heap.pb.gz'] }))).id;
      ids.push(id);
      uploadMs.push(await timed(async () => {
        if ((await a.sync.upload(id)) !== 'ok') throw new Error(`upload of ${id} failed`);
      }));
    }

    // B's first page reads the manifests it lists (and a few ahead), once: they are cached (immutable).
    let firstPage = 0;
    const firstPageMs = await timed(async () => (firstPage = (await b.sync.page({ limit: 50 }))?.incidents.length ?? 0));
    if (firstPage !== Math.min(50, n)) throw new Error(`B's first page listed ${firstPage} incidents`);
    log(o, `${BENCH}: ${trials} trials of each read`);
    const localPage: number[] = [];
    const bucketPage: number[] = [];
    const listing: number[] = [];
    const localOpen: number[] = [];
    const firstRead: number[] = [];
    const follow: number[] = [];
    let pageSize = 0;
    for (let t = 0; t < trials; t++) {
      localPage.push(await timed(() => a.store.page({ limit: 50 })));
      bucketPage.push(await timed(async () => (pageSize = (await b.sync.page({ limit: 50 }))?.incidents.length ?? 0)));
      listing.push(await timed(() => b.bucket.list()));
      const id = ids[(t * 37) % ids.length] as string;
      localOpen.push(await timed(async () => (await a.store.openFile(id, 'heap.pb.gz'))?.stream.destroy()));
      firstRead.push(await timed(async () => (await b.sync.openFile(id, 'heap.pb.gz'))?.stream.destroy()));
      follow.push(await timed(() => a.sync.followBucket()));
    }
    if (pageSize !== Math.min(50, n)) throw new Error(`B listed ${pageSize} incidents of the bucket, expected ${Math.min(50, n)}`);
    const med = (v: number[]): number | null => percentile(v, 0.5);
    const c = `${n} incidents`;
    return {
      bench: BENCH,
      title: 'incidents shared through a JetStream object store',
      rows: [
        row(BENCH, c, 'upload one incident (3 objects), median', 'ms', med(uploadMs), null),
        row(BENCH, c, "B's first page (its manifests read)", 'ms', firstPageMs, null),
        row(BENCH, c, 'first page (50): from the bucket / from the local index', 'ms', med(bucketPage), med(localPage)),
        row(BENCH, c, 'list the bucket (every object info)', 'ms', med(listing), null),
        row(BENCH, c, "first read of another replica's file / local open", 'ms', med(firstRead), med(localOpen)),
        row(BENCH, c, "follow the bucket's retention (markers + listing)", 'ms', med(follow), null),
      ],
      notes: [
        `a 3-node JetStream cluster (file store; bucket and KV with 3 replicas), ${n} incidents over ${SERVERS} servers (incident.json + varz.json 2 KB + heap.pb.gz 4 KB), ` +
          `${trials} trials; B's listing cache off (the API reuses a listing for 2 s); upload p90 ${percentile(uploadMs, 0.9)?.toFixed(1)} ms, ` +
          `bucket page p90 ${percentile(bucketPage, 0.9)?.toFixed(1)} ms`,
      ],
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await nc.close();
    await Promise.all(cluster.map((s) => s.stop()));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    cleanupTempDirs();
  }
}

runAlone(import.meta.url, objectStore);
