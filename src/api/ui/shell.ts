/**
 * The viewer's page shell and style sheet. They hold no data; the page script (compiled from ./page/*.ts)
 * fills them from /api/v1. `{{ASSETS}}` becomes the versioned asset folder (/ui/assets/v-<digest>).
 */

export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>nats-autoprof</title>
<link rel="stylesheet" href="{{ASSETS}}/style.css">
<script type="module" src="{{ASSETS}}/app.js"></script>
</head>
<body>
<nav id="nav" class="nav"><a class="brand" href="#/servers">nats-autoprof</a></nav>
<main id="main"><p class="muted">Loading…</p></main>
<noscript>The incident viewer needs JavaScript. The same data is in the JSON API under /api/v1/.</noscript>
</body>
</html>
`;

export const STYLE_CSS = `:root {
  --fg: #1f2328; --muted: #656d76; --line: #d8dee4; --bg: #ffffff; --panel: #f6f8fa; --accent: #0969da;
  --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --grew: #d1242f; --shrank: #0969da;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 14px; color: var(--fg); background: var(--bg);
}
* { box-sizing: border-box; }
body { margin: 0; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
main { padding: 16px 24px 48px; max-width: 1600px; margin: 0 auto; }
h1 { font-size: 20px; margin: 8px 0 16px; font-weight: 600; }
h2 { font-size: 17px; margin: 0 0 8px; }
h3 { font-size: 13px; margin: 0 0 8px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); font-weight: 600; }
.nav { display: flex; align-items: center; gap: 4px; padding: 0 24px; height: 44px; background: #24292f; }
.nav a { color: #e6edf3; padding: 6px 10px; border-radius: 6px; }
.nav a.active { background: #3d444d; }
.nav a:hover { text-decoration: none; background: #32383f; }
.nav .brand { font-weight: 700; margin-right: 12px; }
.nav .spacer { flex: 1; }
.nav button.link { background: none; border: 0; color: #c9d1d9; cursor: pointer; font: inherit; }
.muted { color: var(--muted); }
.small { font-size: 12px; }
.error, .status.error { color: var(--bad); }
.status:empty { display: none; }
.ok { color: var(--ok); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
button, select, input { font: inherit; }
button { border: 1px solid var(--line); background: var(--panel); border-radius: 6px; padding: 4px 10px; cursor: pointer; color: var(--fg); }
button:hover:not(:disabled) { background: #eef1f4; }
button:disabled { opacity: .5; cursor: default; }
a.button { display: inline-block; border: 1px solid var(--line); background: var(--panel); border-radius: 6px; padding: 4px 10px; }
input, select { border: 1px solid var(--line); border-radius: 6px; padding: 4px 8px; background: #fff; }
table.grid { border-collapse: collapse; width: 100%; }
table.grid th, table.grid td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: middle; }
table.grid th { font-size: 12px; color: var(--muted); font-weight: 600; background: var(--panel); position: sticky; top: 0; }
table.grid td.num, table.grid th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.fn, span.fn { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; word-break: break-all; }
tr.fresh { animation: fresh 3s ease-out; }
@keyframes fresh { from { background: #fff8c5; } to { background: transparent; } }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; background: var(--panel); border: 1px solid var(--line); margin-right: 6px; }
.status-ok, .badge.status-ok { color: var(--ok); }
.status-partial, .badge.status-partial { color: var(--warn); }
.status-failed, .badge.status-failed { color: var(--bad); }
.status-capturing { color: var(--muted); font-style: italic; }
.state-firing, .state-pending { color: var(--bad); border-color: #ffcecb; background: #ffebe9; }
.spark { vertical-align: middle; margin-right: 8px; }
.spark-line { fill: none; stroke-width: 1.5; }
.spark-area { stroke: none; }
.spark-cpu .spark-line { stroke: #d1242f; } .spark-cpu .spark-area { fill: #ffebe9; }
.spark-mem .spark-line { stroke: #0969da; } .spark-mem .spark-area { fill: #ddf4ff; }
.spark-empty { font-size: 11px; fill: var(--muted); }
.spark-value { font-variant-numeric: tabular-nums; display: inline-block; min-width: 64px; }
.bar { display: inline-block; width: 80px; height: 8px; background: #eaeef2; border-radius: 4px; vertical-align: middle; overflow: hidden; }
.bar-fill { display: block; height: 100%; background: #54aeff; }
.bar.over .bar-fill { background: var(--bad); }
.filters, .compare-form { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-end; margin-bottom: 12px; }
.filters label, .compare-form label { display: flex; flex-direction: column; gap: 2px; font-size: 12px; color: var(--muted); }
.older { margin-top: 12px; }
.incident-head { display: flex; align-items: center; gap: 8px; }
.incident-head h1 { margin-right: 8px; }
.summary { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 16px; margin-bottom: 16px; }
.summary > div { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
.fired-list { margin: 0 0 8px; padding-left: 18px; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; font-variant-numeric: tabular-nums; }
.chip { display: inline-block; background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 0 8px; margin: 2px; font-size: 12px; }
.tabs { display: flex; gap: 2px; border-bottom: 1px solid var(--line); }
.tab { border: 1px solid transparent; border-bottom: 0; border-radius: 6px 6px 0 0; background: none; padding: 6px 14px; margin-bottom: -1px; }
.tab[aria-selected="true"] { border-color: var(--line); background: #fff; font-weight: 600; }
.tab-panel { padding-top: 12px; }
.toolbar, .flame-controls { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; }
.toolbar { margin-bottom: 8px; }
.toolbar label { color: var(--muted); font-size: 12px; }
.search { width: 280px; }
.match-share { font-weight: 600; color: #8250df; }
.total, .focus-line { font-size: 12px; margin: 4px 0; }
.flame-host { position: relative; border: 1px solid var(--line); border-radius: 6px; padding: 4px; background: #fff; min-height: 60px; overflow: hidden; }
canvas.flame { display: block; cursor: pointer; }
.tooltip { position: absolute; z-index: 5; pointer-events: none; background: #24292f; color: #fff; padding: 6px 10px; border-radius: 6px; font-size: 12px; max-width: 520px; box-shadow: 0 4px 12px rgba(0,0,0,.2); }
.tooltip .tip-name { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; word-break: break-all; margin-bottom: 2px; font-weight: 600; }
.profile.loading .flame-host { opacity: .5; }
.below { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 16px; margin-top: 16px; }
table.top th button { background: none; border: 0; padding: 0; font: inherit; color: inherit; cursor: pointer; }
table.top th[aria-sort="descending"] button::after { content: " ▼"; }
table.top th[aria-sort="ascending"] button::after { content: " ▲"; }
.changes, .downloads { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; margin-bottom: 16px; }
.changes ul { margin: 0; padding-left: 18px; }
.grew { color: var(--grew); } .shrank { color: var(--shrank); }
.files { display: flex; flex-wrap: wrap; gap: 6px; margin-bottom: 8px; }
.cmd-line { display: flex; gap: 6px; align-items: flex-start; }
code.cmd { flex: 1; display: block; background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px; font-size: 12px; word-break: break-all; }
.compare-head { display: flex; flex-wrap: wrap; gap: 8px 24px; margin-bottom: 8px; }
.legend { margin: 8px 0; font-size: 12px; display: flex; align-items: center; gap: 6px; }
.swatch { display: inline-block; width: 14px; height: 14px; border-radius: 3px; }
.grew-bg { background: hsl(4 80% 60%); } .shrank-bg { background: hsl(214 80% 60%); }
.changes-table { margin-top: 4px; }
.modal { position: fixed; inset: 0; background: rgba(31,35,40,.45); display: flex; align-items: center; justify-content: center; z-index: 10; }
.token-form { background: #fff; padding: 20px 24px; border-radius: 10px; width: 420px; display: flex; flex-direction: column; gap: 10px; box-shadow: 0 8px 24px rgba(0,0,0,.25); }
.token-message { margin: 0; font-weight: 600; }
@media (max-width: 900px) { .summary, .below { grid-template-columns: 1fr; } }
`;
