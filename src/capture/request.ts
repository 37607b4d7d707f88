/** The value that flows from a decision (rule, API, alert, CLI) to the capturer. */
import type { ProfileName } from '../config/types.js';
import type { IncidentManifest, IncidentReason } from '../store/manifest.js';

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
  /** The varz document that led to the capture, saved as varz.json. */
  readonly varzBody: string | undefined;
}

export interface CaptureRequest {
  readonly target: CaptureTarget;
  readonly reason: IncidentReason;
  readonly trigger?: IncidentManifest['trigger'];
  readonly alert?: IncidentManifest['alert'];
  readonly note?: string;
  readonly profiles: readonly ProfileName[];
  readonly cpuDurationMs: number;
}
