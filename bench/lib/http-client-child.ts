/**
 * One HTTP client in a process of its own (bench/http-client.ts): polls every URL's /varz once a second, at
 * most 128 GETs in flight, JSON.parse of each body, for the window; then reports its CPU per GET, its peak
 * RSS, and its JS heap after a full GC (run with --expose-gc).
 *
 * IPC: {type:'run', kind:'undici'|'http1', urls, seconds} -> {type:'done', polls, errors, cpuUs, hwmMB, heapMB, rssMB}
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { Canceller } from '../../src/cancel.js';
import { endpointOf, Http1Pool, requestHead } from '../../src/watch/http1.js';

const status = (key: string): number => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN) / 1024;

process.on('message', (m: { type: string; kind: 'undici' | 'http1'; urls: string[]; seconds: number }) => {
  if (m.type !== 'run') return;
  void run(m.kind, m.urls, m.seconds).then((r) => process.send?.({ type: 'done', ...r }));
});

async function run(kind: 'undici' | 'http1', urls: string[], seconds: number) {
  const agent = new Agent({ keepAliveTimeout: 30_000, connections: 1, pipelining: 1 });
  const pool = new Http1Pool();
  const cancel = new Canceller();
  const endpoints = urls.map((u) => {
    const url = new URL(`${u}/varz`);
    return endpointOf(url, requestHead(url.pathname, url.host, { accept: 'application/json' }), undefined, url.origin);
  });
  let sink = 0;
  let errors = 0;
  const get = async (i: number): Promise<void> => {
    try {
      if (kind === 'undici') {
        const r = await request(`${urls[i]}/varz`, { dispatcher: agent, headers: { accept: 'application/json' } });
        sink += JSON.parse(await r.body.text()).cpu;
      } else {
        const r = await pool.get(endpoints[i]!, { maxBodyBytes: 4 << 20, cancel });
        sink += JSON.parse(r.body.toString('utf8')).cpu;
      }
    } catch {
      errors++;
    }
  };
  const round = async (): Promise<void> => {
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(128, urls.length) }, async () => {
      while (next < urls.length) await get(next++);
    }));
  };
  await round();
  await round();
  const c0 = process.cpuUsage();
  const t0 = Date.now();
  let polls = 0;
  while (Date.now() - t0 < seconds * 1000) {
    const s = Date.now();
    await round();
    polls += urls.length;
    const wait = 1000 - (Date.now() - s);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  const c = process.cpuUsage(c0);
  const hwmMB = status('VmHWM');
  (globalThis as { gc?: () => void }).gc?.();
  const heapMB = process.memoryUsage().heapUsed / 1048576;
  const rssMB = status('VmRSS');
  await agent.close();
  pool.close();
  return { polls, errors, cpuUs: (c.user + c.system) / polls, hwmMB, heapMB, rssMB, sink };
}
process.on('disconnect', () => process.exit(0));
