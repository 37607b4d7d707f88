/**
 * Flame-graph trees of a decoded pprof profile, in the compact shape the API serves (VIEWER-CONTRACT.md):
 * function names interned once, nodes in preorder as [nameIdx, total, self, parentIdx], children by total
 * descending, and frames below `minShare` of the root merged into one "other" node per parent (so a 20 MB
 * profile becomes a tree a browser can draw). Pure over a decoded ProfileData.
 */
import type { ProfileData } from './pprof-reader.js';
import { chooseSampleType, forEachStack, Names, sampleTypesOf, type SampleTypeInfo } from './stacks.js';

export const ROOT = 'root';
export const OTHER = 'other';
export const DEFAULT_MIN_SHARE = 0.001;

export type FlameNode = [nameIdx: number, total: number, self: number, parentIdx: number];

export interface FlameGraph {
  sample_type: string;
  unit: string;
  sample_types: SampleTypeInfo[];
  total: number;
  names: string[];
  nodes: FlameNode[];
}

export interface FlameGraphOptions {
  /** Default: the profile's default sample type. */
  sampleType?: string | undefined;
  /** 0..1 of the root's total; default 0.001. */
  minShare?: number | undefined;
}

/**
 * The full call tree of one sample type, in flat typed arrays (node 0 is the root): one node per distinct
 * root-first path. A 20 MB profile has hundreds of thousands of nodes; an object and a Map per node made
 * the garbage collector the main cost, so nodes are indices and children are found through one Map.
 */
export class CallTree {
  name = new Int32Array(1024);
  parent = new Int32Array(1024);
  total = new Float64Array(1024);
  self = new Float64Array(1024);
  size = 0;
  /**
   * (parent, name) -> child: an open-addressing hash table in typed arrays (slot holds child + 1, 0 = empty).
   * A Map keyed by numbers beyond 2^31 hashes heap numbers and was the main cost on large profiles.
   */
  #slots = new Int32Array(2048);

  constructor(rootName: number) {
    this.#add(-1, rootName);
  }

  #add(parent: number, name: number): number {
    if (this.size === this.name.length) {
      const grow = <T extends Int32Array | Float64Array>(a: T): T => {
        const b = new (a.constructor as new (n: number) => T)(a.length * 2);
        b.set(a);
        return b;
      };
      this.name = grow(this.name);
      this.parent = grow(this.parent);
      this.total = grow(this.total);
      this.self = grow(this.self);
    }
    const id = this.size++;
    this.name[id] = name;
    this.parent[id] = parent;
    return id;
  }

  static #hash(parent: number, name: number): number {
    return (Math.imul(parent, 0x9e3779b1) ^ Math.imul(name + 1, 0x85ebca77)) >>> 0;
  }

  child(parent: number, name: number): number {
    const slots = this.#slots;
    const mask = slots.length - 1;
    for (let i = CallTree.#hash(parent, name) & mask; ; i = (i + 1) & mask) {
      const s = slots[i] as number;
      if (s === 0) break;
      if (this.parent[s - 1] === parent && this.name[s - 1] === name) return s - 1;
    }
    const id = this.#add(parent, name);
    // Kept at most half full, so probes stay short.
    if (this.size * 2 > slots.length) this.#rehash(slots.length * 2);
    else this.#place(slots, id);
    return id;
  }

  #place(slots: Int32Array, id: number): void {
    const mask = slots.length - 1;
    let i = CallTree.#hash(this.parent[id] as number, this.name[id] as number) & mask;
    while (slots[i] !== 0) i = (i + 1) & mask;
    slots[i] = id + 1;
  }

  #rehash(capacity: number): void {
    const slots = new Int32Array(capacity);
    for (let id = 1; id < this.size; id++) this.#place(slots, id);
    this.#slots = slots;
  }

  /**
   * The last stack added and its nodes: Go writes samples as it walks its stack table, so consecutive
   * stacks mostly share their outer frames, and those are found here without a hash lookup.
   */
  #lastFrames: number[] = [];
  #lastNodes: number[] = [];

  /** Adds one stack (root first) with its value. */
  add(frames: readonly number[], value: number): void {
    const lastFrames = this.#lastFrames;
    const lastNodes = this.#lastNodes;
    const n = frames.length;
    const common = Math.min(n, lastFrames.length);
    let node = 0;
    this.total[0] = (this.total[0] as number) + value;
    let i = 0;
    for (; i < common && frames[i] === lastFrames[i]; i++) {
      node = lastNodes[i] as number;
      this.total[node] = (this.total[node] as number) + value;
    }
    for (; i < n; i++) {
      const f = frames[i] as number;
      node = this.child(node, f);
      this.total[node] = (this.total[node] as number) + value;
      lastFrames[i] = f;
      lastNodes[i] = node;
    }
    lastFrames.length = n;
    lastNodes.length = n;
    this.self[node] = (this.self[node] as number) + value;
  }

  /** Children of every node: those of node i are list[start[i]] .. list[start[i + 1] - 1]. */
  children(): { start: Int32Array; list: Int32Array } {
    const start = new Int32Array(this.size + 1);
    for (let i = 1; i < this.size; i++) {
      const p = this.parent[i] as number;
      start[p + 1] = (start[p + 1] as number) + 1;
    }
    for (let i = 0; i < this.size; i++) start[i + 1] = (start[i + 1] as number) + (start[i] as number);
    const fill = start.slice(0, this.size);
    const list = new Int32Array(Math.max(0, this.size - 1));
    for (let i = 1; i < this.size; i++) {
      const p = this.parent[i] as number;
      list[(fill[p] as number)++] = i;
    }
    return { start, list };
  }
}

/** The full call tree of sample type `index` (root's name is names.id('root')). */
export function buildTree(profile: ProfileData, index: number, names: Names): CallTree {
  const tree = new CallTree(names.id(ROOT));
  forEachStack(profile, index, names, (frames, value) => tree.add(frames, value));
  return tree;
}

/**
 * Preorder flattening of the tree with children by total descending (ties by name), children below
 * `minShare` of the root's total merged into one "other" leaf per parent.
 */
export function flattenTree(tree: CallTree, names: Names, minShare: number): { names: string[]; nodes: FlameNode[] } {
  const rootTotal = tree.total[0] as number;
  const threshold = minShare * Math.abs(rootTotal);
  const { start, list } = tree.children();
  const outNames: string[] = [];
  const outIds = new Map<number, number>();
  const nameOf = (id: number): number => {
    let i = outIds.get(id);
    if (i === undefined) {
      i = outNames.length;
      outNames.push(names.name(id));
      outIds.set(id, i);
    }
    return i;
  };
  nameOf(tree.name[0] as number);
  const other = names.id(OTHER);
  const nodes: FlameNode[] = [];
  // Explicit stack (Go stacks can be hundreds of frames deep); node -1 is a merged "other".
  type Item = { node: number; otherTotal: number; parent: number };
  const todo: Item[] = [{ node: 0, otherTotal: 0, parent: -1 }];
  for (let item = todo.pop(); item !== undefined; item = todo.pop()) {
    const at = nodes.length;
    if (item.node < 0) {
      nodes.push([nameOf(other), item.otherTotal, item.otherTotal, item.parent]);
      continue;
    }
    const n = item.node;
    nodes.push([nameOf(tree.name[n] as number), tree.total[n] as number, tree.self[n] as number, item.parent]);
    const kept: Item[] = [];
    let merged = 0;
    let anyMerged = false;
    for (let k = start[n] as number; k < (start[n + 1] as number); k++) {
      const c = list[k] as number;
      const total = tree.total[c] as number;
      if (Math.abs(total) >= threshold) kept.push({ node: c, otherTotal: 0, parent: at });
      else {
        merged += total;
        anyMerged = true;
      }
    }
    if (anyMerged) kept.push({ node: -1, otherTotal: merged, parent: at });
    const totalOf = (x: Item): number => (x.node < 0 ? x.otherTotal : (tree.total[x.node] as number));
    const nameStr = (x: Item): string => (x.node < 0 ? OTHER : names.name(tree.name[x.node] as number));
    kept.sort((a, b) => totalOf(b) - totalOf(a) || compareNames(nameStr(a), nameStr(b)));
    for (let i = kept.length - 1; i >= 0; i--) todo.push(kept[i] as Item);
  }
  return { names: outNames, nodes };
}

export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function buildFlameGraph(profile: ProfileData, o: FlameGraphOptions = {}): FlameGraph {
  const chosen = chooseSampleType(profile, o.sampleType);
  const names = new Names();
  const tree = buildTree(profile, chosen.index, names);
  const flat = flattenTree(tree, names, o.minShare ?? DEFAULT_MIN_SHARE);
  return {
    sample_type: chosen.type,
    unit: chosen.unit,
    sample_types: sampleTypesOf(profile),
    total: tree.total[0] as number,
    names: flat.names,
    nodes: flat.nodes,
  };
}
