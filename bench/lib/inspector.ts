/**
 * CPU profile of a time window of another Node process (the daemon started with --inspect on loopback),
 * through the DevTools protocol: the same data as `node --cpu-prof`, but covering only the measured
 * window, not start-up. Uses undici's WebSocket (a dependency already).
 */
import { writeFileSync } from 'node:fs';
import { WebSocket } from 'undici';

export class WindowProfiler {
  readonly #ws: WebSocket;
  #next = 1;
  readonly #pending = new Map<number, { res: (v: unknown) => void; rej: (e: Error) => void }>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.addEventListener('message', (ev) => {
      const m = JSON.parse(String(ev.data)) as { id?: number; result?: unknown; error?: { message: string } };
      if (m.id === undefined) return;
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.error) p.rej(new Error(m.error.message));
      else p.res(m.result);
    });
  }

  static attach(wsUrl: string): Promise<WindowProfiler> {
    return new Promise((res, rej) => {
      const ws = new WebSocket(wsUrl);
      ws.addEventListener('open', () => res(new WindowProfiler(ws)), { once: true });
      ws.addEventListener('error', () => rej(new Error(`cannot attach to ${wsUrl}`)), { once: true });
    });
  }

  #call<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((res, rej) => {
      this.#pending.set(id, { res: res as (v: unknown) => void, rej });
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
  }

  async start(intervalUs = 1000): Promise<void> {
    await this.#call('Profiler.enable');
    await this.#call('Profiler.setSamplingInterval', { interval: intervalUs });
    await this.#call('Profiler.start');
  }

  /** Stops and writes the profile (a .cpuprofile JSON) to `file`. */
  async stop(file: string): Promise<void> {
    const r = await this.#call<{ profile: unknown }>('Profiler.stop');
    writeFileSync(file, JSON.stringify(r.profile));
  }

  close(): void {
    this.#ws.close();
  }
}
