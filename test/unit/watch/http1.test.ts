import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Canceller } from '../../../src/cancel.js';
import { endpointOf, Http1Aborted, Http1Error, Http1Pool, Http1TooLarge, requestHead, ResponseParser, type ParsedResponse } from '../../../src/watch/http1.js';

const varz = readFileSync(join(import.meta.dirname, '..', '..', 'fixtures', 'varz', '2.10.27-cluster-tags.json'));

/** An answer as nats-server's Go net/http frames a body over 2 KB: chunked, one chunk per write. */
function goChunked(body: Buffer, chunkSizes: number[] = [body.length]): Buffer {
  const parts: Buffer[] = [Buffer.from('HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: *\r\nContent-Type: application/json\r\nDate: Fri, 04 Dec 2026 05:09:24 GMT\r\nTransfer-Encoding: chunked\r\n\r\n')];
  let at = 0;
  for (const n of chunkSizes) {
    parts.push(Buffer.from(`${n.toString(16)}\r\n`), body.subarray(at, at + n), Buffer.from('\r\n'));
    at += n;
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

function withLength(body: Buffer, head = 'HTTP/1.1 200 OK\r\nContent-Type: application/json'): Buffer {
  return Buffer.concat([Buffer.from(`${head}\r\nContent-Length: ${body.length}\r\n\r\n`), body]);
}

/** Feeds `bytes` in pieces of `step` bytes; the answer, or undefined if the pieces did not complete one. */
function feedAll(p: ResponseParser, bytes: Buffer, step: number): ParsedResponse | undefined {
  let r: ParsedResponse | undefined;
  for (let at = 0; at < bytes.length; at += step) {
    assert.equal(r, undefined, `an answer before the last piece (at ${at})`);
    r = p.feed(bytes.subarray(at, at + step));
  }
  return r;
}

describe('ResponseParser: the answers a monitoring endpoint sends', () => {
  it('reads a Content-Length body, whole or split at any byte', () => {
    const bytes = withLength(varz);
    for (const step of [bytes.length, 1, 7, 100, 1000]) {
      const r = feedAll(new ResponseParser(1 << 20), bytes, step);
      assert.ok(r, `complete with pieces of ${step}`);
      assert.equal(r.status, 200);
      assert.ok(r.body.equals(varz), `the body with pieces of ${step}`);
      assert.equal(r.reusable, true);
    }
  });

  it("reads Go's chunked framing (varz over 2 KB), with several chunks, an extension and a trailer, split at any byte", () => {
    const plain = goChunked(varz, [1000, 1, varz.length - 1001]);
    const withExtras = Buffer.from(plain.toString('latin1').replace('3e8\r\n', '3e8;name=value\r\n').replace(/0\r\n\r\n$/, '0\r\nX-Trailer: yes\r\n\r\n'), 'latin1');
    for (const bytes of [plain, withExtras]) {
      for (const step of [bytes.length, 1, 3, 64]) {
        const r = feedAll(new ResponseParser(1 << 20), bytes, step);
        assert.ok(r, `complete with pieces of ${step}`);
        assert.ok(r.body.equals(varz), `the body with pieces of ${step}`);
        assert.equal(r.reusable, true);
      }
    }
  });

  it('reads a body sent as 200,000 one-byte chunks (held in one growing buffer, not a piece per chunk), and bodies of several reads', () => {
    const body = Buffer.alloc(200_000, 0x61);
    const tiny = goChunked(body, Array.from({ length: body.length }, () => 1));
    const r = new ResponseParser(1 << 20).feed(tiny);
    assert.ok(r?.body.equals(body));
    for (const step of [1, 999, 4096]) {
      const big = withLength(Buffer.concat([varz, varz, varz]));
      assert.ok(feedAll(new ResponseParser(1 << 20), big, step)?.body.equals(Buffer.concat([varz, varz, varz])), `pieces of ${step}`);
    }
  });

  it('reads a body delimited by the connection closing; such a connection is not reused', () => {
    const p = new ResponseParser(1 << 20);
    assert.equal(p.feed(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n'), varz.subarray(0, 500)])), undefined);
    assert.equal(p.feed(varz.subarray(500)), undefined);
    const r = p.end();
    assert.ok(r.body.equals(varz));
    assert.equal(r.reusable, false);
  });

  it('skips informational answers before the real one', () => {
    const r = new ResponseParser(1 << 20).feed(Buffer.concat([Buffer.from('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n'), withLength(varz)]));
    assert.equal(r?.status, 200);
    assert.ok(r?.body.equals(varz));
  });

  it('keeps a connection only when the answer allows it: HTTP/1.0 or Connection: close or bytes after the answer end it', () => {
    assert.equal(new ResponseParser(1 << 20).feed(withLength(varz, 'HTTP/1.0 200 OK'))?.reusable, false);
    assert.equal(new ResponseParser(1 << 20).feed(withLength(varz, 'HTTP/1.1 200 OK\r\nConnection: keep-alive, close'))?.reusable, false);
    assert.equal(new ResponseParser(1 << 20).feed(Buffer.concat([withLength(varz), Buffer.from('HTTP/1.1 200 OK\r\n')]))?.reusable, false);
    assert.equal(new ResponseParser(1 << 20).feed(withLength(varz, 'HTTP/1.1 200 OK\r\nConnection: keep-alive'))?.reusable, true);
  });

  it('returns any other status at its head, body unread, connection not reused', () => {
    const r = new ResponseParser(1 << 20).feed(Buffer.from('HTTP/1.1 302 Found\r\nLocation: /varz\r\nContent-Length: 100000\r\n\r\n<a href'));
    assert.deepEqual({ status: r?.status, body: r?.body.length, reusable: r?.reusable }, { status: 302, body: 0, reusable: false });
  });

  it('refuses a body over the cap: declared by Content-Length before it is read, or counted in chunks and close-delimited bodies', () => {
    assert.throws(() => new ResponseParser(1000).feed(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 104857600\r\n\r\n')), (e: unknown) => e instanceof Http1TooLarge && e.declared === 104857600);
    const chunked = goChunked(Buffer.alloc(3000, 0x20), [600, 600, 600, 600, 600]);
    assert.throws(() => feedAll(new ResponseParser(2000), chunked, 100), (e: unknown) => e instanceof Http1TooLarge && e.declared === undefined);
    const p = new ResponseParser(2000);
    p.feed(Buffer.from('HTTP/1.1 200 OK\r\n\r\n'));
    p.feed(Buffer.alloc(1500));
    assert.throws(() => p.feed(Buffer.alloc(501)), Http1TooLarge);
  });

  it('a head split into 1-byte pieces, up to the 16 KB limit, is read; a length together with chunks frames by the chunks and ends the connection', () => {
    const bytes = withLength(varz, `HTTP/1.1 200 OK\r\nX-Pad: ${'p'.repeat(16_000)}`);
    assert.ok(feedAll(new ResponseParser(1 << 20), bytes, 1)?.body.equals(varz));
    const both = Buffer.from(goChunked(varz).toString('latin1').replace('Transfer-Encoding: chunked', 'Content-Length: 3\r\nTransfer-Encoding: chunked'), 'latin1');
    const r = new ResponseParser(1 << 20).feed(both);
    assert.ok(r?.body.equals(varz));
    assert.equal(r?.reusable, false);
  });

  const malformed: [string, string | Buffer, RegExp][] = [
    ['a header name with a space before its colon', 'HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello', /an invalid header name "content-length "/],
    ['not HTTP/1.x', 'HTTP/2 200\r\n\r\n', /not an HTTP\/1\.x status line/],
    ['not HTTP at all', 'SSH-2.0-OpenSSH_9.2\r\n\r\n', /not an HTTP\/1\.x status line/],
    ['a bad chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', /invalid chunk size "zz"/],
    ['a chunk longer than its size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n', /a chunk is longer than its size/],
    ['a compressed transfer', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', /transfer-encoding gzip, chunked is not supported/],
    ['a compressed body', 'HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\n', /content-encoding gzip is not supported/],
    ['two different lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n', /invalid content-length "4"/],
    ['a header line without a name', 'HTTP/1.1 200 OK\r\n: x\r\n\r\n', /a header line without a name/],
    ['a head over 16 KB', `HTTP/1.1 200 OK\r\nX-Big: ${'x'.repeat(17_000)}`, /longer than 16384 bytes/],
  ];
  for (const [what, bytes, message] of malformed) {
    it(`refuses ${what}`, () => {
      assert.throws(() => feedAll(new ResponseParser(1 << 20), Buffer.from(bytes), 5), (e: unknown) => e instanceof Http1Error && e.code === 'EPROTO' && message.test(e.message));
    });
  }

  it('a connection ending early: before any byte (a request may be sent again) or within the answer (it may not)', () => {
    assert.throws(() => new ResponseParser(100).end(), (e: unknown) => e instanceof Http1Error && e.code === 'ECONNRESET' && e.beforeAnswer);
    const p = new ResponseParser(1 << 20);
    p.feed(withLength(varz).subarray(0, 300));
    assert.throws(() => p.end(), (e: unknown) => e instanceof Http1Error && e.code === 'ECONNRESET' && !e.beforeAnswer);
  });
});

describe('requestHead', () => {
  it('writes the GET line, the host and the headers as given', () => {
    assert.equal(requestHead('/base/varz', '[::1]:8222', { accept: 'application/json', authorization: 'Bearer t' }).toString('latin1'), 'GET /base/varz HTTP/1.1\r\nhost: [::1]:8222\r\naccept: application/json\r\nauthorization: Bearer t\r\n\r\n');
  });
  it('refuses a header that would end the head early, is not a token, or frames the request', () => {
    assert.throws(() => requestHead('/varz', 'h', { 'x-a': 'ok\r\nx-b: smuggled' }), /has a character not allowed in HTTP/);
    // Written as latin1, U+010D U+010A would become CR LF: refused like them.
    assert.throws(() => requestHead('/varz', 'h', { authorization: 'Bearer abc\u010d\u010aGET /admin HTTP/1.1' }), /has a character not allowed in HTTP/);
    assert.throws(() => requestHead('/varz', 'h', { 'x a': 'v' }), /invalid header name "x a"/);
    for (const name of ['Content-Length', 'transfer-encoding', 'Connection']) assert.throws(() => requestHead('/varz', 'h', { [name]: '1' }), /is the client's own to set/);
    assert.equal(requestHead('/varz', 'h', { 'x-name': 'Zo\u00eb' }).toString('latin1'), 'GET /varz HTTP/1.1\r\nhost: h\r\nx-name: Zo\u00eb\r\n\r\n');
  });
  it('a configured host replaces the URL\'s, once', () => {
    assert.equal(requestHead('/varz', '10.0.0.1:8222', { Host: 'nats.internal', accept: 'application/json' }).toString('latin1'), 'GET /varz HTTP/1.1\r\nhost: nats.internal\r\naccept: application/json\r\n\r\n');
  });
});

/** A raw TCP server answering each request on a connection through `answer(n, socket)` (n: the request's number on that connection, from 1). */
async function rawServer(answer: (n: number, s: Socket) => void): Promise<{ server: Server; port: number; connections: () => number; sockets: Set<Socket> }> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let n = 0;
    let got = '';
    s.on('data', (b) => {
      got += b.toString('latin1');
      while (got.includes('\r\n\r\n')) {
        got = got.slice(got.indexOf('\r\n\r\n') + 4);
        answer(++n, s);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, connections: () => connections, sockets };
}

async function httpServer(): Promise<{ server: HttpServer; port: number; connections: () => number }> {
  let connections = 0;
  const server = createHttpServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    // Written in two pieces without a length: node frames it chunked, as Go does for a varz over 2 KB.
    res.write(varz.subarray(0, 1000));
    res.end(varz.subarray(1000));
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, connections: () => connections };
}

const ep = (port: number, key = `http://127.0.0.1:${port}`) => endpointOf(new URL(`http://127.0.0.1:${port}/varz`), requestHead('/varz', `127.0.0.1:${port}`, {}), undefined, key);
const get = (pool: Http1Pool, port: number, o: { max?: number; cancel?: Canceller; key?: string } = {}) =>
  pool.get(ep(port, o.key), { maxBodyBytes: o.max ?? 1 << 20, cancel: o.cancel ?? new Canceller() });

async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('Http1Pool against local servers', () => {
  const closers: (() => void)[] = [];
  after(() => closers.forEach((c) => c()));
  const pool = (idleMs?: number): Http1Pool => {
    const p = new Http1Pool(idleMs === undefined ? {} : { idleMs });
    closers.push(() => p.close());
    return p;
  };

  it('sends every GET of an endpoint on one kept-alive connection', async () => {
    const s = await httpServer();
    closers.push(() => s.server.close());
    const p = pool();
    for (let i = 0; i < 5; i++) assert.ok((await get(p, s.port)).body.equals(varz));
    assert.equal(s.connections(), 1);
    assert.equal(p.open, 1);
    assert.deepEqual(p.idleKeys(), [`http://127.0.0.1:${s.port}`]);
  });

  // The server answers the first request of each connection; on the second it closes without a byte (an idle
  // timeout racing the request): with a FIN, or with a reset when the request reached it first.
  for (const [how, end] of [['closed (FIN)', (sock: Socket) => sock.destroy()], ['reset (RST)', (sock: Socket) => sock.resetAndDestroy()]] as const) {
    it(`a kept connection the server ${how} as the GET reached it: the GET is sent again on a new one`, async () => {
      const s = await rawServer((n, sock) => (n === 1 ? sock.write(withLength(varz)) : end(sock)));
      closers.push(() => s.server.close());
      const p = pool();
      assert.ok((await get(p, s.port)).body.equals(varz));
      assert.ok((await get(p, s.port)).body.equals(varz));
      assert.equal(s.connections(), 2);
    });
  }

  it('close() during a GET on a kept connection rejects it and sends nothing again', async () => {
    let requests = 0;
    const s = await rawServer((n, sock) => {
      requests++;
      if (n === 1) sock.write(withLength(varz));
    });
    closers.push(() => s.server.close());
    const p = pool();
    await get(p, s.port);
    const pending = get(p, s.port);
    await until('the second request to arrive', () => requests === 2);
    p.close();
    await assert.rejects(pending, (e: unknown) => e instanceof Http1Error && !e.beforeAnswer && /the client is closed/.test(e.message));
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual([s.connections(), requests, p.open], [1, 2, 0]);
  });

  it('not sent again when the answer had begun, nor on a new connection', async () => {
    const s = await rawServer((_n, sock) => {
      sock.write('HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n{"server_id"');
      setTimeout(() => sock.destroy(), 20);
    });
    closers.push(() => s.server.close());
    const p = pool();
    await assert.rejects(get(p, s.port), (e: unknown) => e instanceof Http1Error && e.code === 'ECONNRESET' && !e.beforeAnswer);
    assert.equal(s.connections(), 1);
    await until('the connection to be forgotten', () => p.open === 0);
  });

  it('a refused connection rejects with its code', async () => {
    const s = await rawServer(() => undefined);
    const port = s.port;
    await new Promise((r) => s.server.close(r));
    await assert.rejects(get(pool(), port), { code: 'ECONNREFUSED' });
  });

  it('cancelling (a timeout) rejects at once and closes the connection', async () => {
    const s = await rawServer(() => undefined);
    closers.push(() => s.server.close());
    const p = pool();
    const cancel = new Canceller();
    const pending = get(p, s.port, { cancel });
    await until('the request to arrive', () => s.sockets.size === 1);
    cancel.cancel();
    await assert.rejects(pending, Http1Aborted);
    await until('the server to see the close', () => s.sockets.size === 0);
    assert.equal(p.open, 0);
    await assert.rejects(get(p, s.port, { cancel }), Http1Aborted, 'an already cancelled GET is not sent');
    assert.equal(s.connections(), 1);
  });

  it('bytes arriving on an idle connection close it; the next GET opens another', async () => {
    const s = await rawServer((n, sock) => {
      sock.write(withLength(varz));
      if (n === 1) setTimeout(() => sock.write('HTTP/1.1 200 OK\r\n'), 20);
    });
    closers.push(() => s.server.close());
    const p = pool();
    await get(p, s.port);
    await until('the idle connection to be closed', () => p.open === 0);
    assert.ok((await get(p, s.port)).body.equals(varz));
    assert.equal(s.connections(), 2);
  });

  it('closes connections idle for longer than idleMs (one sweep timer)', async () => {
    const s = await httpServer();
    closers.push(() => s.server.close());
    const p = pool(200);
    await get(p, s.port);
    assert.equal(p.open, 1);
    await until('the idle connection to be swept', () => p.open === 0);
  });

  it('concurrent GETs of one endpoint each get an answer; one connection stays', async () => {
    const s = await httpServer();
    closers.push(() => s.server.close());
    const p = pool();
    const bodies = await Promise.all([get(p, s.port), get(p, s.port), get(p, s.port)]);
    for (const r of bodies) assert.ok(r.body.equals(varz));
    assert.equal(s.connections(), 3);
    await until('the extra connections to close', () => p.open === 1);
  });

  it('retain closes the idle connections of the keys not kept', async () => {
    const a = await httpServer();
    const b = await httpServer();
    closers.push(() => a.server.close(), () => b.server.close());
    const p = pool();
    await get(p, a.port);
    await get(p, b.port);
    assert.equal(p.retain(new Set([`http://127.0.0.1:${a.port}`])), 1);
    await until('b closed', () => p.open === 1);
    assert.deepEqual(p.idleKeys(), [`http://127.0.0.1:${a.port}`]);
  });

  it('after retain, a GET in flight of a key not kept closes its connection when it ends', async () => {
    const s = await rawServer((_n, sock) => setTimeout(() => sock.write(withLength(varz)), 100));
    const kept = await httpServer();
    closers.push(() => s.server.close(), () => kept.server.close());
    const p = pool();
    const pending = get(p, s.port);
    await until('the request to arrive', () => s.sockets.size === 1);
    assert.equal(p.retain(new Set([`http://127.0.0.1:${kept.port}`])), 0, 'nothing idle yet');
    assert.ok((await pending).body.equals(varz));
    await until('its connection closed, not kept', () => p.open === 0);
    await get(p, kept.port);
    assert.equal(p.open, 1, 'a kept key is kept');
  });

  it('close rejects the GETs in flight and closes everything', async () => {
    const s = await rawServer(() => undefined);
    closers.push(() => s.server.close());
    const p = pool();
    const pending = get(p, s.port);
    await until('the request to arrive', () => s.sockets.size === 1);
    p.close();
    await assert.rejects(pending, Http1Error);
    await until('the server to see the close', () => s.sockets.size === 0);
  });

  it('a body over the cap rejects and closes its connection', async () => {
    const s = await httpServer();
    closers.push(() => s.server.close());
    const p = pool();
    await assert.rejects(get(p, s.port, { max: 1200 }), Http1TooLarge);
    await until('closed', () => p.open === 0);
  });
});
