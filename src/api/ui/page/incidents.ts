/**
 * Incidents: newest first, filtered by server, reason, trigger and status, paged with "older". A poll
 * merges the newest page into what is shown: new incidents appear at the top, finished ones update; the
 * filter inputs, the pages already loaded and the scroll position are left alone.
 */
import { ApiError, getJson, type IncidentEntry, type IncidentPage, type ServerView } from './api.js';
import { ago, bytes, h, route, time } from './dom.js';
import { poll, setText, statusLine, type ViewContext } from './view.js';

const PAGE = 25;
const FILTERS = ['server', 'reason', 'trigger', 'status'] as const;
type Filter = (typeof FILTERS)[number];

function why(e: IncidentEntry): string {
  if (e.reason === 'trigger') return `rule ${e.triggers.length > 1 ? e.triggers.join(', ') : (e.trigger ?? '?')}`;
  if (e.reason === 'alert') return `alert ${e.alert ?? '?'}`;
  return e.reason ?? '–';
}

function profilesOf(e: IncidentEntry): string[] {
  return e.profiles ?? e.files.filter((f) => f.endsWith('.pb.gz')).map((f) => f.slice(0, -'.pb.gz'.length));
}

export function incidentsView(ctx: ViewContext): void {
  const status = statusLine();
  const inputs = {
    server: h('select', { name: 'server' }, h('option', { value: '' }, 'any server')),
    reason: h('select', { name: 'reason' }, ...['', 'trigger', 'alert', 'manual'].map((r) => h('option', { value: r }, r || 'any reason'))),
    trigger: h('input', { name: 'trigger', type: 'search', placeholder: 'rule name', size: 14 }),
    status: h('select', { name: 'status' }, ...['', 'ok', 'partial', 'failed'].map((r) => h('option', { value: r }, r || 'any status'))),
  } satisfies Record<Filter, HTMLInputElement | HTMLSelectElement>;
  for (const f of FILTERS) {
    const v = ctx.query.get(f);
    if (v !== null) {
      if (inputs[f] instanceof HTMLSelectElement && ![...inputs[f].options].some((o) => o.value === v)) inputs[f].append(h('option', { value: v }, v));
      inputs[f].value = v;
    }
  }
  const tbody = h('tbody');
  const older = h('button', { type: 'button', class: 'older', hidden: true }, 'Older incidents');
  const empty = h('p', { class: 'muted', hidden: true }, 'No incident matches.');
  const form = h(
    'form',
    { class: 'filters' },
    ...FILTERS.map((f) => h('label', {}, h('span', {}, f), inputs[f])),
    h('button', { type: 'reset' }, 'Clear'),
  );
  ctx.root.replaceChildren(
    h('h1', {}, 'Incidents'),
    form,
    status.el,
    h(
      'table',
      { class: 'grid incidents' },
      h('thead', {}, h('tr', {}, ...['Started', 'Server', 'Why', 'Status', 'Profiles', 'Size'].map((t) => h('th', {}, t)))),
      tbody,
    ),
    empty,
    older,
  );

  let items: IncidentEntry[] = [];
  let next: string | null = null;
  let generation = 0;
  const rows = new Map<string, HTMLTableRowElement>();
  let firstLoad = true;

  // Page size: 25, or `limit` from the address (1..200).
  const asked = Number(ctx.query.get('limit'));
  const pageSize = Number.isInteger(asked) && asked >= 1 && asked <= 200 ? asked : PAGE;
  const filterQuery = (): URLSearchParams => {
    const q = new URLSearchParams();
    for (const f of FILTERS) {
      const v = inputs[f].value.trim();
      if (v !== '') q.set(f, v);
    }
    return q;
  };

  const row = (e: IncidentEntry, fresh: boolean): HTMLTableRowElement => {
    let tr = rows.get(e.id);
    if (!tr) {
      tr = h(
        'tr',
        { 'data-id': e.id, class: fresh ? 'fresh' : '' },
        h('td', {}, h('a', { href: route('incidents', e.id) })),
        ...Array.from({ length: 5 }, () => h('td')),
      );
      rows.set(e.id, tr);
    }
    const c = [...tr.cells];
    const a = c[0]?.firstElementChild as HTMLAnchorElement;
    setText(a, time(e.started_at));
    a.title = ago(e.started_at);
    setText(c[1] as Element, e.server);
    setText(c[2] as Element, why(e));
    const st = c[3] as HTMLElement;
    setText(st, e.status ?? 'capturing');
    st.className = `status-${e.status ?? 'capturing'}`;
    setText(c[4] as Element, profilesOf(e).join(', ') || '–');
    setText(c[5] as Element, bytes(e.bytes));
    return tr;
  };

  const draw = (freshIds: Set<string>): void => {
    empty.hidden = items.length > 0;
    older.hidden = next === null;
    tbody.replaceChildren(...items.map((e) => row(e, freshIds.has(e.id))));
    for (const id of rows.keys()) if (!items.some((e) => e.id === id)) rows.delete(id);
  };

  const fetchPage = (before?: string): Promise<IncidentPage> => {
    const q = filterQuery();
    q.set('limit', String(pageSize));
    if (before) q.set('before', before);
    return getJson<IncidentPage>(`/api/v1/incidents?${q}`, ctx.signal);
  };

  /** The newest page, merged into what is shown. */
  const refresh = async (): Promise<void> => {
    const g = generation;
    const page = await fetchPage();
    if (g !== generation) return; // the filters changed while it was in flight
    const known = new Map(items.map((e) => [e.id, e]));
    const fresh = new Set<string>();
    const top: IncidentEntry[] = [];
    for (const e of page.incidents) {
      if (!known.has(e.id)) {
        if (!firstLoad) fresh.add(e.id);
        top.push(e);
      } else known.set(e.id, e);
    }
    if (items.length === 0) next = page.next;
    items = [...top, ...items.map((e) => known.get(e.id) as IncidentEntry)];
    items.sort((a, b) => (b.started_at ?? '').localeCompare(a.started_at ?? '') || b.id.localeCompare(a.id));
    firstLoad = false;
    draw(fresh);
  };

  older.addEventListener('click', () => {
    const last = items.at(-1);
    if (!last) return;
    const g = generation;
    older.disabled = true;
    fetchPage(last.id)
      .then((page) => {
        if (g !== generation) return;
        const have = new Set(items.map((e) => e.id));
        items.push(...page.incidents.filter((e) => !have.has(e.id)));
        next = page.next;
        draw(new Set());
      })
      .catch((err: unknown) => status.set(err instanceof ApiError && err.status === 404 ? new Error('that page is gone (pruned); clear and reload the list') : err))
      .finally(() => (older.disabled = false));
  });

  const filtersChanged = (): void => {
    generation++;
    items = [];
    next = null;
    rows.clear();
    firstLoad = true;
    // Keep the filters in the address (without a navigation) so a reload or a shared link shows the same list.
    const f = filterQuery();
    if (pageSize !== PAGE) f.set('limit', String(pageSize));
    const q = f.toString();
    history.replaceState(null, '', `#/incidents${q ? `?${q}` : ''}`);
    draw(new Set());
    void refresh().catch((err: unknown) => status.set(err));
  };
  form.addEventListener('change', filtersChanged);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    filtersChanged();
  });
  form.addEventListener('reset', () => setTimeout(filtersChanged, 0));

  // Server names for the filter (the select keeps what the user picked).
  getJson<{ servers: ServerView[] }>('/api/v1/servers', ctx.signal)
    .then(({ servers }) => {
      const have = new Set([...inputs.server.options].map((o) => o.value));
      for (const s of servers) if (!have.has(s.server)) inputs.server.append(h('option', { value: s.server }, s.server));
    })
    .catch(() => undefined);

  poll(refresh, 3_000, ctx.signal, (err) => status.set(err));
}
