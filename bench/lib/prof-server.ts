/**
 * A fake prof_port (a child process): Go's /debug/pprof/<profile> paths on one loopback port, each answering
 * the same large, valid heap profile (gzip-compressed protobuf, as Go writes it). The profile is generated
 * at start with pprof-format: random call stacks over many distinct functions, so it compresses like a
 * real one and decodes like one, at about `bytes` compressed.
 *
 * shape 'go' (issue 14's benchmarks): a heap profile shaped like Go's instead of random stacks, sized by its
 * UNCOMPRESSED length (`bytes`): a few thousand functions, distinct stacks that share prefixes (a call tree
 * walked depth first, 5-50 frames deep, some inlined frames), Go's four heap sample types and its `bytes`
 * numeric label per sample. Random stacks (the default shape) share no prefix, which no real profile does,
 * and make a flame graph of millions of nodes.
 *
 * IPC: {type:'start', bytes, shape?} -> {type:'ready', port, bytes, rawBytes}; {type:'stats'} -> {type:'stats', requests}
 */
import { createServer } from 'node:http';
import { gzipSync } from 'node:zlib';
import { Function as PFunction, Label, Line, Location, Profile, Sample, StringTable, ValueType } from 'pprof-format';
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
  const p = heapProfile(st, sample, locs, fns);
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

/** Go-like heap profile (see the header) of `samples` samples; returns the uncompressed protobuf. */
export function goHeapProfile(samples: number, seed = 14): Uint8Array {
  const r = rng(seed);
  const st = new StringTable();
  const FUNCTIONS = 4000;
  const fns: PFunction[] = [];
  for (let i = 0; i < FUNCTIONS; i++) {
    const pkg = ['runtime', 'github.com/nats-io/nats-server/v2/server', 'github.com/nats-io/nats-server/v2/server/stree', 'sync', 'encoding/json'][i % 5] as string;
    const name = st.dedup(`${pkg}.(*T${i % 97}).method${i}`);
    fns.push(new PFunction({ id: i + 1, name, systemName: name, filename: st.dedup(`${pkg}/file${i % 50}.go`) }));
  }
  const locs = fns.map(
    (f, i) =>
      new Location({
        id: i + 1,
        address: 0x400000 + i * 16,
        line: i % 10 === 0 ? [new Line({ functionId: ((i + 1) % FUNCTIONS) + 1, line: 7 }), new Line({ functionId: f.id, line: 3 })] : [new Line({ functionId: f.id, line: 3 })],
      }),
  );
  const bytesKey = st.dedup('bytes');
  const sample: Sample[] = [];
  const path: number[] = [];
  for (let i = 0; i < 5; i++) path.push(1 + Math.floor(r() * 20));
  for (let s = 0; s < samples; s++) {
    const back = Math.min(path.length - 5, Math.floor(r() * r() * 4));
    path.length -= back;
    if (path.length < 50) path.push(r() < 0.8 ? 1 + Math.floor(r() * 400) : 1 + Math.floor(r() * FUNCTIONS));
    else path[path.length - 1] = 1 + Math.floor(r() * FUNCTIONS);
    const size = 16 << Math.floor(r() * 10);
    const objs = 1 + Math.floor(r() * 5000);
    const live = Math.floor(objs * r() * 0.5);
    sample.push(
      new Sample({
        locationId: [...path].reverse(),
        value: [objs, objs * size, live, live * size],
        label: [new Label({ key: bytesKey, num: size })],
      }),
    );
  }
  return heapProfile(st, sample, locs, fns).encode();
}

/** A profile with Go's four heap sample types and its sampling period. */
function heapProfile(st: StringTable, sample: Sample[], location: Location[], fns: PFunction[]): Profile {
  const vt = (t: string, u: string): ValueType => new ValueType({ type: st.dedup(t), unit: st.dedup(u) });
  return new Profile({
    sampleType: [vt('alloc_objects', 'count'), vt('alloc_space', 'bytes'), vt('inuse_objects', 'count'), vt('inuse_space', 'bytes')],
    sample,
    location,
    function: fns,
    stringTable: st,
    periodType: vt('space', 'bytes'),
    period: 524288,
    timeNanos: Date.now() * 1e6,
  });
}

/** A Go-like heap profile of about `rawBytes` uncompressed: a small probe sets the scale. Returns both forms. */
export function goHeapProfileOf(rawBytes: number): { raw: Uint8Array; gz: Buffer } {
  const probe = 5000;
  let samples = Math.max(10, Math.round((probe * rawBytes) / goHeapProfile(probe).byteLength));
  let raw = goHeapProfile(samples);
  // The function and location tables are a fixed part the probe overstates: correct once.
  if (Math.abs(raw.byteLength - rawBytes) / rawBytes > 0.03) {
    samples = Math.max(10, Math.round((samples * rawBytes) / raw.byteLength));
    raw = goHeapProfile(samples);
  }
  return { raw, gz: gzipSync(raw, { level: 1 }) };
}

let requests = 0;

process.on('message', (m: { type: string; bytes?: number; shape?: 'random' | 'go' }) => {
  if (m.type === 'start') {
    try {
      let body: Buffer;
      let rawBytes: number | undefined;
      if (m.shape === 'go') {
        const p = goHeapProfileOf(m.bytes ?? 20 * 1024 * 1024);
        body = p.gz;
        rawBytes = p.raw.byteLength;
      } else {
        body = profileOf(m.bytes ?? 20 * 1024 * 1024);
      }
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
      server.listen(0, '127.0.0.1', () => process.send?.({ type: 'ready', port: (server.address() as { port: number }).port, bytes: body.length, rawBytes }));
    } catch (err) {
      process.send?.({ type: 'error', error: String(err) });
    }
  } else if (m.type === 'stats') {
    process.send?.({ type: 'stats', requests });
  }
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
