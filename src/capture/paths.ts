/**
 * Which way a profile can be taken from a server (pure): the system account when it is configured and the
 * server's version supports the profile, else prof_port when the server has a prof_url.
 */
import type { CaptureVia, ProfileName } from '../config/types.js';

export type Path = 'system_account' | 'prof_port';

/** Parses `2.10.27`, `v2.11.0-RC.1`; undefined when unreadable. */
export function parseVersion(v: string | undefined): [number, number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(v ?? '');
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

export function versionAtLeast(v: string | undefined, min: [number, number, number]): boolean {
  const p = parseVersion(v);
  if (!p) return false;
  for (let i = 0; i < 3; i++) {
    const a = p[i] as number;
    const b = min[i] as number;
    if (a !== b) return a > b;
  }
  return true;
}

/** PROFILEZ answers from 2.10.0; `cpu` with a duration from 2.10.19. */
export function profilezSupports(profile: ProfileName, version: string | undefined): boolean {
  return versionAtLeast(version, profile === 'cpu' ? [2, 10, 19] : [2, 10, 0]);
}

export interface PathTarget {
  serverId: string | undefined;
  version: string | undefined;
  profUrl: string | undefined;
}

export type PathChoice = { ok: true; via: Path } | { ok: false; why: string };

/** `none`: not configured; `down`: configured but not connected right now; `up`: connected. */
export type SystemAccountState = 'none' | 'down' | 'up';

export function choosePath(profile: ProfileName, t: PathTarget, via: CaptureVia, sys: SystemAccountState): PathChoice {
  const sysCan = sys !== 'none' && t.serverId !== undefined && profilezSupports(profile, t.version);
  // While the connection is down, auto prefers prof_port; without one it still tries (and records the error).
  const sysOk = sysCan && (sys === 'up' || via === 'system_account' || !t.profUrl);
  const sysWhy = sys === 'none'
    ? 'no system_account is configured'
    : t.serverId === undefined
      ? 'the server has not been seen yet (no server_id)'
      : `server version ${t.version ?? 'unknown'} cannot give "${profile}" through PROFILEZ (needs ${profile === 'cpu' ? '2.10.19' : '2.10.0'} or newer)`;
  if (via === 'system_account') return sysOk ? { ok: true, via: 'system_account' } : { ok: false, why: sysWhy };
  if (via === 'prof_port') return t.profUrl ? { ok: true, via: 'prof_port' } : { ok: false, why: 'the server has no prof_url' };
  if (sysOk) return { ok: true, via: 'system_account' };
  if (t.profUrl) return { ok: true, via: 'prof_port' };
  return { ok: false, why: `${sysWhy}, and the server has no prof_url` };
}
