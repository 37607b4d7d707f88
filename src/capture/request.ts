/** The value that flows from a decision (rule, API, alert, CLI) to the capturer. */
import type { ProfileName } from '../config/types.js';
import type { IncidentManifest, IncidentReason, TriggerRecord } from '../store/manifest.js';
import { snapshotOf, type WatchedServer } from '../watch/inventory.js';

export interface CaptureTarget {
  /** Inventory key (monitoring URL, or server_id for discovered servers). */
  readonly key: string;
  /** The `server` label and directory name source. */
  readonly label: string;
  readonly serverId: string | undefined;
  readonly version: string | undefined;
  readonly cluster: string | undefined;
  readonly tags: readonly string[];
  readonly url: string | undefined;
  readonly profUrl: string | undefined;
  /** The document that led to the capture: varz (saved as varz.json) or a STATSZ reply (statsz.json). */
  readonly snapshot: { readonly kind: 'varz' | 'statsz'; readonly body: string | Uint8Array } | undefined;
}

export interface CaptureRequest {
  readonly target: CaptureTarget;
  readonly reason: IncidentReason;
  /** The first (primary) rule that fired. */
  readonly trigger?: IncidentManifest['trigger'];
  /** Every rule that fired on the same observation, `trigger` first; `profiles` is the union of theirs. */
  readonly triggers?: readonly TriggerRecord[];
  readonly alert?: IncidentManifest['alert'];
  readonly note?: string;
  readonly profiles: readonly ProfileName[];
  readonly cpuDurationMs: number;
}

/** What the capturer needs to know about a watched server, from the inventory's latest reading. */
export function targetOf(s: WatchedServer): CaptureTarget {
  const v = s.last?.varz;
  return {
    key: s.key,
    label: s.label,
    serverId: v?.serverId,
    version: v?.version,
    cluster: v?.cluster,
    tags: v?.tags ?? [],
    url: s.config?.url,
    profUrl: s.profUrl,
    snapshot: s.last ? snapshotOf(s.last) : undefined,
  };
}
