/**
 * Load generator (a child process) that makes a real nats-server burn CPU while costing this process
 * little: raw NATS protocol over TCP, one connection publishing pre-built batches of small messages as
 * fast as the socket takes them, one connection holding `subs` subscriptions to that subject and
 * discarding what arrives (no parsing). The server does the parsing and the fan-out.
 *
 * IPC: {type:'init', host, port, user, pass, subs} -> {type:'ready'}
 *      {type:'start'} -> {type:'started', at}   (at: Date.now() of the first write)
 *      {type:'stop'}  -> {type:'stopped', at}
 */
import { connect, type Socket } from 'node:net';

let pub: Socket | undefined;
let running = false;
const BATCH = Buffer.from('PUB bench.load 16\r\n0123456789abcdef\r\n'.repeat(2048));

function open(host: string, port: number, user: string, pass: string, then: string): Promise<Socket> {
  return new Promise((res, rej) => {
    const s = connect({ host, port });
    s.setNoDelay(true);
    s.once('error', rej);
    let greeted = false;
    s.on('data', (b: Buffer) => {
      if (!greeted) {
        greeted = true;
        s.write(`CONNECT ${JSON.stringify({ user, pass, verbose: false, pedantic: false, name: 'bench-load' })}\r\n${then}PING\r\n`);
        res(s);
        return;
      }
      // Answer the server's keep-alive pings; everything else is discarded unread.
      if (b.length < 64 && b.includes('PING\r\n')) s.write('PONG\r\n');
    });
  });
}

function pump(): void {
  const s = pub;
  if (!s) return;
  while (running) {
    if (!s.write(BATCH)) {
      s.once('drain', pump);
      return;
    }
  }
}

process.on('message', (m: { type: string; host: string; port: number; user: string; pass: string; subs?: number }) => {
  void (async () => {
    try {
      if (m.type === 'init') {
        const subs = Array.from({ length: m.subs ?? 4 }, (_, i) => `SUB bench.load ${i + 1}\r\n`).join('');
        await open(m.host, m.port, m.user, m.pass, subs);
        pub = await open(m.host, m.port, m.user, m.pass, '');
        process.send?.({ type: 'ready' });
      } else if (m.type === 'start') {
        running = true;
        const at = Date.now();
        setImmediate(pump);
        process.send?.({ type: 'started', at });
      } else if (m.type === 'stop') {
        running = false;
        process.send?.({ type: 'stopped', at: Date.now() });
      }
    } catch (err) {
      process.send?.({ type: 'error', error: String(err) });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
