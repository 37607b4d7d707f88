/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`, e.g. a benchmark run with --cpu-prof DIR): the
 * functions with the most self time, and the most inclusive time, with file:line.
 *
 *   node --import tsx bench/profile-top.ts DIR/CPU.*.cpuprofile [--top 25] [--filter src/]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface Entry {
  fn: string;
  self: number;
  total: number;
}

function where(n: Node): string {
  const url = n.callFrame.url.replace(/^file:\/\//, '').replace(/^.*\/(dist|node_modules)\//, '$1/');
  const name = n.callFrame.functionName || '(anonymous)';
  return url ? `${name} ${url}:${n.callFrame.lineNumber + 1}` : name;
}

/** Self and inclusive time (ms) per function, from the sample timeline. */
export function summarise(p: Profile): { entries: Entry[]; totalMs: number } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfUs = new Map<number, number>();
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i] as number;
    // the time until the next sample is attributed to this one
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, (deltas[i + 1] ?? 0)));
  }
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id) as Node;
    const k = where(n);
    self.set(k, (self.get(k) ?? 0) + us);
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const key = where(byId.get(cur) as Node);
      if (seen.has(key)) continue;
      seen.add(key);
      total.set(key, (total.get(key) ?? 0) + us);
    }
  }
  const entries = [...total.keys()].map((fn) => ({ fn, self: (self.get(fn) ?? 0) / 1000, total: (total.get(fn) ?? 0) / 1000 }));
  return { entries, totalMs: (p.endTime - p.startTime) / 1000 };
}

function main(): void {
  process.stdout.on('error', () => process.exit(0));
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' }, filter: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help || positionals.length === 0) {
    (values.help ? process.stdout : process.stderr).write(
      'Usage: node --import tsx bench/profile-top.ts FILE.cpuprofile... [options]\n\nOptions:\n' +
        '  -h, --help      print this help and exit\n' +
        '  --top K         how many functions per list (default: 25)\n' +
        '  --filter TEXT   only functions whose name or file contains TEXT, e.g. src/ (default: all)\n',
    );
    process.exit(values.help ? 0 : 2);
  }
  const top = Number(values.top);
  for (const file of positionals) {
    const { entries, totalMs } = summarise(JSON.parse(readFileSync(file, 'utf8')) as Profile);
    const busy = entries.filter((e) => !/^\((idle|program|garbage collector)\)/.test(e.fn)).reduce((a, e) => a + e.self, 0);
    const f = values.filter;
    const pick = f ? entries.filter((e) => e.fn.includes(f)) : entries;
    const pct = (v: number): string => `${((100 * v) / busy).toFixed(1).padStart(5)}%`;
    process.stdout.write(`${file}: ${(totalMs / 1000).toFixed(1)} s profiled, ${(busy / 1000).toFixed(2)} s busy (not idle)\n`);
    process.stdout.write('\nself time (share of busy):\n');
    for (const e of [...pick].sort((a, b) => b.self - a.self).slice(0, top)) process.stdout.write(`  ${pct(e.self)}  ${e.self.toFixed(0).padStart(7)} ms  ${e.fn}\n`);
    process.stdout.write('\ninclusive time (share of busy):\n');
    for (const e of [...pick].filter((e) => !e.fn.startsWith('(')).sort((a, b) => b.total - a.total).slice(0, top)) {
      process.stdout.write(`  ${pct(e.total)}  ${e.total.toFixed(0).padStart(7)} ms  ${e.fn}\n`);
    }
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() as string)) main();
