/**
 * Two profiles of the same kind side by side: a merged call tree (each node with its value in both) and
 * the functions whose flat share changed most. Shares, not values, are compared, so a 30 s CPU profile
 * and a 5 s one compare fairly. Also the capture-time summary (`changes` in the manifest): the functions
 * whose flat share grew most since the previous incident. Pure over decoded Profiles.
 */
import type { Profile } from 'pprof-format';
import type { ProfileChange } from '../store/manifest.js';
import { buildTree, type CallTree, compareNames, DEFAULT_MIN_SHARE, OTHER } from './flamegraph.js';
import { chooseSampleType, Names } from './stacks.js';
import { flatAndCum } from './top.js';

export const MAX_CHANGES = 50;
/** Capture time: at most this many functions, each grown by at least MIN_GROWTH (a share, 0.01 = 1 point). */
export const MAX_GROWTH = 5;
export const MIN_GROWTH = 0.01;

export type DiffNode = [nameIdx: number, baseTotal: number, targetTotal: number, parentIdx: number];

export interface ShareChange {
  function: string;
  base_share: number;
  target_share: number;
  delta: number;
}

export interface ProfileDiff {
  sample_type: string;
  unit: string;
  base_total: number;
  target_total: number;
  names: string[];
  nodes: DiffNode[];
  changes: ShareChange[];
}

/** One line of a manifest's `profiles[].changes`. */
export type GrowthChange = ProfileChange;

/**
 * The sample type both profiles are compared by: `wanted`, else the target's default. Throws
 * SampleTypeError when either profile lacks it.
 */
function commonSampleType(base: Profile, target: Profile, wanted: string | undefined): { base: number; target: number; type: string; unit: string } {
  const t = chooseSampleType(target, wanted, 'the target profile');
  const b = chooseSampleType(base, t.type, 'the base profile');
  return { base: b.index, target: t.index, type: t.type, unit: t.unit };
}

/** Flat share per function name over both profiles (names shared). */
function flatShares(base: Profile, target: Profile, idx: { base: number; target: number }, names: Names): { base: Map<number, number>; target: Map<number, number> } {
  const side = (p: Profile, index: number): Map<number, number> => {
    const { total, flat } = flatAndCum(p, index, names);
    const shares = new Map<number, number>();
    for (const [id, v] of flat) shares.set(id, total === 0 ? 0 : v / total);
    return shares;
  };
  return { base: side(base, idx.base), target: side(target, idx.target) };
}

/** A node of the merged tree: the same path in both trees (-1 where a tree lacks it), or a merged "other". */
interface Pair {
  name: number;
  base: number;
  target: number;
  baseTotal: number;
  targetTotal: number;
}

/**
 * The merged tree in preorder: children of a node are the union of its children in both trees, by
 * base share + target share descending; those below `minShare` in both profiles go into one "other".
 */
function mergeTrees(base: CallTree, target: CallTree, names: Names, minShare: number): { names: string[]; nodes: DiffNode[] } {
  const bRoot = Math.abs(base.total[0] as number);
  const tRoot = Math.abs(target.total[0] as number);
  const bKids = base.children();
  const tKids = target.children();
  const share = (v: number, root: number): number => (root === 0 ? 0 : Math.abs(v) / root);
  const weight = (p: Pair): number => share(p.baseTotal, bRoot) + share(p.targetTotal, tRoot);
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
  const other = names.id(OTHER);
  const nodes: DiffNode[] = [];
  const root: Pair = { name: base.name[0] as number, base: 0, target: 0, baseTotal: base.total[0] as number, targetTotal: target.total[0] as number };
  const todo: { pair: Pair; parent: number }[] = [{ pair: root, parent: -1 }];
  for (let item = todo.pop(); item !== undefined; item = todo.pop()) {
    const { pair, parent } = item;
    const at = nodes.length;
    nodes.push([nameOf(pair.name), pair.baseTotal, pair.targetTotal, parent]);
    const children = new Map<number, Pair>();
    if (pair.base >= 0) {
      for (let k = bKids.start[pair.base] as number; k < (bKids.start[pair.base + 1] as number); k++) {
        const c = bKids.list[k] as number;
        children.set(base.name[c] as number, { name: base.name[c] as number, base: c, target: -1, baseTotal: base.total[c] as number, targetTotal: 0 });
      }
    }
    if (pair.target >= 0) {
      for (let k = tKids.start[pair.target] as number; k < (tKids.start[pair.target + 1] as number); k++) {
        const c = tKids.list[k] as number;
        const name = target.name[c] as number;
        const p = children.get(name);
        if (p) {
          p.target = c;
          p.targetTotal = target.total[c] as number;
        } else children.set(name, { name, base: -1, target: c, baseTotal: 0, targetTotal: target.total[c] as number });
      }
    }
    if (children.size === 0) continue;
    const kept: Pair[] = [];
    let merged: Pair | undefined;
    for (const p of children.values()) {
      if (share(p.baseTotal, bRoot) >= minShare || share(p.targetTotal, tRoot) >= minShare) kept.push(p);
      else {
        merged ??= { name: other, base: -1, target: -1, baseTotal: 0, targetTotal: 0 };
        merged.baseTotal += p.baseTotal;
        merged.targetTotal += p.targetTotal;
      }
    }
    if (merged) kept.push(merged);
    kept.sort((a, b) => weight(b) - weight(a) || compareNames(names.name(a.name), names.name(b.name)));
    for (let i = kept.length - 1; i >= 0; i--) todo.push({ pair: kept[i] as Pair, parent: at });
  }
  return { names: outNames, nodes };
}

export function compareProfiles(
  base: Profile,
  target: Profile,
  o: { sampleType?: string | undefined; minShare?: number | undefined; maxChanges?: number } = {},
): ProfileDiff {
  const st = commonSampleType(base, target, o.sampleType);
  const names = new Names();
  const bTree = buildTree(base, st.base, names);
  const tTree = buildTree(target, st.target, names);
  const merged = mergeTrees(bTree, tTree, names, o.minShare ?? DEFAULT_MIN_SHARE);
  const shares = flatShares(base, target, st, names);
  const ids = new Set([...shares.base.keys(), ...shares.target.keys()]);
  const changes: ShareChange[] = [...ids]
    .map((id) => {
      const b = shares.base.get(id) ?? 0;
      const t = shares.target.get(id) ?? 0;
      return { function: names.name(id), base_share: b, target_share: t, delta: t - b };
    })
    .filter((c) => c.delta !== 0)
    .sort((a, b) => Math.abs(b.delta) - Math.abs(a.delta) || compareNames(a.function, b.function))
    .slice(0, o.maxChanges ?? MAX_CHANGES);
  return { sample_type: st.type, unit: st.unit, base_total: bTree.total[0] as number, target_total: tTree.total[0] as number, names: merged.names, nodes: merged.nodes, changes };
}

const round4 = (x: number): number => Math.round(x * 10_000) / 10_000;

/**
 * What grew since the previous profile (`before`): up to 5 functions whose flat share of the default sample
 * type grew by at least 1 percentage point, most first, shares rounded to 0.01 %. [] when none grew.
 * Throws SampleTypeError when `before` lacks the sample type.
 */
export function growthSince(before: Profile, after: Profile): GrowthChange[] {
  const st = commonSampleType(before, after, undefined);
  const names = new Names();
  const shares = flatShares(before, after, { base: st.base, target: st.target }, names);
  const grown: (GrowthChange & { growth: number })[] = [];
  for (const [id, a] of shares.target) {
    const b = shares.base.get(id) ?? 0;
    // Growth in millionths: 0.21 - 0.2 must tie with 0.01 - 0, not lose to it by a rounding error.
    const growth = Math.round((a - b) * 1e6);
    if (growth >= MIN_GROWTH * 1e6) grown.push({ function: names.name(id), before_share: round4(b), after_share: round4(a), growth });
  }
  return grown
    .sort((x, y) => y.growth - x.growth || compareNames(x.function, y.function))
    .slice(0, MAX_GROWTH)
    .map(({ growth: _growth, ...c }) => c);
}

/** `runtime.mapassign 3% -> 41%` for each change, joined by `, ` (percent rounded to whole points, or 0.1 below 10). */
export function describeGrowth(changes: readonly GrowthChange[]): string {
  const pct = (s: number): string => {
    const p = s * 100;
    return p < 10 && p !== 0 ? `${p.toFixed(1).replace(/\.0$/, '')}%` : `${Math.round(p)}%`;
  };
  return changes.map((c) => `${c.function} ${pct(c.before_share)} -> ${pct(c.after_share)}`).join(', ');
}

