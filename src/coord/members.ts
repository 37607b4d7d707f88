/**
 * The live member list, from what the KV bucket shows at each heartbeat. JetStream removes an entry some
 * time after its TTL (the server's expiry timer runs late by up to about a second), so an entry alone does
 * not prove life: a member is live while its entry's revision keeps changing, judged on this replica's own
 * monotonic clock (no comparison of clocks across machines). Pure: the caller passes `now`.
 */
export class MemberTracker {
  readonly #seen = new Map<string, { rev: number; changedAt: number }>();

  /**
   * `entries`: member name -> latest revision, as read now. Returns the live members, sorted. A member seen
   * for the first time is live; one whose revision has not moved for `leaseTtlMs` is not.
   */
  update(entries: ReadonlyMap<string, number>, now: number, leaseTtlMs: number): string[] {
    for (const name of [...this.#seen.keys()]) if (!entries.has(name)) this.#seen.delete(name);
    const live: string[] = [];
    for (const [name, rev] of entries) {
      const s = this.#seen.get(name);
      if (s === undefined || s.rev !== rev) this.#seen.set(name, { rev, changedAt: now });
      const changedAt = (this.#seen.get(name) as { changedAt: number }).changedAt;
      if (now - changedAt < leaseTtlMs) live.push(name);
    }
    return live.sort();
  }
}

/** Whether two sorted member lists differ. */
export function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((m, i) => m === b[i]);
}
