/**
 * The daemon's HTTP listener (node:http): /metrics, /healthz, /readyz. Routing is a plain table;
 * errors become JSON 4xx/5xx bodies without stack traces.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';

export interface Readiness {
  ready: boolean;
  reason?: string;
}

export interface HttpHandlers {
  metrics(): Promise<{ contentType: string; body: string }>;
  readiness(): Readiness;
}

export interface HttpServerOptions {
  host: string;
  port: number;
  handlers: HttpHandlers;
  log: Logger;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export class HttpServer {
  readonly #o: HttpServerOptions;
  #server: Server | undefined;

  constructor(o: HttpServerOptions) {
    this.#o = o;
  }

  /** Listens; rejects with the listen error (e.g. EADDRINUSE) instead of retrying. */
  async start(): Promise<AddressInfo> {
    const server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        this.#o.log.error({ err, path: req.url }, 'HTTP handler failed');
        if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
        else res.destroy();
      });
    });
    server.keepAliveTimeout = 5_000;
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#o.port, this.#o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
    return server.address() as AddressInfo;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      sendJson(res, 405, { error: `method ${method} not allowed on ${path}` });
      return;
    }
    switch (path) {
      case '/metrics': {
        const m = await this.#o.handlers.metrics();
        res.writeHead(200, { 'content-type': m.contentType });
        res.end(m.body);
        return;
      }
      case '/healthz':
        sendJson(res, 200, { status: 'ok' });
        return;
      case '/readyz': {
        const r = this.#o.handlers.readiness();
        sendJson(res, r.ready ? 200 : 503, r.ready ? { status: 'ready' } : { status: 'not ready', reason: r.reason });
        return;
      }
      default:
        sendJson(res, 404, { error: `no route ${path}` });
    }
  }

  /** Closes the listener and idle connections. Idempotent. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), 1_000).unref();
    });
  }
}
