// Baseline for the polling benchmarks (a child process, plain JavaScript with no loader so that its memory
// compares with the daemon's): the minimal loop that any /varz poller must run. For each URL, on the
// daemon's schedule (a fixed-rate timer per server, all starting together, a server still answering is
// skipped), one undici GET of <url>/varz on a keep-alive pool and JSON.parse of the body. Nothing else:
// no validation, no rules, no metrics.
//
// IPC: {type:'start', urls, intervalMs, timeoutMs, spread} -> {type:'started'}
//      {type:'mark'} -> {type:'mark', polls, errors, polledOnce, buckets, count, sum}  (cumulative)
import { Agent, request } from 'undici';

/** Same bounds as nats_autoprof_poll_lateness_seconds, in ms. */
const BOUNDS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];
const buckets = new Array(BOUNDS.length + 1).fill(0);
let count = 0;
let sum = 0;
let polls = 0;
let errors = 0;
let sink = 0;
const seen = new Set();

function observe(ms) {
  count++;
  sum += ms;
  let i = 0;
  while (i < BOUNDS.length && ms > BOUNDS[i]) i++;
  buckets[i]++;
}

function start(urls, intervalMs, timeoutMs, spread) {
  const agent = new Agent({ keepAliveTimeout: 30_000, connections: 1, pipelining: 1 });
  const now = Date.now();
  for (const [i, url] of urls.entries()) {
    // spread: first polls spread over one interval (as the daemon does since 77402b4); else all at once.
    const offset = spread && urls.length > 1 ? Math.floor((i * intervalMs) / urls.length) : 0;
    const t = { url: `${url}/varz`, next: now + offset, busy: false };
    const tick = () => {
      const scheduled = t.next;
      if (!t.busy) {
        t.busy = true;
        observe(Math.max(0, Date.now() - scheduled));
        poll(t.url).finally(() => (t.busy = false));
      }
      const n = Date.now();
      t.next += intervalMs;
      if (t.next <= n) t.next = n + intervalMs;
      setTimeout(tick, t.next - n);
    };
    setTimeout(tick, offset);
  }

  async function poll(url) {
    try {
      const res = await request(url, { dispatcher: agent, headers: { accept: 'application/json' }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
      const doc = JSON.parse(await res.body.text());
      sink += typeof doc.cpu === 'number' ? 1 : 0;
      polls++;
      seen.add(url);
    } catch {
      errors++;
    }
  }
}

process.on('message', (m) => {
  if (m.type === 'start') {
    start(m.urls, m.intervalMs, m.timeoutMs, m.spread === true);
    process.send({ type: 'started' });
  } else if (m.type === 'mark') {
    process.send({ type: 'mark', polls, errors, polledOnce: seen.size, buckets: [...buckets], count, sum, sink });
  }
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
