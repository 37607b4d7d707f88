/**
 * Which incidents to delete. Pure: the store lists, this decides, the store deletes.
 */

export interface RetentionPolicy {
  /** Keep at most this many incidents per server (Infinity: no limit). */
  readonly maxIncidentsPerServer: number;
  /** Keep the sum of incident sizes at or below this (Infinity: no limit). */
  readonly maxTotalSizeBytes: number;
  /** Delete incidents that started more than this long before now (Infinity: no limit). */
  readonly maxAgeMs: number;
}

export interface RetentionItem {
  readonly id: string;
  /** Grouping key for the per-server count (the store passes the server directory name). */
  readonly server: string;
  readonly startedAtMs: number;
  readonly bytes: number;
}

export type RetentionReason = 'age' | 'count' | 'size';

export interface RetentionPlan {
  /** Oldest first, in the order the rules decided them (age, then count, then size). */
  delete: { id: string; reason: RetentionReason }[];
  keptBytes: number;
  keptIncidents: number;
}

function oldestFirst(a: RetentionItem, b: RetentionItem): number {
  if (a.startedAtMs !== b.startedAtMs) return a.startedAtMs - b.startedAtMs;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * Oldest go first: every incident older than maxAgeMs; then, per server, the oldest beyond
 * maxIncidentsPerServer; then, across all servers, the oldest until the total size is at most
 * maxTotalSizeBytes. A protected id is never deleted, but it still counts toward the per-server
 * count and the total size (so the limits may stay exceeded when protected incidents alone exceed them).
 * Ties in start time are broken by id, so the plan is deterministic.
 */
export function planRetention(
  incidents: readonly RetentionItem[],
  policy: RetentionPolicy,
  nowMs: number,
  protect: ReadonlySet<string> = new Set(),
): RetentionPlan {
  const sorted = [...incidents].sort(oldestFirst);
  const deleted = new Set<string>();
  const plan: RetentionPlan['delete'] = [];
  const drop = (item: RetentionItem, reason: RetentionReason): void => {
    deleted.add(item.id);
    plan.push({ id: item.id, reason });
  };

  for (const item of sorted) {
    if (!protect.has(item.id) && nowMs - item.startedAtMs > policy.maxAgeMs) drop(item, 'age');
  }

  const byServer = new Map<string, RetentionItem[]>();
  for (const item of sorted) {
    if (deleted.has(item.id)) continue;
    let list = byServer.get(item.server);
    if (!list) byServer.set(item.server, (list = []));
    list.push(item);
  }
  const countVictims: RetentionItem[] = [];
  for (const list of byServer.values()) {
    let excess = list.length - Math.max(0, policy.maxIncidentsPerServer);
    for (const item of list) {
      if (excess <= 0) break;
      if (protect.has(item.id)) continue;
      countVictims.push(item);
      excess--;
    }
  }
  // Report count deletions oldest first across servers, not grouped by Map order.
  for (const item of countVictims.sort(oldestFirst)) drop(item, 'count');

  let total = 0;
  for (const item of sorted) if (!deleted.has(item.id)) total += item.bytes;
  for (const item of sorted) {
    if (total <= policy.maxTotalSizeBytes) break;
    if (deleted.has(item.id) || protect.has(item.id)) continue;
    drop(item, 'size');
    total -= item.bytes;
  }

  return { delete: plan, keptBytes: total, keptIncidents: sorted.length - deleted.size };
}
