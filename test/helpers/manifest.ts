/** A valid incident manifest for tests: a manual capture of `server` at `atMs` over prof_port, lasting 1 s. */
import type { IncidentManifest } from '../../src/store/manifest.js';

export function testManifest(server: string, atMs: number, over: Partial<IncidentManifest> = {}): IncidentManifest {
  return {
    version: 1,
    id: 'placeholder',
    server: { name: server, id: null, cluster: null, version: '2.10.27', tags: [], url: null },
    reason: 'manual',
    trigger: null,
    triggers: [],
    alert: null,
    note: null,
    via: 'prof_port',
    started_at: new Date(atMs).toISOString(),
    finished_at: new Date(atMs + 1000).toISOString(),
    status: 'ok',
    profiles: [],
    files: [],
    ...over,
  };
}
