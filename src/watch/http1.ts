/**
 * The poller's HTTP client: a GET on one keep-alive HTTP/1.1 connection per monitoring endpoint, and a
 * reader for the answer. Nothing more: no redirects, no pipelining, no compression, no proxies.
 *
 * Why not undici, which the daemon still uses for prof_port captures: with 5,000 endpoints each GET once a
 * second (bench/http-client.ts), undici held 4.4 KB more JS heap per connection (its Client, stream states,
 * llhttp parser, timers), peaked at 300 MB against 139 MB, and cost 129 µs of CPU per GET and JSON.parse
 * against 52 µs here. At thousands of servers that was most of the daemon's memory and more than half its
 * CPU (BENCHMARKS.md, issue 16, fourth round).
 *
 * What a monitoring endpoint sends: nats-server's Go net/http answers with Content-Length up to 2 KB and
 * with `Transfer-Encoding: chunked` above (most clustered servers' varz); both are read here, and so is a
 * body delimited by the connection's close (HTTP/1.0, or no length given). A status other than 200 is
 * returned as soon as its head is read, its body unread and its connection closed: the poller only needs
 * the status. A connection is reused only after a complete answer that allows it (HTTP/1.1, no
 * `Connection: close`, a length or chunks, and nothing after the body).
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import type { Canceller } from '../cancel.js';
import { FRAMING_HEADERS, HEADER_NAME, HEADER_VALUE } from '../config/header.js';

/** Where to send the request and what to send, built once per watched server. */
export interface Http1Endpoint {
  /** Connections are reused only under the same key: the origin, plus the TLS identity for https. */
  readonly key: string;
  readonly host: string;
  readonly port: number;
  /** Set for https: the TLS options (CA, client certificate, verification). */
  readonly tls: ConnectionOptions | undefined;
  /** The whole request head (GET line and headers), written as is. */
  readonly request: Buffer;
}

export interface Http1Response {
  readonly status: number;
  /** The body of a 200 answer; empty for any other status (not read). */
  readonly body: Buffer;
}

/** A malformed answer, or a connection closed before the answer ended. `code` says which. */
export class Http1Error extends Error {
  override readonly name = 'Http1Error';
  constructor(
    message: string,
    /** EPROTO: not HTTP/1.x as this reader accepts it; ECONNRESET: the connection ended early. */
    readonly code: 'EPROTO' | 'ECONNRESET',
    /** No byte of the answer had arrived: a request on a reused connection may be sent again. */
    readonly beforeAnswer = false,
  ) {
    super(message);
  }
}

/** The body is larger than allowed; `declared` when a Content-Length said so before any byte of it came. */
export class Http1TooLarge extends Error {
  override readonly name = 'Http1TooLarge';
  constructor(readonly declared: number | undefined) {
    super(declared === undefined ? 'the body is larger than allowed' : `the body is ${declared} bytes, larger than allowed`);
  }
}

export class Http1Aborted extends Error {
  override readonly name = 'AbortError';
  constructor() {
    super('the request was cancelled');
  }
}

const MAX_HEAD = 16 * 1024;
const MAX_LINE = 1024;

const EMPTY = Buffer.alloc(0);
const CRLFCRLF = Buffer.from('\r\n\r\n');

/**
 * Builds a GET's request head. Throws for a header name that is not an HTTP token or a value with a line
 * break (the config refuses those; this keeps any other caller from writing a second request into the first).
 */
export function requestHead(path: string, host: string, headers: Readonly<Record<string, string>>): Buffer {
  const given = Object.entries(headers);
  // A configured Host replaces the URL's (a server behind a proxy); two would be a 400 from Go's net/http.
  const ownHost = given.find(([name]) => name.toLowerCase() === 'host');
  let head = `GET ${path} HTTP/1.1\r\nhost: ${ownHost?.[1] ?? host}\r\n`;
  for (const [name, value] of given) {
    if (!HEADER_NAME.test(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
    if (FRAMING_HEADERS.has(name.toLowerCase())) throw new TypeError(`header ${name} is the client's own to set`);
    if (!HEADER_VALUE.test(value)) throw new TypeError(`the value of header ${name} has a character not allowed in HTTP (a line break, a control character, or beyond latin-1)`);
    if (name.toLowerCase() === 'host') continue;
    head += `${name}: ${value}\r\n`;
  }
  return Buffer.from(`${head}\r\n`, 'latin1');
}

/** Where an endpoint's URL points (URL host names keep IPv6 brackets; connect wants them off). */
export function endpointOf(url: URL, request: Buffer, tls: ConnectionOptions | undefined, key: string): Http1Endpoint {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  return { key, host, port, tls, request };
}

const enum State {
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkEnd,
  Trailers,
  UntilClose,
  Done,
}

/** What the reader has once an answer is complete. */
export interface ParsedResponse {
  readonly status: number;
  readonly body: Buffer;
  /** The connection may carry the next request. */
  readonly reusable: boolean;
}

/**
 * Reads one answer from the bytes of a connection, in whatever pieces they arrive (pure: no I/O). `feed`
 * returns the answer once it is complete, `end` is called when the connection ends. Both throw
 * Http1Error or Http1TooLarge.
 */
export class ResponseParser {
  readonly #max: number;
  #state = State.Head;
  /** Head bytes so far, while the head spans several pieces (`#headLength` of them). */
  #head: Buffer | undefined;
  #headLength = 0;
  #status = 0;
  #keepAlive = false;
  /** Bytes left of the body (Length) or of the current chunk (ChunkData, ChunkEnd). */
  #left = 0;
  /** The body while it is one piece of one read (a view, no copy: the usual case). */
  #first: Buffer | undefined;
  /**
   * The body once a second piece comes: copied into a buffer grown by doubling, so that a body sent in
   * thousands of tiny chunks costs at most twice its size, not an object per chunk.
   */
  #acc: Buffer | undefined;
  #size = 0;
  /** A chunk-size or trailer line spanning pieces. */
  #line = '';
  #received = false;

  constructor(maxBodyBytes: number) {
    this.#max = maxBodyBytes;
  }

  /** Some byte of the answer has arrived. */
  get received(): boolean {
    return this.#received;
  }

  feed(chunk: Buffer): ParsedResponse | undefined {
    if (chunk.length > 0) this.#received = true;
    let at = 0;
    while (at < chunk.length || this.#state === State.Done) {
      switch (this.#state) {
        case State.Head: {
          const r = this.#readHead(chunk, at);
          if (r < 0) return undefined;
          at = r;
          if ((this.#state as State) === State.Done) return this.#finish(at < chunk.length);
          break;
        }
        case State.Length:
          at = this.#takeLeft(chunk, at, State.Done);
          break;
        case State.ChunkSize: {
          const line = this.#readLine(chunk, at);
          if (line === undefined) return undefined;
          at = line.next;
          const hex = (line.text.split(';')[0] as string).trim();
          if (!/^[0-9a-fA-F]{1,8}$/.test(hex)) throw new Http1Error(`invalid chunk size ${JSON.stringify(line.text.slice(0, 40))}`, 'EPROTO');
          const size = Number.parseInt(hex, 16);
          if (size === 0) this.#state = State.Trailers;
          else {
            if (this.#size + size > this.#max) throw new Http1TooLarge(undefined);
            this.#left = size;
            this.#state = State.ChunkData;
          }
          break;
        }
        case State.ChunkData:
          at = this.#takeLeft(chunk, at, State.ChunkEnd);
          break;
        case State.ChunkEnd: {
          const line = this.#readLine(chunk, at);
          if (line === undefined) return undefined;
          if (line.text !== '') throw new Http1Error('a chunk is longer than its size', 'EPROTO');
          at = line.next;
          this.#state = State.ChunkSize;
          break;
        }
        case State.Trailers: {
          const line = this.#readLine(chunk, at);
          if (line === undefined) return undefined;
          at = line.next;
          if (line.text === '') this.#state = State.Done;
          break;
        }
        case State.UntilClose: {
          if (this.#size + chunk.length - at > this.#max) throw new Http1TooLarge(undefined);
          this.#take(chunk, at, chunk.length);
          at = chunk.length;
          break;
        }
        case State.Done:
          return this.#finish(at < chunk.length);
      }
    }
    return undefined;
  }

  /** The connection ended: the answer, if its end is the connection's end; else an error. */
  end(): ParsedResponse {
    if (this.#state === State.UntilClose) {
      this.#state = State.Done;
      return this.#finish(true);
    }
    throw new Http1Error(
      this.#received ? 'the connection closed before the answer ended' : 'the connection closed before any answer',
      'ECONNRESET',
      !this.#received,
    );
  }

  #finish(extra: boolean): ParsedResponse {
    const acc = this.#acc;
    // A grown buffer much larger than the body is not kept with it (the poller keeps each server's last body).
    let body = acc === undefined ? (this.#first ?? EMPTY) : acc.subarray(0, this.#size);
    if (acc !== undefined && acc.length > this.#size * 1.25) {
      body = Buffer.allocUnsafeSlow(this.#size);
      acc.copy(body, 0, 0, this.#size);
    }
    this.#first = undefined;
    this.#acc = undefined;
    // Bytes after a complete answer were not asked for: that connection is not trusted with another request.
    return { status: this.#status, body, reusable: this.#keepAlive && !extra };
  }

  /** Takes what the chunk has of the `#left` bytes due from `at`; once all are taken, goes on to `next`. Returns the offset after them. */
  #takeLeft(chunk: Buffer, at: number, next: State): number {
    const n = Math.min(this.#left, chunk.length - at);
    this.#take(chunk, at, at + n);
    this.#left -= n;
    if (this.#left === 0) this.#state = next;
    return at + n;
  }

  #take(chunk: Buffer, from: number, to: number): void {
    if (to <= from) return;
    const n = to - from;
    if (this.#first === undefined && this.#acc === undefined) {
      this.#first = from === 0 && to === chunk.length ? chunk : chunk.subarray(from, to);
      this.#size = n;
      return;
    }
    let acc = this.#acc;
    if (acc === undefined || acc.length < this.#size + n) {
      const grown = Buffer.allocUnsafeSlow(Math.max(2048, 2 * (this.#size + n)));
      if (acc !== undefined) acc.copy(grown, 0, 0, this.#size);
      else (this.#first as Buffer).copy(grown, 0);
      this.#first = undefined;
      this.#acc = acc = grown;
    }
    chunk.copy(acc, this.#size, from, to);
    this.#size += n;
  }

  /** A CRLF-ended line from `at`, joined with what earlier pieces left; undefined while incomplete. */
  #readLine(chunk: Buffer, at: number): { text: string; next: number } | undefined {
    const end = chunk.indexOf(10, at);
    if (end < 0) {
      this.#line += chunk.toString('latin1', at, chunk.length);
      if (this.#line.length > MAX_LINE) throw new Http1Error('a chunk-size or trailer line is too long', 'EPROTO');
      return undefined;
    }
    let text = this.#line + chunk.toString('latin1', at, end);
    this.#line = '';
    if (!text.endsWith('\r')) throw new Http1Error('a line does not end with CRLF', 'EPROTO');
    text = text.slice(0, -1);
    return { text, next: end + 1 };
  }

  /** Reads the head; returns the offset after it, or -1 while incomplete. Sets the body's state. */
  #readHead(chunk: Buffer, at: number): number {
    const tooLong = (): Http1Error => new Http1Error(`the response head is longer than ${MAX_HEAD} bytes`, 'EPROTO');
    if (this.#head === undefined) {
      const end = chunk.indexOf(CRLFCRLF, at);
      if (end >= 0) {
        if (end - at > MAX_HEAD) throw tooLong();
        this.#parseHead(chunk.toString('latin1', at, end));
        return end + 4;
      }
      if (chunk.length - at > MAX_HEAD) throw tooLong();
      // A head split over reads is gathered in one buffer (copying each byte once, however small the pieces).
      this.#head = Buffer.allocUnsafeSlow(MAX_HEAD + 4);
      this.#headLength = chunk.copy(this.#head, 0, at);
      return -1;
    }
    const head = this.#head;
    const before = this.#headLength;
    const length = before + chunk.copy(head, before, at, at + Math.min(chunk.length - at, head.length - before));
    // The end may straddle the pieces: look from 3 bytes before the new ones.
    const end = head.subarray(0, length).indexOf(CRLFCRLF, Math.max(0, before - 3));
    if (end < 0) {
      if (length > MAX_HEAD) throw tooLong();
      this.#headLength = length;
      return -1;
    }
    if (end > MAX_HEAD) throw tooLong();
    this.#head = undefined;
    this.#headLength = 0;
    this.#parseHead(head.toString('latin1', 0, end));
    // The bytes of this piece that belong to the head: those up to the end of the CRLFCRLF.
    return at + (end + 4 - before);
  }

  #parseHead(text: string): void {
    const lines = text.split('\r\n');
    const m = /^HTTP\/1\.([01]) (\d{3})(?: |$)/.exec(lines[0] as string);
    if (!m) throw new Http1Error(`not an HTTP/1.x status line: ${JSON.stringify((lines[0] as string).slice(0, 40))}`, 'EPROTO');
    const status = Number(m[2]);
    if (status >= 100 && status < 200 && status !== 101) return; // informational: the real answer follows
    this.#status = status;
    let length: number | undefined;
    let chunked = false;
    let close = m[1] === '0';
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] as string;
      const colon = line.indexOf(':');
      if (colon <= 0) throw new Http1Error(`a header line without a name: ${JSON.stringify(line.slice(0, 40))}`, 'EPROTO');
      const name = line.slice(0, colon).toLowerCase();
      // "Content-Length : 5" is not Content-Length to one reader and is to another: refused, not guessed.
      if (!HEADER_NAME.test(name)) throw new Http1Error(`an invalid header name ${JSON.stringify(name.slice(0, 40))}`, 'EPROTO');
      if (name === 'content-length') {
        const v = line.slice(colon + 1).trim();
        if (!/^\d{1,15}$/.test(v) || (length !== undefined && length !== Number(v))) throw new Http1Error(`invalid content-length ${JSON.stringify(v.slice(0, 20))}`, 'EPROTO');
        length = Number(v);
      } else if (name === 'transfer-encoding') {
        const codings = line.slice(colon + 1).toLowerCase().split(',').map((s) => s.trim());
        if (codings.length !== 1 || codings[0] !== 'chunked') throw new Http1Error(`transfer-encoding ${codings.join(', ')} is not supported`, 'EPROTO');
        chunked = true;
      } else if (name === 'connection') {
        if (/(^|,)\s*close\s*(,|$)/i.test(line.slice(colon + 1))) close = true;
      } else if (name === 'content-encoding') {
        const v = line.slice(colon + 1).trim().toLowerCase();
        if (v !== '' && v !== 'identity') throw new Http1Error(`content-encoding ${v} is not supported`, 'EPROTO');
      }
    }
    // Both a length and chunks: the chunks frame the body, and the connection is not trusted further.
    this.#keepAlive = !close && !(chunked && length !== undefined);
    if (status !== 200) {
      // Only the status matters; the body is not read, so the connection cannot be reused.
      this.#keepAlive = false;
      this.#state = State.Done;
      return;
    }
    if (chunked) {
      this.#state = State.ChunkSize;
    } else if (length !== undefined) {
      if (length > this.#max) throw new Http1TooLarge(length);
      this.#left = length;
      this.#state = length === 0 ? State.Done : State.Length;
    } else {
      this.#keepAlive = false;
      this.#state = State.UntilClose;
    }
  }
}

export interface Http1GetOptions {
  readonly maxBodyBytes: number;
  /** Fires on the caller's timeout or shutdown: the connection is destroyed and the GET rejects. */
  readonly cancel: Canceller;
}

/** One connection and, while it carries a request, that request's state. */
class Connection {
  readonly socket: Socket;
  /** Carrying a GET (the pool's flag: a kept connection stays in its map, idle or busy). */
  busy = false;
  idleSince = 0;
  #parser: ResponseParser | undefined;
  #resolve: ((r: ParsedResponse) => void) | undefined;
  #reject: ((e: Error) => void) | undefined;
  #cancel: Canceller | undefined;
  #closed = false;
  /** Called once the socket is gone (the pool forgets it). */
  onGone: (c: Connection) => void = () => undefined;

  constructor(readonly key: string, ep: Http1Endpoint) {
    const s = ep.tls
      ? tlsConnect({ ...ep.tls, host: ep.host, port: ep.port, ALPNProtocols: ['http/1.1'], ...(isIP(ep.host) ? {} : { servername: ep.host }) })
      : netConnect({ host: ep.host, port: ep.port });
    s.setNoDelay(true);
    s.on('data', (b: Buffer) => this.#data(b));
    s.on('end', () => this.#end());
    s.on('error', (err) => this.#error(err));
    s.on('close', () => this.#gone());
    this.socket = s;
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(request: Buffer, opts: Http1GetOptions): Promise<ParsedResponse> {
    if (this.#closed || this.socket.destroyed) return Promise.reject(new Http1Error('the connection closed before any answer', 'ECONNRESET', true));
    return new Promise<ParsedResponse>((resolve, reject) => {
      this.#parser = new ResponseParser(opts.maxBodyBytes);
      this.#resolve = resolve;
      this.#reject = reject;
      this.#cancel = opts.cancel;
      opts.cancel.once('abort', this.#onAbort);
      this.socket.write(request);
    });
  }

  readonly #onAbort = (): void => this.#fail(new Http1Aborted());

  #settle(): { resolve: (r: ParsedResponse) => void; reject: (e: Error) => void } | undefined {
    const resolve = this.#resolve;
    const reject = this.#reject;
    if (!resolve || !reject) return undefined;
    this.#resolve = undefined;
    this.#reject = undefined;
    this.#parser = undefined;
    this.#cancel?.removeListener('abort', this.#onAbort);
    this.#cancel = undefined;
    return { resolve, reject };
  }

  #data(b: Buffer): void {
    const parser = this.#parser;
    if (!parser) {
      // Bytes nobody asked for (an idle connection): not trusted with another request.
      this.destroy();
      return;
    }
    let r: ParsedResponse | undefined;
    try {
      r = parser.feed(b);
    } catch (err) {
      this.#fail(err as Error);
      return;
    }
    if (!r) return;
    if (!r.reusable) this.destroy();
    this.#settle()?.resolve(r);
  }

  #end(): void {
    const parser = this.#parser;
    if (parser) {
      try {
        const r = parser.end();
        this.#settle()?.resolve(r);
      } catch (err) {
        this.#fail(err as Error);
      }
    }
    this.destroy();
  }

  /**
   * A socket error. A reset (or a write into one) before any byte of the answer is what a kept connection the
   * server closed meanwhile looks like when our request reached it first (RST rather than FIN): resendable.
   */
  #error(err: Error): void {
    const code = (err as { code?: string }).code;
    if (this.#parser !== undefined && !this.#parser.received && (code === 'ECONNRESET' || code === 'EPIPE')) {
      this.#fail(new Http1Error(`the connection was reset before any answer (${code})`, 'ECONNRESET', true));
    } else {
      this.#fail(err);
    }
  }

  #fail(err: Error): void {
    this.destroy();
    this.#settle()?.reject(err);
  }

  #gone(): void {
    this.#closed = true;
    const received = this.#parser?.received ?? false;
    this.#settle()?.reject(
      new Http1Error(received ? 'the connection closed before the answer ended' : 'the connection closed before any answer', 'ECONNRESET', !received),
    );
    this.onGone(this);
  }

  /** Closes the socket; the pool forgets the connection now, not at the socket's later 'close'. */
  destroy(): void {
    this.#closed = true;
    if (!this.socket.destroyed) this.socket.destroy();
    this.onGone(this);
  }

  /** Closed by this side (the pool's close or retain): a GET it carries rejects now and is not sent again. */
  close(why: string): void {
    this.destroy();
    this.#settle()?.reject(new Http1Error(why, 'ECONNRESET', false));
  }
}

/**
 * Keep-alive connections by endpoint key: at most one kept connection per key (a poller asks one server
 * one thing at a time; a second concurrent GET to the same key opens a connection of its own and closes it
 * after, unless the key has none kept). A kept connection stays in the map for its whole life, idle or busy:
 * a GET marks it busy and back, without taking it out and putting it back (at 5,000 polls a second that churn
 * rebuilt the map's table about once a second). Idle connections are closed after `idleMs` by one sweep timer,
 * not one timer per connection.
 */
export class Http1Pool {
  readonly #kept = new Map<string, Connection>();
  readonly #all = new Set<Connection>();
  readonly #idleMs: number;
  #sweeper: NodeJS.Timeout | undefined;
  #closed = false;
  /** The keys of the last retain: a connection of another key is closed when its GET ends. */
  #wanted: ReadonlySet<string> | undefined;

  constructor(opts: { idleMs?: number } = {}) {
    this.#idleMs = opts.idleMs ?? 30_000;
  }

  /** Connections open now (idle or carrying a request). */
  get open(): number {
    return this.#all.size;
  }

  /** Keys with an idle connection. */
  idleKeys(): string[] {
    const keys: string[] = [];
    for (const [key, c] of this.#kept) if (!c.busy) keys.push(key);
    return keys;
  }

  /**
   * GETs the endpoint's request. On a reused connection the server may have closed meanwhile: when it ends
   * before any byte of the answer, the request is sent once more on a new connection. Rejects with
   * Http1Error, Http1TooLarge, Http1Aborted or the socket's own error (ECONNREFUSED, a TLS verification code…).
   */
  async get(ep: Http1Endpoint, opts: Http1GetOptions): Promise<Http1Response> {
    if (this.#closed) throw new Http1Error('the client is closed', 'ECONNRESET');
    if (opts.cancel.aborted) throw new Http1Aborted();
    let c = this.#kept.get(ep.key);
    let r: ParsedResponse;
    if (c && !c.busy && !c.closed) {
      c.busy = true;
      try {
        r = await c.send(ep.request, opts);
      } catch (err) {
        if (!(err instanceof Http1Error && err.beforeAnswer) || opts.cancel.aborted || this.#closed) throw err;
        c = this.#open(ep);
        r = await c.send(ep.request, opts);
      }
    } else {
      c = this.#open(ep);
      r = await c.send(ep.request, opts);
    }
    if (r.reusable && !c.closed) this.#release(c);
    return r;
  }

  #open(ep: Http1Endpoint): Connection {
    if (this.#closed) throw new Http1Error('the client is closed', 'ECONNRESET');
    const c = new Connection(ep.key, ep);
    c.busy = true;
    c.onGone = this.#forget;
    this.#all.add(c);
    return c;
  }

  /** A GET ended with the connection reusable: kept idle for its key, or closed. */
  #release(c: Connection): void {
    const kept = this.#kept.get(c.key);
    if (this.#closed || (kept !== undefined && kept !== c) || (this.#wanted !== undefined && !this.#wanted.has(c.key))) {
      c.destroy();
      return;
    }
    c.busy = false;
    c.idleSince = Date.now();
    if (kept === undefined) this.#kept.set(c.key, c);
    this.#sweeper ??= setInterval(() => this.#sweep(), Math.max(1_000, this.#idleMs / 2)).unref();
  }

  readonly #forget = (c: Connection): void => {
    this.#all.delete(c);
    if (this.#kept.get(c.key) === c) this.#kept.delete(c.key);
  };

  #sweep(): void {
    const oldest = Date.now() - this.#idleMs;
    for (const c of this.#kept.values()) if (!c.busy && c.idleSince <= oldest) c.destroy();
    if (this.#kept.size === 0 && this.#sweeper) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  /**
   * Closes the idle connections of every key not in `keep`, and from now on does not keep one of those keys
   * when its GET in flight ends (until the next retain). Returns how many were closed now.
   */
  retain(keep: ReadonlySet<string>): number {
    this.#wanted = keep;
    let n = 0;
    for (const [key, c] of this.#kept) {
      if (keep.has(key) || c.busy) continue;
      this.#kept.delete(key);
      c.destroy();
      n++;
    }
    return n;
  }

  /** Closes every connection; GETs in flight reject. */
  close(): void {
    this.#closed = true;
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    for (const c of [...this.#all]) c.close('the client is closed');
    this.#kept.clear();
  }
}
