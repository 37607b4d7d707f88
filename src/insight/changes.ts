/**
 * Capture time: what grew since the previous incident of the same server and profile (`profiles[].changes`).
 * The previous profile is found from the store's index and compared in the profile worker thread, under a
 * short timeout of its own; any problem answers null, so a capture never fails or waits long because of it.
 */
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { IncidentStore } from '../store/incident-store.js';
import type { ProfileChange } from '../store/manifest.js';
import { profileFileName } from '../store/naming.js';
import { previousIncident } from './previous.js';
import type { ProfileInput, ProfileWorker } from './profile-worker.js';

/** (server, profile, the new profile) -> changes, or null when there is nothing to compare with or it failed. */
export type FindChanges = (server: string, profile: string, input: ProfileInput) => Promise<ProfileChange[] | null>;

export interface ChangesOptions {
  store: Pick<IncidentStore, 'page' | 'read' | 'resolveFile'>;
  worker: Pick<ProfileWorker, 'growth'>;
  /** The worker job's bound (it is stopped after it). Default 5 s. */
  timeoutMs?: number;
  /** A previous profile larger than this is not decoded (the same bound as the manifest's summary). */
  maxBytes: number;
  /** Where a comparison that failed is told (at warn; it is never thrown). */
  log?: Logger;
}

export function changesFinder(o: ChangesOptions): FindChanges {
  const timeoutMs = o.timeoutMs ?? 5_000;
  return async (server, profile, input) => {
    let previous = '';
    try {
      const id = await previousIncident(o.store, { server, profile, before: undefined });
      if (id === null) return null;
      previous = id;
      const file = profileFileName(profile);
      const m = await o.store.read(id);
      const r = m?.profiles.find((p) => p.name === profile && p.file === file);
      const path = r && r.bytes <= o.maxBytes ? await o.store.resolveFile(id, file) : undefined;
      if (path === undefined) return null;
      return await o.worker.growth({ path }, input, { timeoutMs });
    } catch (err) {
      o.log?.warn({ server, profile, previous, err: describeError(err) }, 'could not compare the profile with the previous incident; its changes are left out');
      return null;
    }
  };
}
