/** One incident: what fired and the server's state at that moment, then one tab per captured profile. */
import { ApiError, call, enc, getJson, type Manifest, type TriggerRecord } from './api.js';
import { append, bytes, duration, h, route, time } from './dom.js';
import { profileTab, type ProfileTab } from './profile.js';
import { metricValue } from './rules.js';
import { errorMessage, statusLine, type ViewContext } from './view.js';

function firedLine(t: TriggerRecord): HTMLElement {
  const rate = t.rate_ms ? ` (per second over ${duration(t.rate_ms)})` : '';
  return h(
    'li',
    { class: 'fired' },
    h('strong', {}, t.name),
    `: ${t.metric}${rate} was `,
    h('strong', { class: 'bad' }, metricValue(t.metric, t.value)),
    ` against a threshold of ${metricValue(t.metric, t.above)}`,
    t.for_ms > 0 ? `, for ${duration(t.for_ms)}` : '',
    t.escalation_step ? ` (escalation ${t.escalation_step})` : '',
  );
}

function kv(pairs: [string, string | null | undefined][]): HTMLElement {
  return h('dl', { class: 'kv' }, ...pairs.filter(([, v]) => v !== null && v !== undefined && v !== '').flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v as string)]));
}

type Doc = Record<string, unknown>;
const num = (d: Doc, k: string): number | undefined => (typeof d[k] === 'number' ? (d[k] as number) : undefined);

/** A few numbers from varz.json (a /varz document, or the `statsz` part of a STATSZ reply). */
function varzHighlights(doc: Doc): [string, string | null][] {
  const d = typeof doc['statsz'] === 'object' && doc['statsz'] !== null ? (doc['statsz'] as Doc) : doc;
  const n = (k: string, f: (v: number) => string = String): string | null => {
    const v = num(d, k);
    return v === undefined ? null : f(v);
  };
  return [
    ['CPU', n('cpu', (v) => `${v.toFixed(1)}%`)],
    ['Memory', n('mem', bytes)],
    ['Cores', n('cores')],
    ['GOMAXPROCS', n('gomaxprocs')],
    ['Connections', n('connections')],
    ['Subscriptions', n('subscriptions')],
    ['Slow consumers', n('slow_consumers')],
    ['Messages in / out', num(d, 'in_msgs') === undefined ? null : `${n('in_msgs')} / ${n('out_msgs')}`],
    ['Bytes in / out', num(d, 'in_bytes') === undefined ? null : `${bytes(num(d, 'in_bytes') ?? 0)} / ${bytes(num(d, 'out_bytes') ?? 0)}`],
    ['Uptime', typeof d['uptime'] === 'string' ? (d['uptime'] as string) : null],
  ];
}

/** How long an incident that is not there yet (its manifest is written last) is waited for. */
const WAIT_FOR_MANIFEST_MS = 60_000;

export function incidentView(ctx: ViewContext, id: string): void {
  const status = statusLine();
  ctx.root.replaceChildren(h('p', { class: 'muted' }, 'Loading…'), status.el);
  const since = Date.now();
  const load = (): void => {
    getJson<Manifest>(`/api/v1/incidents/${enc(id)}`, ctx.signal)
      .then((m) => render(ctx, m))
      .catch((err: unknown) => {
        if (ctx.signal.aborted) return;
        const missing = err instanceof ApiError && err.status === 404;
        const waiting = missing && Date.now() - since < WAIT_FOR_MANIFEST_MS;
        ctx.root.replaceChildren(
          h('h1', {}, 'Incident'),
          h('p', { class: missing ? 'muted' : 'error' }, missing ? `No incident "${id}"${waiting ? ' yet: it may still be capturing; checking again…' : ' (pruned, or never captured).'}` : errorMessage(err)),
          h('a', { href: route('incidents') }, 'All incidents'),
        );
        if (waiting) {
          const timer = window.setTimeout(load, 2_000);
          ctx.signal.addEventListener('abort', () => window.clearTimeout(timer));
        }
      });
  };
  load();
}

function render(ctx: ViewContext, m: Manifest): void {
  const why =
    m.reason === 'trigger'
      ? h('ul', { class: 'fired-list' }, ...m.triggers.map(firedLine))
      : m.reason === 'alert' && m.alert
        ? h(
            'div',
            {},
            h('p', {}, 'Alert ', h('strong', {}, m.alert.name), ' from Alertmanager'),
            m.alert.annotations['summary'] ? h('p', {}, m.alert.annotations['summary']) : null,
            m.alert.annotations['description'] ? h('p', { class: 'muted' }, m.alert.annotations['description']) : null,
            h('div', { class: 'labels' }, ...Object.entries(m.alert.labels).map(([k, v]) => h('span', { class: 'chip' }, `${k}=${v}`))),
          )
        : h('p', {}, 'Manual capture', m.note ? ': ' : '', m.note ? h('q', {}, m.note) : null);
  const took = Date.parse(m.finished_at) - Date.parse(m.started_at);
  const facts = kv([
    ['Server', m.server.name],
    ['Cluster', m.server.cluster],
    ['Version', m.server.version],
    ['Started', time(m.started_at)],
    ['Finished', `${time(m.finished_at)}${Number.isFinite(took) ? ` (${duration(took)})` : ''}`],
    ['Captured via', m.via],
    ['Status', m.status],
  ]);
  const varzBox = h('div', { class: 'varz' }, h('h3', {}, 'Server at that moment'), h('p', { class: 'muted' }, m.files.includes('varz.json') ? 'Loading varz.json…' : 'No varz.json in this incident.'));
  if (m.files.includes('varz.json')) {
    call(`/api/v1/incidents/${enc(m.id)}/files/varz.json`, ctx.signal)
      .then(async (res) => {
        if (!res.ok) throw new ApiError(res.status, res.statusText);
        const doc = (await res.json()) as Doc;
        varzBox.replaceChildren(h('h3', {}, 'Server at that moment'), kv(varzHighlights(doc)));
      })
      .catch((err: unknown) => {
        if (!ctx.signal.aborted) varzBox.replaceChildren(h('h3', {}, 'Server at that moment'), h('p', { class: 'error' }, errorMessage(err)));
      });
  }

  const captured = m.profiles.filter((p) => p.file !== null);
  const failed = m.profiles.filter((p) => p.file === null);
  const tabs = h('div', { class: 'tabs', role: 'tablist' });
  const panel = h('div', { class: 'tab-panel' });
  const built = new Map<string, ProfileTab>();
  const select = (name: string): void => {
    const p = captured.find((x) => x.name === name) ?? captured[0];
    if (!p) return;
    for (const b of tabs.children) b.setAttribute('aria-selected', String((b as HTMLElement).dataset['profile'] === p.name));
    let tab = built.get(p.name);
    if (!tab) {
      tab = profileTab(m, p, ctx.signal);
      built.set(p.name, tab);
      panel.append(tab.el);
    }
    for (const t of built.values()) t.el.hidden = t !== tab;
    tab.render();
    history.replaceState(null, '', `${route('incidents', m.id)}?profile=${enc(p.name)}`);
  };
  for (const p of captured) {
    tabs.append(h('button', { type: 'button', role: 'tab', class: 'tab', 'data-profile': p.name, onclick: () => select(p.name) }, p.name));
  }
  const onResize = (): void => {
    for (const t of built.values()) if (!t.el.hidden) t.render();
  };
  window.addEventListener('resize', onResize);
  ctx.signal.addEventListener('abort', () => window.removeEventListener('resize', onResize));

  ctx.root.replaceChildren();
  append(ctx.root, [
    h(
      'div',
      { class: 'incident-head' },
      h('h1', {}, m.server.name, ' ', h('span', { class: 'muted' }, time(m.started_at))),
      h('span', { class: `badge reason-${m.reason}` }, m.reason),
      h('span', { class: `badge status-${m.status}` }, m.status),
    ),
    h('div', { class: 'summary' }, h('div', { class: 'why' }, h('h3', {}, 'What fired'), why, facts), varzBox),
    failed.length > 0
      ? h('ul', { class: 'failed' }, ...failed.map((p) => h('li', { class: 'error' }, `${p.name}: ${p.error ?? 'not captured'}`)))
      : null,
    captured.length > 0 ? h('div', { class: 'profiles' }, tabs, panel) : h('p', { class: 'muted' }, 'No profile was captured.'),
  ]);
  select(ctx.query.get('profile') ?? captured[0]?.name ?? '');
}
