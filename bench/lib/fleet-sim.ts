/**
 * The parent side of the varz simulator: starts enough simulator processes for N endpoints (at most
 * PER_PROCESS each, so no process holds too many sockets or saturates one core), and controls them.
 */
import type { ChildProcess } from 'node:child_process';
import { ask, forkTs, stopChild } from './children.js';

const PER_PROCESS = 2500;

export class VarzFleet {
  readonly #procs: { p: ChildProcess; first: number; count: number }[] = [];
  ports: number[] = [];

  get pids(): number[] {
    return this.#procs.map((x) => x.p.pid as number);
  }

  get urls(): string[] {
    return this.ports.map((p) => `http://127.0.0.1:${p}`);
  }

  static async start(n: number, seed = 1): Promise<VarzFleet> {
    const f = new VarzFleet();
    try {
      for (let first = 0; first < n; first += PER_PROCESS) {
        const count = Math.min(PER_PROCESS, n - first);
        f.#procs.push({ p: forkTs('lib/varz-sim.ts'), first, count });
      }
      const replies = await Promise.all(
        f.#procs.map((x) => ask<{ ports: number[] }>(x.p, { type: 'start', first: x.first, count: x.count, seed }, 'ready', 120_000)),
      );
      f.ports = replies.flatMap((r) => r.ports);
    } catch (err) {
      await f.stop();
      throw err;
    }
    return f;
  }

  /** Forces varz cpu on servers (global indices; all when omitted); null restores quiet random values. */
  async setCpu(cpu: number | null, indices?: number[]): Promise<void> {
    await Promise.all(
      this.#procs.map((x) => {
        const local = indices?.filter((i) => i >= x.first && i < x.first + x.count).map((i) => i - x.first);
        if (local && local.length === 0) return Promise.resolve();
        return ask(x.p, { type: 'set', cpu, ...(local ? { indices: local } : {}) }, 'set-done');
      }),
    );
  }

  async requests(): Promise<number> {
    const r = await Promise.all(this.#procs.map((x) => ask<{ requests: number }>(x.p, { type: 'stats' }, 'stats')));
    return r.reduce((a, b) => a + b.requests, 0);
  }

  /** The most connections open at once not yet answered, per simulator process (see varz-sim.ts). */
  async maxUnanswered(): Promise<number[]> {
    const r = await Promise.all(this.#procs.map((x) => ask<{ maxUnanswered: number }>(x.p, { type: 'stats' }, 'stats')));
    return r.map((x) => x.maxUnanswered);
  }

  async stop(): Promise<void> {
    await Promise.all(this.#procs.map((x) => stopChild(x.p)));
  }
}
