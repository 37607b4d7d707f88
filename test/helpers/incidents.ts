/** Reading incidents written by the daemon, for assertions. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IncidentManifest } from '../../src/store/manifest.js';

export interface FoundIncident {
  dir: string;
  manifest: IncidentManifest;
}

/** Complete incidents (not .tmp-*) under `<root>/<server>/`. */
export function incidents(root: string, server?: string): FoundIncident[] {
  if (!existsSync(root)) return [];
  const out: FoundIncident[] = [];
  for (const s of readdirSync(root)) {
    if (s.startsWith('.') || (server !== undefined && s !== server)) continue;
    const sdir = join(root, s);
    for (const d of readdirSync(sdir)) {
      if (d.startsWith('.')) continue;
      const dir = join(sdir, d);
      out.push({ dir, manifest: JSON.parse(readFileSync(join(dir, 'incident.json'), 'utf8')) as IncidentManifest });
    }
  }
  return out.sort((a, b) => a.manifest.started_at.localeCompare(b.manifest.started_at));
}

/** Every entry (files and dirs, hidden included) below root, relative. */
export function tree(root: string): string[] {
  if (!existsSync(root)) return [];
  const out: string[] = [];
  const walk = (dir: string, rel: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(r);
      if (e.isDirectory()) walk(join(dir, e.name), r);
    }
  };
  walk(root, '');
  return out.sort();
}
