/**
 * One profile of an incident: sample-type picker, search, icicle flame graph (click to zoom), sortable top
 * table, what changed since the previous incident, downloads and a `go tool pprof` command.
 */
import { download, enc, getJson, token, type Flamegraph, type Manifest, type ProfileResult, type SampleType, type Top } from './api.js';
import { h, pct, route, value } from './dom.js';
import { FlameGraph, warm, type FlameTree } from './flame.js';
import { errorMessage } from './view.js';

export function treeOf(names: string[], nodes: readonly (readonly [number, number, number, number])[], weight: (n: readonly [number, number, number, number]) => number): FlameTree {
  const n = nodes.length;
  const t: FlameTree = { names, name: new Int32Array(n), weight: new Float64Array(n), parent: new Int32Array(n) };
  for (let i = 0; i < n; i++) {
    const node = nodes[i] as readonly [number, number, number, number];
    t.name[i] = node[0];
    t.weight[i] = weight(node);
    t.parent[i] = node[3];
  }
  return t;
}

/** Search box, match share, focus line and reset button for a flame graph that may be replaced later. */
export function flameControls(current: () => FlameGraph | undefined): { el: HTMLElement; apply(fg: FlameGraph): void; focusLine: HTMLElement } {
  const search = h('input', { type: 'search', class: 'search', placeholder: 'Search functions (e.g. mapassign)', 'aria-label': 'Search functions' });
  const share = h('output', { class: 'match-share' });
  const reset = h('button', { type: 'button', class: 'reset-zoom', disabled: true }, 'Reset zoom');
  const focusLine = h('div', { class: 'focus-line muted' });
  const show = (fg: FlameGraph): void => {
    const term = search.value.trim();
    const s = fg.search(term);
    share.textContent = term === '' ? '' : `matches: ${pct(s, 2)} of the total`;
    share.dataset['share'] = term === '' ? '' : String(s);
  };
  search.addEventListener('input', () => {
    const fg = current();
    if (fg) show(fg);
  });
  reset.addEventListener('click', () => current()?.zoom(0));
  return {
    el: h('div', { class: 'flame-controls' }, search, share, reset),
    focusLine,
    apply(fg: FlameGraph) {
      fg.onFocus = (node) => {
        reset.disabled = node === 0;
        focusLine.textContent = node === 0 ? 'Click a frame to zoom in; click it again to zoom out.' : `Zoomed into ${fg.nameOf(node)}`;
      };
      fg.onFocus(fg.focus);
      show(fg);
    },
  };
}

type SortKey = 'function' | 'flat' | 'flat_share' | 'cum' | 'cum_share';

function topTable(top: Top): HTMLElement {
  let key: SortKey = 'flat';
  let desc = true;
  const cols: [SortKey, string][] = [
    ['flat', 'Flat'],
    ['flat_share', 'Flat %'],
    ['cum', 'Cum'],
    ['cum_share', 'Cum %'],
    ['function', 'Function'],
  ];
  const tbody = h('tbody');
  const table = h('table', { class: 'grid top sortable' });
  const heads = cols.map(([k, label]) =>
    h('th', { 'data-key': k, class: k === 'function' ? '' : 'num' }, h('button', { type: 'button', onclick: () => sortBy(k) }, label)),
  );
  table.append(h('thead', {}, h('tr', {}, ...heads)), tbody);
  const draw = (): void => {
    const rows = [...top.rows].sort((a, b) => {
      const d = key === 'function' ? a.function.localeCompare(b.function) : a[key] - b[key];
      return desc ? -d : d;
    });
    table.dataset['sort'] = `${key}:${desc ? 'desc' : 'asc'}`;
    for (const th of heads) th.setAttribute('aria-sort', th.dataset['key'] === key ? (desc ? 'descending' : 'ascending') : 'none');
    tbody.replaceChildren(
      ...rows.map((r) =>
        h(
          'tr',
          {},
          h('td', { class: 'num' }, value(r.flat, top.unit)),
          h('td', { class: 'num' }, pct(r.flat_share, 2)),
          h('td', { class: 'num' }, value(r.cum, top.unit)),
          h('td', { class: 'num' }, pct(r.cum_share, 2)),
          h('td', { class: 'fn' }, r.function),
        ),
      ),
    );
  };
  const sortBy = (k: SortKey): void => {
    desc = k === key ? !desc : k !== 'function';
    key = k;
    draw();
  };
  draw();
  return table;
}

export function pprofCommand(incident: string, file: string): string {
  const url = `${location.origin}/api/v1/incidents/${enc(incident)}/files/${enc(file)}`;
  const auth = token() === null ? '' : `-H "Authorization: Bearer $NATS_AUTOPROF_TOKEN" `;
  return `curl -fsS ${auth}-o ${file} '${url}' && go tool pprof -http=: ${file}`;
}

function copyable(text: string): HTMLElement {
  const code = h('code', { class: 'cmd' }, text);
  const btn = h('button', { type: 'button', class: 'copy' }, 'Copy');
  btn.addEventListener('click', () => {
    const done = (): void => {
      btn.textContent = 'Copied';
      setTimeout(() => (btn.textContent = 'Copy'), 1500);
    };
    if (navigator.clipboard) navigator.clipboard.writeText(text).then(done, () => selectText(code));
    else selectText(code);
  });
  return h('div', { class: 'cmd-line' }, code, btn);
}

function selectText(el: HTMLElement): void {
  const r = document.createRange();
  r.selectNodeContents(el);
  const sel = getSelection();
  sel?.removeAllRanges();
  sel?.addRange(r);
}

function changesBox(p: ProfileResult): HTMLElement {
  const box = h('div', { class: 'changes' }, h('h3', {}, 'Since the previous incident of this server'));
  if (p.changes === undefined) box.append(h('p', { class: 'muted' }, 'Not recorded (captured by an older version).'));
  else if (p.changes === null) box.append(h('p', { class: 'muted' }, 'Nothing to compare with: no earlier incident of this server has this profile.'));
  else if (p.changes.length === 0) box.append(h('p', { class: 'muted' }, 'No function grew by a percentage point or more.'));
  else {
    box.append(
      h(
        'ul',
        {},
        ...p.changes.map((c) =>
          h('li', {}, h('span', { class: 'fn' }, c.function), ` ${pct(c.before_share, 0)} → `, h('strong', { class: 'grew' }, pct(c.after_share, 0))),
        ),
      ),
    );
  }
  return box;
}

export interface ProfileTab {
  el: HTMLElement;
  /** Draws again at the current width (after the tab is shown, or the window resized). */
  render(): void;
}

export function profileTab(m: Manifest, p: ProfileResult, signal: AbortSignal): ProfileTab {
  let fg: FlameGraph | undefined;
  let sampleType: string | undefined;
  const picker = h('select', { class: 'sample-type', 'aria-label': 'Sample type' });
  const controls = flameControls(() => fg);
  const totalLine = h('div', { class: 'total muted' });
  const flameHost = h('div', { class: 'flame-host' }, h('p', { class: 'muted' }, 'Loading the flame graph…'));
  const topHost = h('div', { class: 'top-host' });
  const status = h('p', { class: 'status' });
  const compare = h('a', { class: 'button', href: `#/compare?target=${enc(`${m.id}/${p.name}`)}` }, 'Compare with the previous incident');
  const el = h(
    'section',
    { class: 'profile', 'data-profile': p.name },
    h('div', { class: 'toolbar' }, h('label', {}, 'Sample type ', picker), controls.el, compare),
    status,
    totalLine,
    controls.focusLine,
    flameHost,
    h('div', { class: 'below' }, h('div', { class: 'top-col' }, h('h3', {}, 'Top functions'), topHost), h('div', { class: 'side-col' }, changesBox(p), downloads(m, p))),
  );

  const load = async (): Promise<void> => {
    const q = new URLSearchParams();
    if (sampleType) q.set('sample_type', sampleType);
    const base = `/api/v1/incidents/${enc(m.id)}/profiles/${enc(p.name)}`;
    el.classList.add('loading');
    // Both asked at once (the flame graph first: the daemon's one worker thread serves jobs in order), and
    // the flame graph drawn as soon as it arrives; waiting for the top table too made the first view slower
    // by the time the thread spends on it.
    const flameAnswer = getJson<Flamegraph>(`${base}/flamegraph?${q}`, signal);
    const topAnswer = getJson<Top>(`${base}/top?${q}&limit=100`, signal);
    topAnswer.catch(() => undefined); // awaited below; not unhandled if the flame graph fails first
    try {
      const flame = await flameAnswer;
      status.textContent = '';
      status.classList.remove('error');
      fillPicker(picker, flame.sample_types, flame.sample_type);
      totalLine.textContent = `Total ${value(flame.total, flame.unit)} of ${flame.sample_type} (${flame.unit}), ${flame.nodes.length} frames`;
      el.dataset['sampleType'] = flame.sample_type;
      el.dataset['total'] = String(flame.total);
      const root = flame.total || (flame.nodes[0]?.[1] ?? 0);
      fg = new FlameGraph(
        treeOf(flame.names, flame.nodes, (n) => n[1]),
        {
          color: (i, matched, searching) => (matched ? '#b04ad8' : searching ? '#e9e4df' : warm(flame.names[(flame.nodes[i] as [number, number, number, number])[0]] ?? '')),
          tooltip: (i) => {
            const n = flame.nodes[i] as [number, number, number, number];
            return [
              flame.names[n[0]] ?? '?',
              `total ${value(n[1], flame.unit)} (${pct(root > 0 ? n[1] / root : 0, 2)})`,
              `self ${value(n[2], flame.unit)} (${pct(root > 0 ? n[2] / root : 0, 2)})`,
            ];
          },
        },
        flameHost,
      );
      controls.apply(fg);
      topHost.replaceChildren(topTable(await topAnswer));
    } catch (err) {
      if (signal.aborted) return;
      status.textContent = `Could not load the ${p.name} profile: ${errorMessage(err)}`;
      status.classList.add('error');
    } finally {
      el.classList.remove('loading');
    }
  };
  picker.addEventListener('change', () => {
    sampleType = picker.value;
    void load();
  });
  void load();
  return { el, render: () => fg?.render() };
}

function fillPicker(picker: HTMLSelectElement, types: SampleType[], chosen: string): void {
  const want = types.map((t) => `${t.type}|${t.unit}`).join(',');
  if (picker.dataset['types'] !== want) {
    picker.replaceChildren(...types.map((t) => h('option', { value: t.type }, `${t.type} (${t.unit})`)));
    picker.dataset['types'] = want;
  }
  picker.value = chosen;
}

function downloads(m: Manifest, p: ProfileResult): HTMLElement {
  const file = p.file as string;
  const btn = (f: string): HTMLElement => {
    const b = h('button', { type: 'button', class: 'download', 'data-file': f }, f);
    b.addEventListener('click', () => {
      download(`/api/v1/incidents/${enc(m.id)}/files/${enc(f)}`, `${m.id.replace(/[^A-Za-z0-9._-]/g, '_')}_${f}`).catch((err: unknown) => {
        b.textContent = `${f}: ${errorMessage(err)}`;
      });
    });
    return b;
  };
  return h(
    'div',
    { class: 'downloads' },
    h('h3', {}, 'Open it with pprof'),
    h('div', { class: 'files' }, btn(file), ...m.files.filter((f) => f.endsWith('.json')).map(btn)),
    copyable(pprofCommand(m.id, file)),
    h('p', { class: 'muted small' }, 'Set NATS_AUTOPROF_TOKEN to the API token first when the daemon has one. ', h('a', { href: route('incidents') }, 'All incidents')),
  );
}
