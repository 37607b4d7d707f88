/**
 * Compare two profiles of the same kind: a differential flame graph (width by the mean of both shares,
 * red where the target's share grew, blue where it shrank, so profiles of different length compare fairly)
 * and the functions whose flat share changed most. Default base: the previous incident of the target's
 * server with the same profile.
 */
import { enc, getJson, type Compare, type Top } from './api.js';
import { h, pct, route, value } from './dom.js';
import { diffColor, diffText, FlameGraph } from './flame.js';
import { flameControls, treeOf } from './profile.js';
import { statusLine, type ViewContext } from './view.js';

type Node4 = readonly [number, number, number, number];

function points(delta: number): string {
  const pp = delta * 100;
  return `${pp > 0 ? '+' : pp < 0 ? '−' : '±'}${Math.abs(pp).toFixed(1)} pp`;
}

function split(ref: string): { id: string; profile: string } | undefined {
  const at = ref.lastIndexOf('/');
  return at > 0 && at < ref.length - 1 ? { id: ref.slice(0, at), profile: ref.slice(at + 1) } : undefined;
}

export function compareView(ctx: ViewContext): void {
  const status = statusLine();
  const baseIn = h('input', { name: 'base', size: 44, placeholder: '<incident id>/<profile>, default: the previous one', value: ctx.query.get('base') ?? '' });
  const targetIn = h('input', { name: 'target', size: 44, placeholder: '<incident id>/<profile>', value: ctx.query.get('target') ?? '' });
  const typeIn = h('select', { name: 'sample_type' }, h('option', { value: '' }, 'default'));
  const form = h(
    'form',
    { class: 'compare-form' },
    h('label', {}, h('span', {}, 'base'), baseIn),
    h('label', {}, h('span', {}, 'target'), targetIn),
    h('label', {}, h('span', {}, 'sample type'), typeIn),
    h('button', { type: 'submit' }, 'Compare'),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    if (baseIn.value.trim()) q.set('base', baseIn.value.trim());
    if (targetIn.value.trim()) q.set('target', targetIn.value.trim());
    if (typeIn.value) q.set('sample_type', typeIn.value);
    location.hash = `#/compare?${q}`;
  });
  const out = h('div', { class: 'compare-out' });
  ctx.root.replaceChildren(h('h1', {}, 'Compare profiles'), form, status.el, out);

  const targetRef = ctx.query.get('target') ?? '';
  const target = split(targetRef);
  if (!target) {
    out.append(h('p', { class: 'muted' }, 'Name a target profile as <incident id>/<profile>, or open an incident and choose "Compare with the previous incident".'));
    return;
  }
  void (async () => {
    try {
      const top = await getJson<Top>(`/api/v1/incidents/${enc(target.id)}/profiles/${enc(target.profile)}/top?limit=1`, ctx.signal);
      typeIn.replaceChildren(h('option', { value: '' }, `default (${top.sample_type})`), ...top.sample_types.map((t) => h('option', { value: t.type }, t.type)));
      typeIn.value = ctx.query.get('sample_type') ?? '';
      let baseRef = ctx.query.get('base') ?? '';
      if (baseRef === '') {
        const prev = await getJson<{ incident: string | null }>(`/api/v1/incidents/${enc(target.id)}/previous?profile=${enc(target.profile)}`, ctx.signal);
        if (prev.incident === null) {
          out.replaceChildren(
            h('p', { class: 'muted' }, `No earlier incident of this server has a ${target.profile} profile: nothing to compare with yet. `, h('a', { href: route('incidents', target.id) }, 'Back to the incident')),
          );
          return;
        }
        baseRef = `${prev.incident}/${target.profile}`;
        baseIn.value = baseRef;
      }
      const q = new URLSearchParams({ base: baseRef, target: targetRef });
      const st = ctx.query.get('sample_type');
      if (st) q.set('sample_type', st);
      const c = await getJson<Compare>(`/api/v1/compare?${q}`, ctx.signal);
      draw(out, c, ctx.signal);
    } catch (err) {
      if (!ctx.signal.aborted) status.set(err);
    }
  })();
}

function draw(out: HTMLElement, c: Compare, signal: AbortSignal): void {
  const root = c.nodes[0];
  const baseTotal = root?.[1] || c.base.total;
  const targetTotal = root?.[2] || c.target.total;
  const bs = (n: Node4): number => (baseTotal > 0 ? n[1] / baseTotal : 0);
  const ts = (n: Node4): number => (targetTotal > 0 ? n[2] / targetTotal : 0);
  let fg: FlameGraph | undefined;
  const controls = flameControls(() => fg);
  const host = h('div', { class: 'flame-host' });
  const changes = h(
    'table',
    { class: 'grid changes-table' },
    h('thead', {}, h('tr', {}, h('th', {}, 'Function'), h('th', { class: 'num' }, 'Base'), h('th', { class: 'num' }, 'Target'), h('th', { class: 'num' }, 'Change'))),
    h(
      'tbody',
      {},
      ...c.changes.map((x) =>
        h(
          'tr',
          { 'data-function': x.function },
          h('td', { class: 'fn' }, x.function),
          h('td', { class: 'num' }, pct(x.base_share, 2)),
          h('td', { class: 'num' }, pct(x.target_share, 2)),
          h('td', { class: `num ${x.delta > 0 ? 'grew' : x.delta < 0 ? 'shrank' : ''}` }, points(x.delta)),
        ),
      ),
    ),
  );
  const side = (label: string, s: Compare['base'], total: number): HTMLElement =>
    h('div', { class: 'side' }, h('span', { class: 'muted' }, `${label} `), h('a', { href: `${route('incidents', s.incident)}?profile=${enc(s.profile)}` }, s.incident), ` ${s.profile}, total ${value(total, c.unit)}`);
  out.replaceChildren(
    h('div', { class: 'compare-head' }, side('base', c.base, baseTotal), side('target', c.target, targetTotal), h('div', { class: 'muted' }, `sample type ${c.sample_type} (${c.unit})`)),
    h(
      'div',
      { class: 'legend' },
      h('span', { class: 'swatch grew-bg' }),
      ' share grew in the target ',
      h('span', { class: 'swatch shrank-bg' }),
      ' share shrank ',
      h('span', { class: 'muted' }, '(width: the mean of both shares; colour: the change in share, full at 10 points)'),
    ),
    controls.el,
    controls.focusLine,
    host,
    h('h3', {}, 'Largest changes in flat share'),
    c.changes.length > 0 ? changes : h('p', { class: 'muted' }, 'No function changed its share.'),
  );
  fg = new FlameGraph(
    treeOf(c.names, c.nodes, (n) => (bs(n) + ts(n)) / 2),
    {
      color: (i, matched, searching) => (matched ? '#b04ad8' : searching ? '#e9e4df' : diffColor(ts(c.nodes[i] as Node4) - bs(c.nodes[i] as Node4))),
      text: (i) => diffText(ts(c.nodes[i] as Node4) - bs(c.nodes[i] as Node4)),
      tooltip: (i) => {
        const n = c.nodes[i] as Node4;
        return [c.names[n[0]] ?? '?', `share ${pct(bs(n), 2)} → ${pct(ts(n), 2)} (${points(ts(n) - bs(n))})`, `base ${value(n[1], c.unit)} · target ${value(n[2], c.unit)}`];
      },
    },
    host,
  );
  controls.apply(fg);
  const onResize = (): void => fg?.render();
  window.addEventListener('resize', onResize);
  signal.addEventListener('abort', () => window.removeEventListener('resize', onResize));
}
