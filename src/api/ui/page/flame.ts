/**
 * Icicle flame graph on one <canvas>: no DOM node per frame, so trees of tens of thousands of nodes stay
 * fast. The tree comes as flat typed arrays in preorder (parent before children), which gives every
 * subtree as a contiguous index range [i, end[i]): drawing skips a whole subtree as soon as its frame is
 * narrower than half a pixel, and search sums shares without recursion.
 */

export interface FlameTree {
  names: readonly string[];
  /** Per node: index into names. */
  name: Int32Array;
  /** Per node: the width weight (a value, or a share); children sum to at most their parent. */
  weight: Float64Array;
  parent: Int32Array;
}

export interface FlameLook {
  /** Fill colour of a node (matched: the search matches it; searching: a search is active). */
  color(i: number, matched: boolean, searching: boolean): string;
  /** Tooltip lines for a node (text only). */
  tooltip(i: number): string[];
  /** Label colour on a node's fill (default: dark). */
  text?(i: number): string;
}

export interface DrawnFrame {
  node: number;
  name: string;
  x: number;
  y: number;
  width: number;
  depth: number;
  matched: boolean;
}

const ROW_PX = 18;
const MIN_WIDTH_PX = 0.5;
const FONT = '11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';

/** Canvas -> graph, for the page's test hook (window.autoprofTest). */
export const flameGraphs = new WeakMap<HTMLCanvasElement, FlameGraph>();

export class FlameGraph {
  readonly canvas: HTMLCanvasElement;
  readonly #tree: FlameTree;
  readonly #look: FlameLook;
  readonly #tooltip: HTMLElement;
  readonly #depth: Int32Array;
  readonly #x: Float64Array;
  readonly #end: Int32Array;
  #focus = 0;
  #matched: Uint8Array | undefined;
  #matchShare = 0;
  #frames: DrawnFrame[] = [];
  #rows: DrawnFrame[][] = [];
  #hover = -1;
  #charPx = 6.6;
  onFocus: ((node: number) => void) | undefined;

  constructor(tree: FlameTree, look: FlameLook, host: HTMLElement) {
    this.#tree = tree;
    this.#look = look;
    const n = tree.name.length;
    this.#depth = new Int32Array(n);
    this.#x = new Float64Array(n);
    this.#end = new Int32Array(n);
    const cursor = new Float64Array(n);
    for (let i = 0; i < n; i++) this.#end[i] = i + 1;
    for (let i = 1; i < n; i++) {
      const p = tree.parent[i] as number;
      this.#depth[i] = (this.#depth[p] as number) + 1;
      this.#x[i] = cursor[p] as number;
      cursor[p] = (cursor[p] as number) + (tree.weight[i] as number);
      cursor[i] = this.#x[i] as number;
    }
    for (let i = n - 1; i > 0; i--) {
      const p = tree.parent[i] as number;
      if ((this.#end[i] as number) > (this.#end[p] as number)) this.#end[p] = this.#end[i] as number;
    }
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'flame';
    this.#tooltip = document.createElement('div');
    this.#tooltip.className = 'tooltip';
    this.#tooltip.hidden = true;
    host.replaceChildren(this.canvas, this.#tooltip);
    flameGraphs.set(this.canvas, this);
    this.canvas.addEventListener('click', (ev) => this.#click(ev));
    this.canvas.addEventListener('mousemove', (ev) => this.#move(ev));
    this.canvas.addEventListener('mouseleave', () => this.#leave());
  }

  get size(): number {
    return this.#tree.name.length;
  }

  get focus(): number {
    return this.#focus;
  }

  nameOf(i: number): string {
    return this.#tree.names[this.#tree.name[i] as number] ?? '?';
  }

  /** Frames drawn by the last render (for hit tests, and for tests that check what is on screen). */
  frames(): readonly DrawnFrame[] {
    return this.#frames;
  }

  get matchShare(): number {
    return this.#matchShare;
  }

  zoom(node: number): void {
    this.#focus = node >= 0 && node < this.size ? node : 0;
    this.render();
    this.onFocus?.(this.#focus);
  }

  /**
   * Highlights frames whose name contains `term` (case-insensitive) and returns the share of the root they
   * cover together: a match inside a matched frame is counted once, through its outermost match.
   */
  search(term: string): number {
    const t = term.trim().toLowerCase();
    if (t === '') {
      this.#matched = undefined;
      this.#matchShare = 0;
    } else {
      const byName = this.#tree.names.map((s) => s.toLowerCase().includes(t));
      const n = this.size;
      const m = new Uint8Array(n);
      for (let i = 0; i < n; i++) if (byName[this.#tree.name[i] as number]) m[i] = 1;
      let sum = 0;
      for (let i = 0; i < n; ) {
        if (m[i]) {
          sum += this.#tree.weight[i] as number;
          i = this.#end[i] as number;
        } else i++;
      }
      this.#matched = m;
      const root = this.#tree.weight[0] as number;
      this.#matchShare = root > 0 ? sum / root : 0;
    }
    this.render();
    return this.#matchShare;
  }

  render(): void {
    const width = Math.max(200, Math.floor(this.canvas.parentElement?.clientWidth ?? 800));
    const f = this.#focus;
    const tree = this.#tree;
    const fw = tree.weight[f] as number;
    const scale = fw > 0 ? width / fw : 0;
    const x0 = this.#x[f] as number;
    const frames: DrawnFrame[] = [];
    const matched = this.#matched;
    // Ancestors of the focus span the whole width, so the way back out stays clickable.
    const path: number[] = [];
    for (let a = tree.parent[f] as number; a >= 0; a = tree.parent[a] as number) path.push(a);
    for (const a of path.reverse()) frames.push(this.#frame(a, 0, width, matched));
    for (let i = f; i < (this.#end[f] as number); ) {
      const w = (tree.weight[i] as number) * scale;
      if (w < MIN_WIDTH_PX) {
        i = this.#end[i] as number;
        continue;
      }
      frames.push(this.#frame(i, ((this.#x[i] as number) - x0) * scale, w, matched));
      i++;
    }
    const depth = frames.reduce((d, fr) => Math.max(d, fr.depth), 0);
    const heightPx = (depth + 1) * ROW_PX;
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(width * dpr);
    this.canvas.height = Math.round(heightPx * dpr);
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${heightPx}px`;
    const ctx = this.canvas.getContext('2d');
    this.#frames = frames;
    this.#rows = [];
    for (const fr of frames) (this.#rows[fr.depth] ??= []).push(fr);
    this.canvas.dataset['focus'] = this.nameOf(f);
    this.canvas.dataset['frames'] = String(frames.length);
    this.canvas.dataset['matchShare'] = matched ? this.#matchShare.toFixed(6) : '';
    if (!ctx) return;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, heightPx);
    ctx.font = FONT;
    ctx.textBaseline = 'middle';
    this.#charPx = ctx.measureText('abcdefghijklmnopqrstuvwxyz').width / 26 || 6.6;
    const searching = matched !== undefined;
    for (const fr of frames) {
      const ancestor = fr.depth < (this.#depth[f] as number);
      ctx.fillStyle = ancestor ? '#d9dde3' : this.#look.color(fr.node, fr.matched, searching);
      ctx.fillRect(fr.x, fr.y, Math.max(fr.width - 0.5, 0.5), ROW_PX - 1);
      if (fr.node === this.#hover) {
        ctx.strokeStyle = '#1f2328';
        ctx.lineWidth = 1;
        ctx.strokeRect(fr.x + 0.5, fr.y + 0.5, Math.max(fr.width - 1.5, 0.5), ROW_PX - 2);
      }
      if (fr.width > 28) {
        const chars = Math.floor((fr.width - 8) / this.#charPx);
        const name = fr.name.length <= chars ? fr.name : shortName(fr.name);
        const label = name.length <= chars ? name : `${name.slice(0, Math.max(chars - 1, 1))}…`;
        ctx.fillStyle = ancestor || fr.matched ? '#1f2328' : (this.#look.text?.(fr.node) ?? '#1f2328');
        ctx.fillText(label, fr.x + 4, fr.y + ROW_PX / 2);
      }
    }
  }

  #frame(i: number, x: number, width: number, matched: Uint8Array | undefined): DrawnFrame {
    const depth = this.#depth[i] as number;
    return { node: i, name: this.nameOf(i), x, y: depth * ROW_PX, width, depth, matched: matched?.[i] === 1 };
  }

  #at(ev: MouseEvent): DrawnFrame | undefined {
    const r = this.canvas.getBoundingClientRect();
    const x = ev.clientX - r.left;
    const row = this.#rows[Math.floor((ev.clientY - r.top) / ROW_PX)];
    return row?.find((fr) => x >= fr.x && x < fr.x + fr.width);
  }

  #click(ev: MouseEvent): void {
    const fr = this.#at(ev);
    if (fr) this.zoom(fr.node === this.#focus ? (this.#tree.parent[fr.node] ?? 0) : fr.node);
  }

  #move(ev: MouseEvent): void {
    const fr = this.#at(ev);
    const node = fr?.node ?? -1;
    if (node !== this.#hover) {
      this.#hover = node;
      this.render();
    }
    if (!fr) {
      this.#tooltip.hidden = true;
      return;
    }
    this.#tooltip.replaceChildren(
      ...this.#look.tooltip(fr.node).map((line, k) => {
        const d = document.createElement('div');
        if (k === 0) d.className = 'tip-name';
        d.textContent = line;
        return d;
      }),
    );
    this.#tooltip.hidden = false;
    const host = this.canvas.parentElement?.getBoundingClientRect();
    const left = ev.clientX - (host?.left ?? 0) + 14;
    const maxLeft = (host?.width ?? 800) - this.#tooltip.offsetWidth - 4;
    this.#tooltip.style.left = `${Math.max(0, Math.min(left, maxLeft))}px`;
    this.#tooltip.style.top = `${ev.clientY - (host?.top ?? 0) + 16}px`;
  }

  #leave(): void {
    this.#tooltip.hidden = true;
    if (this.#hover !== -1) {
      this.#hover = -1;
      this.render();
    }
  }
}

/** A Go function name without its import path (`github.com/x/y/server.(*T).m` -> `server.(*T).m`), for labels. */
export function shortName(name: string): string {
  const paren = name.indexOf('(');
  const slash = name.lastIndexOf('/', paren < 0 ? name.length : paren);
  return slash < 0 ? name : name.slice(slash + 1);
}

/** A stable hash of a string (FNV-1a), for colours that stay the same across renders and pages. */
export function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The package part of a Go function name (`github.com/x/y.(*T).m` -> `github.com/x/y`). */
export function packageOf(name: string): string {
  const slash = name.lastIndexOf('/');
  const dot = name.indexOf('.', slash + 1);
  return dot < 0 ? name : name.slice(0, dot);
}

/** Warm colours by package, so a package's frames read as one family. */
export function warm(name: string): string {
  if (name === 'other') return '#c9ccd1';
  if (name === 'root') return '#e6b98a';
  const h = hash(packageOf(name));
  const hue = 8 + (h % 42);
  const light = 58 + ((h >>> 8) % 14);
  return `hsl(${hue} 78% ${light}%)`;
}

/** Red when the share grew, blue when it shrank; full colour at 10 percentage points. */
export function diffColor(delta: number): string {
  const t = Math.min(1, Math.sqrt(Math.abs(delta) / 0.1));
  if (t < 0.02) return '#e4e6ea';
  const light = 92 - 40 * t;
  return delta > 0 ? `hsl(4 80% ${light}%)` : `hsl(214 80% ${light}%)`;
}

/** White labels on the saturated end of the diff colours, dark ones on the pale end. */
export function diffText(delta: number): string {
  return Math.sqrt(Math.abs(delta) / 0.1) > 0.6 ? '#ffffff' : '#1f2328';
}
