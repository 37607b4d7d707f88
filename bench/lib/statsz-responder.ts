/**
 * STATSZ responder (a child process): connected to a real nats-server as a system-account user, it answers
 * every `$SYS.REQ.SERVER.PING.STATSZ` as `count` simulated servers, with the real reply format (built from
 * recorded replies, varied per server; values alternate between two renderings per server). The real
 * server answers too, so `active_servers` says count + 1.
 *
 * IPC: {type:'start', url, user, pass, count, seed} -> {type:'ready'};  {type:'stats'} -> {type:'stats', requests}
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { renderStatsz, rng, simServers, values } from './docs.js';

let nc: NatsConnection | undefined;
let requests = 0;

async function start(m: { url: string; user: string; pass: string; count: number; seed?: number }): Promise<void> {
  const r = rng(m.seed ?? 3);
  const sims = simServers(m.count, m.seed ?? 1);
  const enc = new TextEncoder();
  const now = Date.now();
  const variants = [0, 1].map((k) => sims.map((s) => enc.encode(renderStatsz(s, values(r), m.count + 1, 100 + k, now + k * 1000))));
  nc = await connect({ servers: m.url, user: m.user, pass: m.pass, name: 'bench-statsz-responder' });
  nc.subscribe('$SYS.REQ.SERVER.PING.STATSZ', {
    callback: (err, msg) => {
      if (err || !msg.reply || !nc) return;
      const bodies = variants[requests++ % 2] as Uint8Array[];
      for (const b of bodies) nc.publish(msg.reply, b);
    },
  });
  await nc.flush();
}

process.on('message', (m: { type: string; url: string; user: string; pass: string; count: number; seed?: number }) => {
  if (m.type === 'start') {
    start(m).then(
      () => process.send?.({ type: 'ready' }),
      (err: unknown) => process.send?.({ type: 'error', error: String(err) }),
    );
  } else if (m.type === 'stats') {
    process.send?.({ type: 'stats', requests });
  }
});
const quit = (): void => {
  void (nc?.close() ?? Promise.resolve()).finally(() => process.exit(0));
};
process.on('disconnect', quit);
process.on('SIGTERM', quit);
