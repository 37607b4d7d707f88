/**
 * Benchmark 7: the incident store with many incidents on disk. 10,000 incidents (20 servers × 500, each
 * incident.json + varz.json + heap.pb.gz, written directly) are listed and added to by the store and API
 * code of this tree and, with --before PATH, by the code at PATH/src, each in its own process on the same
 * directory in the same run (bench/lib/store-index-child.ts): opening the store (init), the first page of
 * GET /api/v1/incidents (50 incidents; the route's handler), and writing one incident followed by the
 * retention pass the capturer runs after each one. Medians; the baseline column is the --before code
 * (without --before, this tree again).
 *
 *   node --import tsx bench/store-index.ts [--n 10000] [--before /tmp/before] [--smoke]
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './lib/children.js';
import { manifest } from './lib/store-index-child.js';
import { percentile } from './lib/prom.js';
import { log, row, runAlone, type BenchOptions, type BenchResult } from './lib/report.js';

const BENCH = 'store-index';
const SERVERS = 20;

interface Side {
  initMs: number;
  pageMs: number[];
  writeMs: number[];
  pageCount: number;
}

function dirName(ms: number): string {
  // naming.ts: <UTC yyyymmddThhmmss.mmmZ>-<label>
  return `${new Date(ms).toISOString().replaceAll('-', '').replaceAll(':', '')}-trigger`;
}

function populate(dir: string, n: number): void {
  const t0 = Date.UTC(2026, 0, 1);
  const varz = JSON.stringify({ server_name: 'x', pad: 'x'.repeat(2000) });
  const profile = Buffer.alloc(4096, 7);
  for (let i = 0; i < n; i++) {
    const server = `srv-${i % SERVERS}`;
    const startedAt = t0 + i * 60_000;
    const name = dirName(startedAt);
    const path = join(dir, server, name);
    mkdirSync(path, { recursive: true });
    writeFileSync(join(path, 'incident.json'), `${JSON.stringify({ ...manifest(server, startedAt), id: `${server}~${name}` }, null, 2)}\n`);
    writeFileSync(join(path, 'varz.json'), varz);
    writeFileSync(join(path, 'heap.pb.gz'), profile);
  }
}

async function side(root: string, dir: string, pages: number, writes: number): Promise<Side> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/lib/store-index-child.ts'), root, dir, String(pages), String(writes)], {
    cwd: ROOT,
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(stdout.trim().split('\n').pop() as string) as Side;
}

export async function storeIndex(o: BenchOptions): Promise<BenchResult> {
  const n = o.n?.[0] ?? (o.smoke ? 200 : 10_000);
  const pages = o.smoke ? 3 : 20;
  const writes = o.smoke ? 3 : 20;
  const dir = mkdtempSync(join(tmpdir(), 'nats-autoprof-bench-store-'));
  try {
    log(o, `${BENCH}: writing ${n} incidents`);
    populate(dir, n);
    const beforeRoot = o.before ?? ROOT;
    log(o, `${BENCH}: before (${beforeRoot})`);
    const b = await side(beforeRoot, dir, pages, writes);
    log(o, `${BENCH}: this tree`);
    const a = await side(ROOT, dir, pages, writes);
    const med = (v: number[]): number | null => percentile(v, 0.5);
    const c = `${n} incidents`;
    return {
      bench: BENCH,
      title: 'incident store with many incidents',
      rows: [
        row(BENCH, c, 'list one page (50), median', 'ms', med(a.pageMs), med(b.pageMs)),
        row(BENCH, c, 'write one incident + retention pass, median', 'ms', med(a.writeMs), med(b.writeMs)),
        row(BENCH, c, 'open the store (init)', 'ms', a.initMs, b.initMs),
      ],
      notes: [
        `${n} incidents over ${SERVERS} servers (3 files each) in ${dir}; baseline = ${o.before ? `the code at ${o.before}` : 'this tree (no --before given)'}; ` +
          `${pages} pages and ${writes} writes per side, the "before" side first; page sizes ${b.pageCount} / ${a.pageCount}; ` +
          `page p90 ${percentile(a.pageMs, 0.9)?.toFixed(1)} ms vs ${percentile(b.pageMs, 0.9)?.toFixed(1)} ms, write p90 ${percentile(a.writeMs, 0.9)?.toFixed(1)} ms vs ${percentile(b.writeMs, 0.9)?.toFixed(1)} ms`,
      ],
      seconds: 0,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

runAlone(import.meta.url, storeIndex);
