/**
 * Data routes of the incident viewer (issue 14) that are not about profiles: a server's recent CPU and
 * memory from its sample ring. Read-only, under the same auth as the other GET /api/v1 routes.
 */
import type { Clock } from '../clock.js';
import type { Config } from '../config/types.js';
import type { Inventory } from '../watch/inventory.js';
import type { SampleRings } from '../watch/sample-ring.js';
import { HttpError, type Route } from './http-server.js';

export interface ViewerDataDeps {
  inventory: Inventory;
  samples: SampleRings;
  clock: Clock;
  config: () => Config;
}

export function viewerDataRoutes(d: ViewerDataDeps): Route[] {
  return [
    {
      method: 'GET',
      path: /^\/api\/v1\/servers\/([^/]+)\/samples$/,
      name: 'server_samples',
      access: 'read',
      handle: async ({ params }) => {
        const name = params[0] as string;
        const s = d.inventory.byLabel(name);
        // No list of the watched names here: with thousands of servers it would be the size of /api/v1/servers.
        if (!s) throw new HttpError(404, `unknown server "${name.slice(0, 100)}"; GET /api/v1/servers lists the watched servers`);
        const now = d.clock.now();
        return {
          status: 200,
          json: {
            server: s.label,
            // The expected time between two samples: a longer gap in `samples` means missed polls.
            interval_ms: Math.max(d.config().poll.intervalMs, d.samples.bucketMs),
            history_ms: d.samples.historyMs,
            samples: d.samples.samples(s.key, now).map((p) => ({ at: new Date(p.at).toISOString(), cpu: p.cpu, mem: p.mem })),
          },
        };
      },
    },
  ];
}
