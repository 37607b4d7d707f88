/**
 * The incident viewer: hash routes (#/servers, #/rules, #/incidents, #/incidents/<id>, #/compare?...),
 * a token prompt for daemons with http.auth, and a small hook (window.autoprofTest) that lets the
 * browser tests read what the flame graphs drew.
 */
import { forgetToken, setTokenPrompt, token } from './api.js';
import { compareView } from './compare.js';
import { h } from './dom.js';
import { flameGraphs, type DrawnFrame } from './flame.js';
import { incidentView } from './incident.js';
import { incidentsView } from './incidents.js';
import { rulesView } from './rules.js';
import { serversView } from './servers.js';
import type { ViewContext } from './view.js';

const main = document.getElementById('main') as HTMLElement;
const nav = document.getElementById('nav') as HTMLElement;
let current: AbortController | undefined;

function tokenPrompt(message: string): Promise<string> {
  return new Promise((resolve) => {
    const input = h('input', { type: 'password', name: 'token', autocomplete: 'current-password', required: true, 'aria-label': 'API token' });
    const form = h(
      'form',
      { class: 'token-form' },
      h('h2', {}, 'API token'),
      h('p', { class: 'token-message' }, message),
      h('p', { class: 'muted small' }, 'The token of http.auth (bearer_token_file). It is kept in this tab only (sessionStorage) and sent as an Authorization header.'),
      input,
      h('button', { type: 'submit' }, 'Continue'),
    );
    const dialog = h('div', { class: 'modal', role: 'dialog', 'aria-modal': 'true' }, form);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = input.value.trim();
      if (v === '') return;
      dialog.remove();
      const forget = nav.querySelector<HTMLElement>('button.link');
      if (forget) forget.hidden = false;
      resolve(v);
    });
    document.body.append(dialog);
    input.focus();
  });
}

function drawNav(active: string): void {
  const link = (href: string, label: string, key: string): HTMLElement => h('a', { href, class: active === key ? 'active' : '' }, label);
  const signOut = h('button', { type: 'button', class: 'link', hidden: token() === null }, 'Forget token');
  signOut.addEventListener('click', () => {
    forgetToken();
    location.reload();
  });
  nav.replaceChildren(
    h('a', { href: '#/servers', class: 'brand' }, 'nats-autoprof'),
    link('#/servers', 'Servers', 'servers'),
    link('#/rules', 'Rules', 'rules'),
    link('#/incidents', 'Incidents', 'incidents'),
    link('#/compare', 'Compare', 'compare'),
    h('span', { class: 'spacer' }),
    signOut,
  );
}

function route(): void {
  current?.abort();
  current = new AbortController();
  const hash = location.hash.replace(/^#\/?/, '');
  const q = hash.indexOf('?');
  const path = (q >= 0 ? hash.slice(0, q) : hash).split('/').filter(Boolean).map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
  const ctx: ViewContext = { root: main, query: new URLSearchParams(q >= 0 ? hash.slice(q + 1) : ''), signal: current.signal };
  const [view = 'servers', id] = path;
  window.scrollTo(0, 0);
  drawNav(view);
  document.title = `${id ?? view} · nats-autoprof`;
  if (view === 'incidents' && id !== undefined) incidentView(ctx, id);
  else if (view === 'incidents') incidentsView(ctx);
  else if (view === 'rules') rulesView(ctx);
  else if (view === 'compare') compareView(ctx);
  else serversView(ctx);
}

interface TestHook {
  /** Frames drawn by the flame graph on the canvas matching `selector` (the visible one by default). */
  frames(selector?: string): DrawnFrame[];
}

declare global {
  interface Window {
    autoprofTest: TestHook;
  }
}

window.autoprofTest = {
  frames(selector = '.tab-panel section:not([hidden]) canvas.flame, .compare-out canvas.flame') {
    const canvas = document.querySelector<HTMLCanvasElement>(selector);
    const fg = canvas ? flameGraphs.get(canvas) : undefined;
    return fg ? [...fg.frames()] : [];
  },
};

setTokenPrompt(tokenPrompt);
window.addEventListener('hashchange', route);
route();
