/**
 * V8 heap sizing for a long-running daemon. V8 grows the old generation by a factor chosen for throughput
 * (up to 2× the live size after each major GC); a daemon whose live set is a few MB per hundred servers
 * then carries tens of MB of garbage between collections. Growing by 1.5× at most keeps RSS near the live
 * set at the cost of more frequent (small) major GCs: measured in BENCHMARKS.md (issue 19, memory; issue 16,
 * peak RSS at N=5000). Set at run time, before the daemon allocates, so operators need no node flag; an
 * operator's own `--heap-growing-percent` (node flag or NODE_OPTIONS) wins.
 */
import { setFlagsFromString } from 'node:v8';

export const HEAP_GROWING_PERCENT = 50;

/** Applies the daemon's heap growth limit unless the operator set one (main passes process.execArgv and NODE_OPTIONS). Returns the flag applied, if any. */
export function tuneHeap(execArgv: readonly string[], nodeOptions: string): string | undefined {
  const own = (s: string): boolean => /--heap[-_]growing[-_]percent/.test(s);
  if (execArgv.some(own) || own(nodeOptions)) return undefined;
  const flag = `--heap-growing-percent=${HEAP_GROWING_PERCENT}`;
  setFlagsFromString(flag);
  return flag;
}
