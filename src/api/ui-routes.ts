/**
 * The incident viewer's static page: `/` and `/ui` redirect to `/ui/`, `/ui/` is the page, `/ui/assets/*` its
 * script modules and style sheet. None of it carries data (the page asks /api/v1 with the token the user
 * types), so these routes are open. Every answer says nosniff and a Content-Security-Policy that allows
 * scripts and styles from this origin only (no inline script, no eval), so a function name from a watched
 * binary can never run as code even if it reached the DOM as markup.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { HttpError, type Reply, type Route } from './http-server.js';
import { INDEX_HTML, STYLE_CSS } from './ui/shell.js';

export const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': UI_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/** Versioned asset URLs never change content: cached for a year. The page itself is always revalidated. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
const REVALIDATE = 'no-cache';

export interface UiRoutesOptions {
  /** Where the compiled page modules are (default: ui/assets next to this file, i.e. dist/api/ui/assets). */
  assetsDir?: string;
}

interface Asset {
  body: Buffer;
  contentType: string;
}

function staticReply(body: Buffer, contentType: string, cacheControl: string): Reply {
  return {
    status: 200,
    // Readable.from(Buffer) emits the buffer as one chunk.
    stream: Readable.from(body),
    size: body.length,
    contentType,
    headers: { ...SECURITY_HEADERS, 'cache-control': cacheControl },
  };
}

export function uiRoutes(o: UiRoutesOptions = {}): Route[] {
  const dir = o.assetsDir ?? join(import.meta.dirname, 'ui', 'assets');
  const assets = new Map<string, Asset>([['style.css', { body: Buffer.from(STYLE_CSS), contentType: 'text/css; charset=utf-8' }]]);
  let version: Promise<string> | undefined;

  async function asset(name: string): Promise<Asset | undefined> {
    const known = assets.get(name);
    if (known) return known;
    if (!name.endsWith('.js')) return undefined;
    let body: Buffer;
    try {
      body = await readFile(join(dir, name));
    } catch {
      return undefined;
    }
    // The build output does not change while the daemon runs: read each module once.
    const a = { body, contentType: 'text/javascript; charset=utf-8' };
    assets.set(name, a);
    return a;
  }

  /** A digest of every asset: it names the asset folder in the page, so a new build is fetched at once. */
  function assetVersion(): Promise<string> {
    version ??= (async () => {
      const h = createHash('sha256').update(STYLE_CSS);
      let names: string[] = [];
      try {
        names = (await readdir(dir)).filter((n) => n.endsWith('.js')).sort();
      } catch {
        // No built page (the daemon run from source): the page will say its script failed to load.
      }
      for (const n of names) h.update(n).update((await asset(n))?.body ?? Buffer.alloc(0));
      return `v-${h.digest('hex').slice(0, 12)}`;
    })();
    return version;
  }

  const redirect = async (): Promise<Reply> => ({ status: 302, json: { location: '/ui/' }, headers: { location: '/ui/', 'cache-control': REVALIDATE } });

  return [
    { method: 'GET', path: /^\/$/, name: 'ui_redirect', access: 'open', handle: redirect },
    { method: 'GET', path: /^\/ui$/, name: 'ui_redirect', access: 'open', handle: redirect },
    {
      method: 'GET',
      path: /^\/ui\/(?:index\.html)?$/,
      name: 'ui',
      access: 'open',
      handle: async () => {
        const html = INDEX_HTML.replaceAll('{{ASSETS}}', `/ui/assets/${await assetVersion()}`);
        return staticReply(Buffer.from(html), 'text/html; charset=utf-8', REVALIDATE);
      },
    },
    {
      method: 'GET',
      path: /^\/ui\/assets\/(?:(v-[0-9a-f]{12})\/)?([a-z0-9-]+\.(?:js|css))$/,
      name: 'ui_asset',
      access: 'open',
      handle: async ({ params }) => {
        const [v, name] = params as [string, string];
        const a = await asset(name);
        if (!a) throw new HttpError(404, `no such asset: ${name}`);
        // Only the current version may be cached for good; an old page asking for an old version gets today's file.
        const cache = v !== '' && v === (await assetVersion()) ? IMMUTABLE : REVALIDATE;
        return staticReply(a.body, a.contentType, cache);
      },
    },
  ];
}
