/**
 * A fake prof_port (a child process): Go's /debug/pprof/<profile> paths on one loopback port, each answering
 * the same large, valid heap profile (gzip-compressed protobuf, as Go writes it). The profile is generated
 * at start with pprof-format: random call stacks over many distinct functions, so it compresses like a
 * real one and decodes like one, at about `bytes` compressed.
 *
 * IPC: {type:'start', bytes} -> {type:'ready', port, bytes}; {type:'stats'} -> {type:'stats', requests}
 */
import { createServer } from 'node:http';
import { gzipSync } from 'node:zlib';
import { Function as PFunction, Line, Location, Profile, Sample, StringTable, ValueType } from 'pprof-format';
import { rng } from './docs.js';

function build(samples: number, seed: number): Buffer {
  const r = rng(seed);
  const st = new StringTable();
  const functions = Math.max(100, Math.floor(samples / 4));
  const fns: PFunction[] = [];
  const locs: Location[] = [];
  for (let i = 1; i <= functions; i++) {
    const pkg = ['server', 'jetstream', 'stree', 'avl', 'runtime', 'sync', 'encoding/json'][i % 7] as string;
    const name = `github.com/nats-io/nats-server/v2/${pkg}.(*t${Math.floor(r() * 1e9).toString(36)}).fn${i.toString(36)}`;
    fns.push(new PFunction({ id: i, name: st.dedup(name), systemName: st.dedup(name), filename: st.dedup(`${pkg}/f${i % 97}.go`) }));
    locs.push(new Location({ id: i, address: 0x400000 + i * 16, line: [new Line({ functionId: i, line: 1 + Math.floor(r() * 3000) })] }));
  }
  const sample: Sample[] = [];
  for (let i = 0; i < samples; i++) {
    const depth = 8 + Math.floor(r() * 24);
    const stack: number[] = [];
    for (let k = 0; k < depth; k++) stack.push(1 + Math.floor(r() * functions));
    const objs = 1 + Math.floor(r() * 5000);
    const bytes = objs * (16 + Math.floor(r() * 4096));
    sample.push(new Sample({ locationId: stack, value: [objs, bytes, Math.floor(objs / 3), Math.floor(bytes / 3)] }));
  }
  const vt = (t: string, u: string): ValueType => new ValueType({ type: st.dedup(t), unit: st.dedup(u) });
  const p = new Profile({
    sampleType: [vt('alloc_objects', 'count'), vt('alloc_space', 'bytes'), vt('inuse_objects', 'count'), vt('inuse_space', 'bytes')],
    sample,
    location: locs,
    function: fns,
    stringTable: st,
    periodType: vt('space', 'bytes'),
    period: 524288,
    timeNanos: Date.now() * 1e6,
  });
  // Go's runtime/pprof writes with gzip.BestSpeed.
  return gzipSync(p.encode(), { level: 1 });
}

/** A profile of about `bytes` (compressed): one small trial sets the scale, then the real build. */
export function profileOf(bytes: number, seed = 5): Buffer {
  const probe = 2000;
  const small = build(probe, seed);
  let samples = Math.max(10, Math.round((probe * bytes) / small.length));
  let out = build(samples, seed);
  if (Math.abs(out.length - bytes) / bytes > 0.05) {
    samples = Math.max(10, Math.round((samples * bytes) / out.length));
    out = build(samples, seed);
  }
  return out;
}

let requests = 0;

process.on('message', (m: { type: string; bytes?: number }) => {
  if (m.type === 'start') {
    try {
      const body = profileOf(m.bytes ?? 20 * 1024 * 1024);
      const server = createServer((req, res) => {
        requests++;
        if (!req.url?.startsWith('/debug/pprof/')) {
          res.writeHead(404).end('404 page not found\n');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-disposition': 'attachment; filename="profile"', 'content-length': body.length });
        res.end(body);
      });
      server.keepAliveTimeout = 0;
      server.listen(0, '127.0.0.1', () => process.send?.({ type: 'ready', port: (server.address() as { port: number }).port, bytes: body.length }));
    } catch (err) {
      process.send?.({ type: 'error', error: String(err) });
    }
  } else if (m.type === 'stats') {
    process.send?.({ type: 'stats', requests });
  }
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
