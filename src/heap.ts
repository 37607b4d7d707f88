/**
 * V8 heap sizing for a long-running daemon. V8 sets the old generation's next limit by a factor it chooses
 * for throughput (up to 4× the live size after a major GC); with thousands of servers the daemon then carries
 * hundreds of MB of garbage between collections. A fixed factor of 2 (`--heap-growing-percent=100`) took the
 * peak RSS at 5,000 servers from 412-436 MB to 269-276 MB; 1.5 then cost ~20 % more CPU per poll in more
 * frequent major GCs, while every poll left garbage in the old generation (BENCHMARKS.md, issue 16, second
 * round). Now that a poll leaves almost nothing there (fifth round), 1.25 (`=25`) costs the polling no
 * measurable CPU and takes the peak at 5,000 servers from ~170 to ~142 MB; what it costs is in the profile
 * worker, which decodes large profiles: ~15 % more time per flame graph of a 20 MB profile (the flag is the
 * process's, not one isolate's). Set at run time, before the daemon allocates, so operators need no node
 * flag; an operator's own `--heap-growing-percent` (node flag or NODE_OPTIONS) wins.
 */
import { setFlagsFromString } from 'node:v8';

export const HEAP_GROWING_PERCENT = 25;

/** Applies the daemon's heap growth limit unless the operator set one (main passes process.execArgv and NODE_OPTIONS). Returns the flag applied, if any. */
export function tuneHeap(execArgv: readonly string[], nodeOptions: string): string | undefined {
  const own = (s: string): boolean => /--heap[-_]growing[-_]percent/.test(s);
  if (execArgv.some(own) || own(nodeOptions)) return undefined;
  const flag = `--heap-growing-percent=${HEAP_GROWING_PERCENT}`;
  setFlagsFromString(flag);
  return flag;
}
