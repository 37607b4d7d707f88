/** Rules: each (server, rule) state with the numbers that say why it is or is not firing. */
import { getJson, type TriggerView } from './api.js';
import { bytes, duration, h, route, time } from './dom.js';
import { poll, statusLine, type ViewContext } from './view.js';

export function metricValue(metric: string, v: number | null | undefined): string {
  if (v === null || v === undefined) return '–';
  if (metric === 'mem') return bytes(v);
  if (metric === 'cpu') return `${v.toFixed(1)}%`;
  return Number.isInteger(v) ? String(v) : v.toFixed(2);
}

function forCell(t: TriggerView): string {
  if (t.fires_in_ms !== null) return `fires in ${duration(t.fires_in_ms)} (for ${duration(t.for_ms)})`;
  return t.for_ms > 0 ? `for ${duration(t.for_ms)}` : 'at once';
}

function cooldownCell(t: TriggerView, now: number): string {
  if (t.cooldown_until) return `${duration(Math.max(0, Date.parse(t.cooldown_until) - now))} left`;
  return t.cooldown_ms > 0 ? `none (${duration(t.cooldown_ms)} after a firing)` : 'none';
}

export function rulesView(ctx: ViewContext): void {
  const status = statusLine();
  const tbody = h('tbody');
  const head = ['Server', 'Rule', 'State', 'Value vs threshold', 'For', 'Re-arm below', 'Cooldown', 'Last firing'];
  const empty = h('p', { class: 'muted', hidden: true }, 'No rule is configured (triggers: in the configuration).');
  ctx.root.replaceChildren(
    h('h1', {}, 'Rules'),
    status.el,
    h('table', { class: 'grid rules' }, h('thead', {}, h('tr', {}, ...head.map((t) => h('th', {}, t)))), tbody),
    empty,
  );
  poll(
    async () => {
      const { triggers } = await getJson<{ triggers: TriggerView[] }>('/api/v1/triggers', ctx.signal);
      const now = Date.now();
      empty.hidden = triggers.length > 0;
      tbody.replaceChildren(
        ...triggers.map((t) => {
          const ratio = t.value === null || t.above <= 0 ? 0 : Math.min(1, t.value / t.above);
          const bar = h('span', { class: `bar ${t.value !== null && t.value > t.above ? 'over' : ''}` }, h('span', { class: 'bar-fill' }));
          (bar.firstElementChild as HTMLElement).style.width = `${(ratio * 100).toFixed(1)}%`;
          const last = t.last_firing;
          return h(
            'tr',
            { 'data-server': t.server, 'data-rule': t.trigger },
            h('td', {}, t.server),
            h('td', {}, h('span', { class: 'rule-name' }, t.trigger), h('span', { class: 'muted' }, ` ${t.metric}`)),
            h('td', {}, h('span', { class: `badge state-${t.state}` }, t.state), t.armed ? null : h('span', { class: 'muted' }, ' disarmed')),
            h('td', { class: 'num' }, `${metricValue(t.metric, t.value)} / ${metricValue(t.metric, t.above)} `, bar),
            h('td', {}, forCell(t)),
            h('td', { class: 'num' }, metricValue(t.metric, t.rearm_below)),
            h('td', {}, cooldownCell(t, now)),
            h(
              'td',
              {},
              last === null
                ? '–'
                : last.incident
                  ? h('a', { href: route('incidents', last.incident) }, time(last.at))
                  : h('span', { title: last.message ?? '' }, `${time(last.at)} refused (${last.reason ?? '?'})`),
            ),
          );
        }),
      );
    },
    2_000,
    ctx.signal,
    (err) => status.set(err),
  );
}
