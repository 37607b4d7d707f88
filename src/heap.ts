/**
 * V8 heap sizing for a long-running daemon. V8 sets the old generation's next limit by a factor it chooses
 * for throughput (up to 4× the live size after a major GC); with thousands of servers the daemon then carries
 * hundreds of MB of garbage between collections. A fixed factor of 2 (`--heap-growing-percent=100`) took the
 * peak RSS at 5,000 servers from 412-436 MB to 269-276 MB; 1.5 (`=50`) to 236-250 MB, but cost ~20 % more CPU
 * per poll in more frequent major GCs (BENCHMARKS.md, issue 16, second round). Set at run time, before the
 * daemon allocates, so operators need no node flag; an operator's own `--heap-growing-percent` (node flag or
 * NODE_OPTIONS) wins.
 */
import { setFlagsFromString } from 'node:v8';

export const HEAP_GROWING_PERCENT = 100;

/** Applies the daemon's heap growth limit unless the operator set one (main passes process.execArgv and NODE_OPTIONS). Returns the flag applied, if any. */
export function tuneHeap(execArgv: readonly string[], nodeOptions: string): string | undefined {
  const own = (s: string): boolean => /--heap[-_]growing[-_]percent/.test(s);
  if (execArgv.some(own) || own(nodeOptions)) return undefined;
  const flag = `--heap-growing-percent=${HEAP_GROWING_PERCENT}`;
  setFlagsFromString(flag);
  return flag;
}
