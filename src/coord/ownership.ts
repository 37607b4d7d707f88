/**
 * Which live replica owns which watched server: rendezvous (highest-random-weight) hashing. Each server goes
 * to the member with the highest hash of (member, server); a member joining takes only the servers it now
 * scores highest on, and a member leaving hands only its own servers to the next-highest. No state, no
 * coordination beyond agreeing on the member list. Pure: no I/O, no clock.
 */

/**
 * A 53-bit string hash (cyrb53: two 32-bit multiply-xorshift lanes). Not cryptographic; well spread, fast,
 * and the same in every replica, which is all that ranking needs.
 */
export function hash53(text: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** The owner of `server` among `members` (undefined when there is none). Ties go to the smaller name. */
export function ownerOf(server: string, members: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = -1;
  for (const m of members) {
    const score = hash53(`${m}\u0000${server}`);
    if (score > bestScore || (score === bestScore && best !== undefined && m < best)) {
      best = m;
      bestScore = score;
    }
  }
  return best;
}

/** The servers of `servers` that `member` owns. */
export function ownedBy(member: string, servers: Iterable<string>, members: readonly string[]): string[] {
  const out: string[] = [];
  for (const s of servers) if (ownerOf(s, members) === member) out.push(s);
  return out;
}

/** A short, KV-key-safe token for a server key (a monitoring URL holds characters KV keys do not allow). */
export function serverToken(server: string): string {
  return hash53(server).toString(16).padStart(14, '0');
}
