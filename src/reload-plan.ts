/**
 * What a configuration reload changes, as a pure function of the running and the new config: the keys whose
 * change needs a restart (kept as they were), and the config that takes effect now.
 */
import type { Config } from './config/types.js';

export interface ReloadPlan {
  /** Keys whose change takes effect only after a restart, e.g. `http.listen`; [] when none changed. */
  readonly restartNeeded: readonly string[];
  /** The config to run with: `next`, except what cannot change without a restart. */
  readonly effective: Config;
  /** The system-account connection stays as it is (its settings did not change). */
  readonly sameConnection: boolean;
}

/** Everything that defines the system-account connection (secrets included, never logged). */
function connectionKey(c: Config['systemAccount']): string {
  if (!c) return '';
  return JSON.stringify([c.urls, c.user, c.password?.reveal(), c.token?.reveal(), c.creds, c.nkeySeed?.reveal(), c.tls, c.timeoutMs]);
}

export function planReload(prev: Config, next: Config): ReloadPlan {
  const restartNeeded: string[] = [];
  if (next.http.listen !== prev.http.listen) restartNeeded.push('http.listen');
  if (next.storage.dir !== prev.storage.dir) restartNeeded.push('storage.dir');
  if (JSON.stringify(next.http.tls) !== JSON.stringify(prev.http.tls)) restartNeeded.push('http.tls');
  const sameConnection = connectionKey(next.systemAccount) === connectionKey(prev.systemAccount);
  if (!sameConnection) restartNeeded.push('system_account (connection)');
  if (next.poll.intervalMs !== prev.poll.intervalMs || next.poll.timeoutMs !== prev.poll.timeoutMs || next.poll.maxBodyBytes !== prev.poll.maxBodyBytes || next.poll.maxInFlight !== prev.poll.maxInFlight) {
    restartNeeded.push('poll');
  }
  // The decoded-profile cache is sized when the profile worker starts; ui.history applies at once (the sample
  // rings are re-bucketed, keeping their points).
  if (next.ui.cacheSizeBytes !== prev.ui.cacheSizeBytes) restartNeeded.push('ui.cache_size');
  // Keep what cannot change without a restart; apply everything else.
  const effective: Config = {
    ...next,
    http: { ...prev.http, auth: next.http.auth, externalUrl: next.http.externalUrl },
    poll: prev.poll,
    // Discovery settings (discover, select, stall, forget_after, prof_urls) apply at once; the connection does not.
    systemAccount: sameConnection ? next.systemAccount : prev.systemAccount,
    storage: { ...next.storage, dir: prev.storage.dir },
    ui: { ...next.ui, cacheSizeBytes: prev.ui.cacheSizeBytes },
  };
  return { restartNeeded, effective, sameConnection };
}
