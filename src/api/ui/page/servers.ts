/** Servers: every watched server with its latest sample and small CPU / memory charts from the samples ring. */
import { ApiError, enc, getJson, type Samples, type ServerView } from './api.js';
import { bytes, h, svg } from './dom.js';
import { poll, setText, statusLine, type ViewContext } from './view.js';

/** A page of 5,000 servers must not ask for 5,000 sample rings every few seconds. */
const MAX_CHARTS = 100;
const CHART_W = 180;

/** Maps with at most `limit` calls in flight. */
async function mapLimited<T, R>(items: T[], limit: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
const CHART_H = 40;

/** A small line chart as inline SVG: values over time, with its latest value as text. */
export function sparkline(values: number[], kind: 'cpu' | 'mem', label: string): SVGElement {
  const s = svg('svg', { class: `spark spark-${kind}`, width: CHART_W, height: CHART_H, viewBox: `0 0 ${CHART_W} ${CHART_H}`, role: 'img' });
  s.setAttribute('aria-label', label);
  s.dataset['points'] = String(values.length);
  const title = svg('title');
  title.textContent = label;
  s.append(title);
  if (values.length === 0) {
    const t = svg('text', { x: 4, y: CHART_H / 2 + 4, class: 'spark-empty' });
    t.textContent = 'no samples yet';
    s.append(t);
    return s;
  }
  const max = Math.max(...values, kind === 'cpu' ? 1 : 0) * 1.1 || 1;
  const stepX = values.length > 1 ? (CHART_W - 2) / (values.length - 1) : 0;
  const pts = values.map((v, i) => `${(1 + i * stepX).toFixed(1)},${(CHART_H - 2 - (v / max) * (CHART_H - 6)).toFixed(1)}`);
  if (values.length === 1) pts.push(`${CHART_W - 1},${pts[0]?.split(',')[1] ?? CHART_H}`);
  s.append(svg('polyline', { points: `1,${CHART_H - 1} ${pts.join(' ')} ${CHART_W - 1},${CHART_H - 1}`, class: 'spark-area' }));
  s.append(svg('polyline', { points: pts.join(' '), class: 'spark-line' }));
  return s;
}

function capturePath(paths: Record<string, string | null>): string {
  const distinct = [...new Set(Object.values(paths))];
  if (distinct.length === 1) return distinct[0] ?? 'none';
  return Object.entries(paths)
    .map(([p, via]) => `${p}: ${via ?? 'none'}`)
    .join(', ');
}

export function serversView(ctx: ViewContext): void {
  const status = statusLine();
  const tbody = h('tbody');
  const table = h(
    'table',
    { class: 'grid servers' },
    h('thead', {}, h('tr', {}, ...['Server', 'Cluster', 'Version', 'Up', 'Capture path', 'CPU', 'Memory'].map((t) => h('th', {}, t)))),
    tbody,
  );
  const empty = h('p', { class: 'muted', hidden: true }, 'No server is watched yet.');
  const capped = h('p', { class: 'muted', hidden: true }, `Charts for the first ${MAX_CHARTS} servers; the others show their latest sample.`);
  ctx.root.replaceChildren(h('h1', {}, 'Servers'), status.el, capped, table, empty);
  const rows = new Map<string, HTMLTableRowElement>();

  poll(
    async () => {
      const { servers } = await getJson<{ servers: ServerView[] }>('/api/v1/servers', ctx.signal);
      const samples = await mapLimited(servers.slice(0, MAX_CHARTS), 8, (s) =>
        getJson<Samples>(`/api/v1/servers/${enc(s.server)}/samples`, ctx.signal).catch((err: unknown) => {
          if (err instanceof ApiError && err.status === 404) return undefined;
          throw err;
        }),
      );
      empty.hidden = servers.length > 0;
      capped.hidden = servers.length <= MAX_CHARTS;
      const seen = new Set<string>();
      servers.forEach((s, k) => {
        seen.add(s.server);
        let tr = rows.get(s.server);
        if (!tr) {
          tr = h('tr', { 'data-server': s.server }, ...Array.from({ length: 7 }, () => h('td')));
          rows.set(s.server, tr);
        }
        const cells = [...tr.cells];
        setText(cells[0] as Element, s.server);
        setText(cells[1] as Element, s.cluster ?? '–');
        setText(cells[2] as Element, s.version ?? '–');
        const up = cells[3] as HTMLElement;
        setText(up, s.up ? 'up' : 'down');
        up.className = s.up ? 'ok' : 'bad';
        up.title = s.last_error ?? '';
        setText(cells[4] as Element, capturePath(s.capture_paths));
        const ring = samples[k]?.samples ?? [];
        const cpu = ring.map((x) => x.cpu);
        const mem = ring.map((x) => x.mem);
        const lastCpu = cpu.at(-1) ?? s.sample?.cpu;
        const lastMem = mem.at(-1) ?? s.sample?.mem;
        const span = ring.length > 1 ? ` over ${Math.round((Date.parse(ring.at(-1)?.at ?? '') - Date.parse(ring[0]?.at ?? '')) / 1000)} s` : '';
        (cells[5] as Element).replaceChildren(
          sparkline(cpu, 'cpu', `CPU ${lastCpu === undefined ? '–' : `${lastCpu.toFixed(1)}%`}${span}`),
          h('span', { class: 'spark-value' }, lastCpu === undefined ? '–' : `${lastCpu.toFixed(1)}%`),
        );
        (cells[6] as Element).replaceChildren(
          sparkline(mem, 'mem', `Memory ${lastMem === undefined ? '–' : bytes(lastMem)}${span}`),
          h('span', { class: 'spark-value' }, lastMem === undefined ? '–' : bytes(lastMem)),
        );
      });
      for (const [name, tr] of rows) {
        if (!seen.has(name)) {
          tr.remove();
          rows.delete(name);
        }
      }
      tbody.replaceChildren(...servers.map((s) => rows.get(s.server) as HTMLTableRowElement));
    },
    5_000,
    ctx.signal,
    (err) => status.set(err),
  );
}
