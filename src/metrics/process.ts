/**
 * The daemon's own process metrics, in place of prom-client's collectDefaultMetrics: the same names for
 * the series operators use (CPU, resident memory, start time, file descriptors, heap, event-loop lag,
 * version), each read cheaply at scrape time. Left out, because they cost more than everything else in a
 * small daemon's scrape (BENCHMARKS.md, issue 19): the event-loop delay histogram (a 10 Hz timer, and its
 * stddev and percentiles walk the whole histogram at each scrape: ~0.75 ms), the per-GC observer and its
 * histogram, the heap-space breakdown, active handles/requests/resources, and the /proc/self/status read.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';
import { Counter, Gauge, type Registry } from 'prom-client';

function maxFds(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined; // not Linux
  }
}

/** Registers the process metrics in `registry`, names prefixed with `prefix`. */
export function registerProcessMetrics(registry: Registry, prefix: string): void {
  const registers = [registry];
  let lastCpu = { user: 0, system: 0 };
  const cpuUser: Counter = new Counter({
    name: `${prefix}process_cpu_user_seconds_total`, help: 'Total user CPU time spent in seconds.', registers,
    collect() {
      const now = process.cpuUsage();
      const user = (now.user - lastCpu.user) / 1e6;
      const system = (now.system - lastCpu.system) / 1e6;
      lastCpu = now;
      cpuUser.inc(user);
      cpuSystem.inc(system);
      cpuTotal.inc(user + system);
    },
  });
  const cpuSystem = new Counter({ name: `${prefix}process_cpu_system_seconds_total`, help: 'Total system CPU time spent in seconds.', registers });
  const cpuTotal = new Counter({ name: `${prefix}process_cpu_seconds_total`, help: 'Total user and system CPU time spent in seconds.', registers });
  const started = Math.round(Date.now() / 1000 - process.uptime());
  new Gauge({ name: `${prefix}process_start_time_seconds`, help: 'Start time of the process since unix epoch in seconds.', registers }).set(started);
  const rss: Gauge = new Gauge({
    name: `${prefix}process_resident_memory_bytes`, help: 'Resident memory size in bytes.', registers,
    collect: () => rss.set(process.memoryUsage.rss()),
  });
  let fdsReadable = true;
  const openFds: Gauge = new Gauge({
    name: `${prefix}process_open_fds`, help: 'Number of open file descriptors.', registers,
    collect() {
      if (!fdsReadable) return;
      try {
        // Linux 6.2+ reports the number of open descriptors as the directory's size: one stat (~7 µs) instead
        // of listing it (~26 µs); older kernels report 0 and the listing is read (one entry is readdir's own).
        const size = statSync('/proc/self/fd').size;
        openFds.set(size > 0 ? size : readdirSync('/proc/self/fd').length - 1);
      } catch {
        fdsReadable = false;
      }
    },
  });
  const max = maxFds();
  if (max !== undefined) new Gauge({ name: `${prefix}process_max_fds`, help: 'Maximum number of open file descriptors.', registers }).set(max);
  const heapTotal: Gauge = new Gauge({
    name: `${prefix}nodejs_heap_size_total_bytes`, help: 'Process heap size from Node.js in bytes.', registers,
    collect() {
      const h = getHeapStatistics();
      heapTotal.set(h.total_heap_size);
      heapUsed.set(h.used_heap_size);
      external.set(h.external_memory);
    },
  });
  const heapUsed = new Gauge({ name: `${prefix}nodejs_heap_size_used_bytes`, help: 'Process heap size used from Node.js in bytes.', registers });
  const external = new Gauge({ name: `${prefix}nodejs_external_memory_bytes`, help: 'Node.js external memory size in bytes.', registers });
  // Measured the cheap way: how long a setImmediate queued at one scrape waited (reported at the next).
  const lag: Gauge = new Gauge({
    name: `${prefix}nodejs_eventloop_lag_seconds`, help: 'Lag of event loop in seconds.', registers,
    collect() {
      const start = process.hrtime.bigint();
      setImmediate(() => lag.set(Number(process.hrtime.bigint() - start) / 1e9));
    },
  });
  const [major = '', minor = '', patch = ''] = process.versions.node.split('.');
  new Gauge({ name: `${prefix}nodejs_version_info`, help: 'Node.js version info.', labelNames: ['version', 'major', 'minor', 'patch'] as const, registers })
    .set({ version: process.version, major, minor, patch }, 1);
}
