/**
 * Reads a process's CPU time and memory from /proc (Linux): the benchmarks measure the daemon and each
 * baseline as separate processes, the same way, so their figures compare.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticks: number | undefined;

/** Clock ticks per second (utime/stime unit), from `getconf CLK_TCK`; 100 on every common kernel. */
export function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

export interface ProcSample {
  /** Monotonic wall clock (ms, performance.now()) when read. */
  at: number;
  /** utime + stime, seconds. */
  cpuSec: number;
  /** VmRSS, bytes. */
  rssBytes: number;
  /** VmHWM (peak RSS since start), bytes. */
  hwmBytes: number;
}

/** One reading; throws when the process is gone. */
export function readProc(pid: number): ProcSample {
  const at = performance.now();
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces; the fields after its closing parenthesis are fixed.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  };
  return { at, cpuSec: (utime + stime) / clockTicks(), rssBytes: kb('VmRSS'), hwmBytes: kb('VmHWM') };
}

/** CPU used between two readings as a share of one core (1 = one core busy). */
export function coreShare(a: ProcSample, b: ProcSample): number {
  const wall = (b.at - a.at) / 1000;
  return wall > 0 ? (b.cpuSec - a.cpuSec) / wall : 0;
}

/** Samples a process every `everyMs` and keeps the largest RSS seen (VmHWM is kept as well). */
export class RssWatcher {
  readonly #pid: number;
  readonly #timer: NodeJS.Timeout;
  maxRss = 0;
  last: ProcSample | undefined;

  constructor(pid: number, everyMs = 100) {
    this.#pid = pid;
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), everyMs);
  }

  #sample(): void {
    try {
      this.last = readProc(this.#pid);
      this.maxRss = Math.max(this.maxRss, this.last.rssBytes);
    } catch {
      // the process ended; keep what was seen
    }
  }

  /** Resets the running maximum (e.g. after warm-up). */
  reset(): void {
    this.maxRss = 0;
    this.#sample();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#sample();
  }
}
