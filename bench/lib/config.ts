/** Daemon configurations for the benchmarks (YAML text with {{PORT}} and {{DIR}} placeholders). */

export interface ServerEntry {
  url: string;
  name?: string;
  profUrl?: string;
}

/** Typical fleet rules; the simulators' quiet values (cpu ≤ 25 %, mem < 1 GiB) never fire them. */
export const FLEET_RULES = `triggers:
  - { name: high-cpu, metric: cpu, above: 80, for: 15s, rearm_below: 60, profiles: [cpu, allocs] }
  - { name: high-memory, metric: mem, above: 1GiB, for: 30s, profiles: [heap, allocs] }
`;

/**
 * Five rules on varz fields (issue 15; `--field-rules`): two counter rates, two gauges, one escalating. The
 * levels are beyond what the simulators report, so they never fire: the figure is the cost of reading and
 * stepping them on every poll.
 */
export const FIELD_RULES = `triggers:
  - { name: slow-consumers, metric: slow_consumers, rate: 1m, above: 0, profiles: [goroutine, cpu] }
  - { name: msgs-in, metric: in_msgs, rate: 1m, above: 1e15, profiles: [cpu] }
  - { name: connection-surge, metric: connections, above: 1e9, profiles: [goroutine], escalate: 50% }
  - { name: subscriptions, metric: subscriptions, above: 1e9, profiles: [heap] }
  - { name: jetstream-memory, metric: jetstream.stats.memory, above: 1000TiB, profiles: [heap, allocs] }
`;

export function ms(v: number): string {
  return `${Math.round(v)}ms`;
}

export function daemonConfig(o: {
  servers: ServerEntry[];
  intervalMs: number;
  timeoutMs: number;
  triggers?: string;
  /** Extra top-level YAML (capture:, system_account:, ...). */
  extra?: string;
  level?: string;
  /** Replaces the default `storage: { dir: "{{DIR}}/profiles" }` line. */
  storage?: string;
  /** poll.max_in_flight (omitted: the daemon's default). */
  maxInFlight?: number | undefined;
}): string {
  const servers =
    o.servers.length === 0
      ? ''
      : `servers:\n${o.servers
          .map((s) => `  - { url: "${s.url}"${s.name ? `, name: ${s.name}` : ''}${s.profUrl ? `, prof_url: "${s.profUrl}"` : ''} }`)
          .join('\n')}\n`;
  return `log: { level: ${o.level ?? 'info'} }
http: { listen: "127.0.0.1:{{PORT}}" }
poll: { interval: ${ms(o.intervalMs)}, timeout: ${ms(o.timeoutMs)}${o.maxInFlight ? `, max_in_flight: ${o.maxInFlight}` : ''} }
${o.storage ?? 'storage: { dir: "{{DIR}}/profiles" }'}
${servers}${o.triggers ?? FLEET_RULES}${o.extra ?? ''}`;
}
