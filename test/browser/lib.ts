/**
 * What the browser tests share: the Chromium that scripts/get-chromium.sh provides (a test that cannot get
 * one fails), a page that records console errors and uncaught exceptions, and real load on a nats-server
 * through the benchmarks' load generator (raw NATS protocol in a child process).
 */
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser, type ConsoleMessage, type Page } from 'playwright-core';
import { ROOT } from '../helpers/daemon.js';
import { APP_PASSWORD, APP_USER, type NatsServer } from '../helpers/nats-server.js';

const execFileP = promisify(execFile);

export async function chromiumPath(): Promise<string> {
  const { stdout } = await execFileP('bash', [join(ROOT, 'scripts', 'get-chromium.sh')], { timeout: 600_000 });
  const bin = stdout.trim();
  if (!bin) throw new Error('scripts/get-chromium.sh printed no path');
  return bin;
}

export async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: await chromiumPath(),
    headless: true,
    // Root in a container has no user namespace for Chromium's sandbox.
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  });
}

export interface WatchedPage {
  page: Page;
  /** console.error lines and uncaught exceptions, in order. */
  errors: string[];
}

export async function openPage(browser: Browser, o: { width?: number; height?: number } = {}): Promise<WatchedPage> {
  const ctx = await browser.newContext({ viewport: { width: o.width ?? 1400, height: o.height ?? 900 }, deviceScaleFactor: 1 });
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on('console', (m: ConsoleMessage) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e: Error) => errors.push(`pageerror: ${e.message}`));
  return { page, errors };
}

/** Publishes small messages as fast as the server takes them, with `subs` subscribers to fan out to. */
export class Load {
  readonly #child: ChildProcess;
  private constructor(child: ChildProcess) {
    this.#child = child;
  }

  static async start(srv: NatsServer, subs: number): Promise<Load> {
    const child = fork(join(ROOT, 'bench', 'lib', 'load-gen.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], cwd: ROOT });
    const l = new Load(child);
    await l.#ask({ type: 'init', host: '127.0.0.1', port: srv.ports.client, user: APP_USER, pass: APP_PASSWORD, subs }, 'ready');
    await l.#ask({ type: 'start' }, 'started');
    return l;
  }

  #ask(msg: Record<string, unknown>, want: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`load generator: no "${want}" within 20 s`)), 20_000);
      const on = (m: { type: string; error?: string }): void => {
        if (m.type === want || m.type === 'error') {
          clearTimeout(timer);
          this.#child.off('message', on);
          if (m.type === 'error') reject(new Error(`load generator: ${m.error}`));
          else resolve();
        }
      };
      this.#child.on('message', on);
      this.#child.send(msg);
    });
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise((r) => this.#child.once('exit', r));
    this.#child.kill('SIGKILL');
    await exited;
  }
}
