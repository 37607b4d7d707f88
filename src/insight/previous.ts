/**
 * The previous incident of the same server that has a given profile: what a new incident (capture time)
 * or an incident page (the API) is compared with by default. Reads the store's index only (each entry's
 * summary lists its files), never a manifest.
 */
import type { IncidentStore } from '../store/incident-store.js';
import { profileFileName } from '../store/naming.js';

/** Incidents looked at before giving up (the index is in memory; each one costs an lstat). */
export const MAX_SCANNED = 1000;
const PAGE = 100;

/**
 * Id of the newest incident of `server` older than `before` (newest overall without it) whose files include
 * `<profile>.pb.gz` (any incident without `profile`); null when there is none (or `before` is not listed).
 */
export async function previousIncident(
  store: Pick<IncidentStore, 'page'>,
  o: { server: string; profile: string | undefined; before: string | undefined },
): Promise<string | null> {
  const file = o.profile === undefined ? undefined : profileFileName(o.profile);
  let before = o.before;
  for (let scanned = 0; scanned < MAX_SCANNED; scanned += PAGE) {
    const page = await store.page({ server: o.server, ...(before !== undefined ? { before } : {}), limit: PAGE });
    if (!page) return null;
    const hit = page.incidents.find((e) => file === undefined || (e.summary?.files.includes(file) ?? false));
    if (hit) return hit.id;
    if (page.next === null) return null;
    before = page.next;
  }
  return null;
}
