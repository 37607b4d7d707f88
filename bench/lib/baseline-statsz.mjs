// Baseline for the system-account benchmark (a child process, plain JavaScript with no loader): the minimal
// collector. Once per interval (fixed rate): publish $SYS.REQ.SERVER.PING.STATSZ with a reply inbox, JSON.parse
// every reply, stop once `expected` replies arrived (told up front: the simulated fleet's size, which the
// daemon reads from statsz.active_servers), after `stallMs` without a reply, or at `timeoutMs`.
// Nothing else: no validation, no rules, no metrics.
//
// IPC: {type:'start', url, user, pass, intervalMs, timeoutMs, stallMs, expected} -> {type:'started'}
//      {type:'mark'} -> {type:'mark', rounds, replies, maxReplies, byEnd, times}   (cumulative; times: ms per round)
import { connect, createInbox } from '@nats-io/transport-node';

const decoder = new TextDecoder();
let rounds = 0;
let replies = 0;
let maxReplies = 0;
const byEnd = {};
const times = [];

async function start(m) {
  const nc = await connect({ servers: m.url, user: m.user, pass: m.pass, name: 'bench-baseline' });
  let next = Date.now();
  let busy = false;
  const round = () =>
    new Promise((resolve) => {
      const t0 = performance.now();
      const inbox = createInbox();
      let n = 0;
      const expected = m.expected;
      let stall;
      const finish = (why) => {
        clearTimeout(stall);
        clearTimeout(overall);
        sub.unsubscribe();
        rounds++;
        replies += n;
        maxReplies = Math.max(maxReplies, n);
        byEnd[why] = (byEnd[why] ?? 0) + 1;
        times.push(performance.now() - t0);
        resolve();
      };
      const overall = setTimeout(() => finish('timeout'), m.timeoutMs);
      const sub = nc.subscribe(inbox, {
        callback: (err, msg) => {
          if (err) return finish('timeout');
          const doc = JSON.parse(decoder.decode(msg.data));
          n++;
          if (typeof doc.statsz?.active_servers !== 'number') return;
          clearTimeout(stall);
          if (n >= expected) return finish('count');
          stall = setTimeout(() => finish('stall'), m.stallMs);
        },
      });
      nc.publish('$SYS.REQ.SERVER.PING.STATSZ', '', { reply: inbox });
    });
  const tick = () => {
    if (!busy) {
      busy = true;
      round().finally(() => (busy = false));
    }
    const now = Date.now();
    next += m.intervalMs;
    if (next <= now) next = now + m.intervalMs;
    setTimeout(tick, next - now);
  };
  tick();
}

process.on('message', (m) => {
  if (m.type === 'start') {
    start(m).then(
      () => process.send({ type: 'started' }),
      (err) => process.send({ type: 'error', error: String(err) }),
    );
  } else if (m.type === 'mark') {
    process.send({ type: 'mark', rounds, replies, maxReplies, byEnd: { ...byEnd }, times: [...times] });
  }
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
