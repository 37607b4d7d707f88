/**
 * Flame-graph trees of a decoded pprof profile, in the compact shape the API serves (VIEWER-CONTRACT.md):
 * function names interned once, nodes in preorder as [nameIdx, total, self, parentIdx], children by total
 * descending, and frames below `minShare` of the root merged into one "other" node per parent (so a 20 MB
 * profile becomes a tree a browser can draw). Pure over a decoded Profile.
 */
import type { Profile } from 'pprof-format';
import { chooseSampleType, forEachStack, Names, sampleTypesOf, type SampleTypeInfo } from './stacks.js';

export const ROOT = 'root';
export const OTHER = 'other';
export const DEFAULT_MIN_SHARE = 0.001;

/** A call-tree node while building: one per distinct root-first path. */
export interface TreeNode {
  name: number;
  total: number;
  self: number;
  children: Map<number, TreeNode> | undefined;
}

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

function newNode(name: number): TreeNode {
  return { name, total: 0, self: 0, children: undefined };
}

/** The full call tree of sample type `index` (root's name is names.id('root')). */
export function buildTree(profile: Profile, index: number, names: Names): TreeNode {
  const root = newNode(names.id(ROOT));
  root.total = forEachStack(profile, index, names, (frames, value) => {
    let node = root;
    for (const f of frames) {
      node.children ??= new Map();
      let child = node.children.get(f);
      if (child === undefined) {
        child = newNode(f);
        node.children.set(f, child);
      }
      child.total += value;
      node = child;
    }
    node.self += value;
  });
  return root;
}

/**
 * Preorder flattening of `root` with children by total descending (ties by name), children below
 * `minShare` of the root's total merged into one "other" leaf per parent.
 */
export function flattenTree(root: TreeNode, names: Names, minShare: number): { names: string[]; nodes: FlameNode[] } {
  const threshold = minShare * Math.abs(root.total);
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
  nameOf(root.name);
  const other = names.id(OTHER);
  const nodes: FlameNode[] = [];
  // Explicit stack: Go stacks can be hundreds of frames deep.
  const todo: { node: TreeNode; parent: number }[] = [{ node: root, parent: -1 }];
  for (let item = todo.pop(); item !== undefined; item = todo.pop()) {
    const { node, parent } = item;
    const at = nodes.length;
    nodes.push([nameOf(node.name), node.total, node.self, parent]);
    if (node.children === undefined) continue;
    const kept: TreeNode[] = [];
    let merged: TreeNode | undefined;
    for (const child of node.children.values()) {
      if (Math.abs(child.total) >= threshold) kept.push(child);
      else {
        merged ??= newNode(other);
        merged.total += child.total;
        merged.self += child.total;
      }
    }
    if (merged) kept.push(merged);
    kept.sort((a, b) => b.total - a.total || compareNames(names.name(a.name), names.name(b.name)));
    for (let i = kept.length - 1; i >= 0; i--) todo.push({ node: kept[i] as TreeNode, parent: at });
  }
  return { names: outNames, nodes };
}

export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function buildFlameGraph(profile: Profile, o: FlameGraphOptions = {}): FlameGraph {
  const chosen = chooseSampleType(profile, o.sampleType);
  const names = new Names();
  const root = buildTree(profile, chosen.index, names);
  const flat = flattenTree(root, names, o.minShare ?? DEFAULT_MIN_SHARE);
  return {
    sample_type: chosen.type,
    unit: chosen.unit,
    sample_types: sampleTypesOf(profile),
    total: root.total,
    names: flat.names,
    nodes: flat.nodes,
  };
}
