/**
 * Reads a configuration file: size check, YAML parse (positions kept), alias-bomb refusal, `${VAR}`
 * expansion from the environment it is given, validation against the schema, and a deep freeze. Every
 * problem found is thrown together in one `ConfigError`. This module never reads `process.env`: the caller
 * (main) passes the environment in.
 */
import { readFileSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';

import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document } from 'yaml';
import { z } from 'zod';

import { ConfigError } from '../errors.js';
import type { ConfigProblem } from '../errors.js';
import { Secret } from '../secret.js';
import { formatSize } from './duration.js';
import { closestMatch, fsReason, PROTO_KEY } from './fields.js';
import type { IssueParams, SchemaContext } from './fields.js';
import { configSchema, MAX_SECRET_FILE_BYTES } from './schema.js';
import type { Config } from './types.js';

export type Env = Readonly<Record<string, string | undefined>>;

/** A configuration file larger than this is refused before it is read. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Passed to yaml's alias expansion check: a small file must not expand into a huge document. */
export const MAX_ALIAS_COUNT = 100;
/** Backstop for the tree built here, far above any real configuration. */
const MAX_NODES = 100_000;

/**
 * Reads, validates and freezes the configuration in `file`. Throws `ConfigError` listing every problem.
 * `missingHint` is the hint when the file does not exist (the command line knows where it looked).
 */
export async function loadConfig(file: string, env: Env, missingHint?: string): Promise<Config> {
  let size: number;
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new ConfigError(file, [{ path: '', message: 'not a regular file' }]);
    size = st.size;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const problem: ConfigProblem = { path: '', message: `cannot read the file: ${fsReason(err)}` };
    if ((err as { code?: unknown }).code === 'ENOENT' && missingHint !== undefined) problem.hint = missingHint;
    throw new ConfigError(file, [problem]);
  }
  if (size > MAX_CONFIG_BYTES) throw new ConfigError(file, [tooLarge(size)]);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: `cannot read the file: ${fsReason(err)}` }]);
  }
  return parseConfigText(text, file, env);
}

/**
 * Validates configuration `text` as if read from `file` (relative paths in it are resolved against the
 * file's directory). `readFile` reads secret files (`password_file` and the like); tests may fake it.
 */
export function parseConfigText(text: string, file: string, env: Env, readFile: (file: string) => string = readSecretFile): Config {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_CONFIG_BYTES) throw new ConfigError(file, [tooLarge(bytes)]);
  const source = text.startsWith('\uFEFF') ? text.slice(1) : text;
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined): Position | undefined => {
    if (offset === undefined) return undefined;
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };

  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) =>
        withPosition(
          {
            path: '',
            message:
              e.code === 'MULTIPLE_DOCS'
                ? 'invalid YAML: a configuration file holds one document, and this is a second one'
                : `invalid YAML: ${e.message}`,
          },
          at(e.pos[0]),
        ),
      ),
    );
  }
  if (doc.contents === null) {
    throw new ConfigError(file, [
      { path: '', message: 'the file is empty', hint: 'write the settings you need, or {} for every default; see config/example.yaml' },
    ]);
  }
  try {
    // yaml counts how far aliases expand and throws past the limit; its result shares aliased values, so
    // this is cheap even for a "billion laughs" document.
    doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT, mapAsMap: true }); // mapAsMap: no warning for odd keys
  } catch (err) {
    // A ReferenceError from yaml's alias count; anything else here would be a bug in yaml, reported as is.
    const bomb = err instanceof ReferenceError;
    throw new ConfigError(file, [
      {
        path: '',
        message: bomb
          ? `aliases expand to more than ${MAX_ALIAS_COUNT} copies; refused as a possible alias bomb`
          : `cannot read the YAML: ${err instanceof Error ? err.message : String(err)}`,
        hint: 'repeat fewer *aliases, or write the values out',
      },
    ]);
  }

  const problems: ConfigProblem[] = [];
  const builder = new TreeBuilder(doc, at, env, problems);
  const root = builder.build(doc.contents, '');
  if (builder.tooLarge) {
    throw new ConfigError(file, [{ path: '', message: `the document has more than ${MAX_NODES} values once aliases are expanded` }]);
  }
  const result = validate(root, path.resolve(file), readFile);
  const all = sortProblems([...problems, ...result.problems]);
  if (all.length > 0 || result.config === undefined) throw new ConfigError(file, all);
  return deepFreeze(result.config);
}

// ---------------------------------------------------------------------------------------------------------
// The tree built from the YAML, and its validation against the schema

/** 1-based line and column in the configuration file. */
export interface Position {
  readonly line: number;
  readonly column: number;
}
interface NodeBase {
  /** YAML path such as `servers[1].url`; empty for the document root. */
  readonly path: string;
  readonly pos: Position | undefined;
}
interface MapNode extends NodeBase {
  readonly kind: 'map';
  readonly entries: readonly MapEntry[];
}
interface MapEntry {
  readonly key: string;
  readonly keyPos: Position | undefined;
  readonly value: ConfigNode;
}
interface SeqNode extends NodeBase {
  readonly kind: 'seq';
  readonly items: readonly ConfigNode[];
}
interface ScalarNode extends NodeBase {
  readonly kind: 'scalar';
  readonly value: string | number | boolean | null;
  /** A problem was already reported for this value (an unset environment variable): say nothing more. */
  readonly broken: boolean;
}
/** A YAML value after alias resolution and environment expansion, with where it came from. */
type ConfigNode = MapNode | SeqNode | ScalarNode;

interface Where {
  readonly pos: Position | undefined;
  readonly keyPos: Position | undefined;
  readonly broken: boolean;
}

function joinPath(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`;
}

function pathText(parts: readonly PropertyKey[]): string {
  let out = '';
  for (const p of parts) out = typeof p === 'number' ? `${out}[${p}]` : joinPath(out, p === PROTO_KEY ? '__proto__' : String(p));
  return out;
}

/** The zod schema found at `parts` below `schema` (through optional, default, pipe and the like). */
function schemaAt(schema: z.ZodType, parts: readonly PropertyKey[]): z.ZodType | undefined {
  let s: z.ZodType | undefined = schema;
  for (const part of parts) {
    s = s === undefined ? undefined : child(unwrap(s), part);
  }
  return s === undefined ? undefined : unwrap(s);
}

function unwrap(s: z.ZodType): z.ZodType {
  for (;;) {
    const def = s.def as { type: string; innerType?: z.ZodType; in?: z.ZodType };
    if (def.innerType !== undefined) s = def.innerType;
    else if (def.type === 'pipe' && def.in !== undefined) s = def.in;
    else return s;
  }
}

function child(s: z.ZodType, part: PropertyKey): z.ZodType | undefined {
  if (s instanceof z.ZodObject) return (s.shape as Record<string, z.ZodType>)[String(part)];
  if (s instanceof z.ZodArray) return s.element as z.ZodType;
  if (s instanceof z.ZodRecord) return s.valueType as z.ZodType;
  return undefined;
}

/**
 * The tree as plain values for the schema, with an index of positions by path. A mapping or list written
 * `key:` with nothing is left out (its defaults apply); a value already reported (`broken`) becomes a
 * symbol, which no schema accepts, and problems at it are dropped.
 */
function toPlain(node: ConfigNode, schema: z.ZodType, parts: PropertyKey[], index: Map<string, Where>): unknown {
  if (node.kind === 'scalar') return node.broken ? BROKEN : node.value;
  if (node.kind === 'seq') {
    return node.items.map((item, i) => {
      index.set(item.path, { pos: item.pos, keyPos: undefined, broken: item.kind === 'scalar' && item.broken });
      return toPlain(item, schema, [...parts, i], index);
    });
  }
  const out: Record<string, unknown> = {};
  // zod leaves a __proto__ key out of a record; a header or server may still be called that.
  const free = schemaAt(schema, parts) instanceof z.ZodRecord;
  for (const e of node.entries) {
    const key = free && e.key === '__proto__' ? PROTO_KEY : e.key;
    const at = [...parts, key];
    index.set(e.value.path, { pos: e.value.pos ?? e.keyPos, keyPos: e.keyPos, broken: e.value.kind === 'scalar' && e.value.broken });
    if (e.value.kind === 'scalar' && e.value.value === null) {
      const s = schemaAt(schema, at);
      if (s instanceof z.ZodObject || s instanceof z.ZodArray || s instanceof z.ZodRecord) continue;
    }
    // defineProperty, not assignment: a key named __proto__ must stay a key.
    Object.defineProperty(out, key, { value: toPlain(e.value, schema, at, index), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

const BROKEN = Symbol('already reported');

function validate(root: ConfigNode, file: string, readFile: (file: string) => string): { config: Config | undefined; problems: ConfigProblem[] } {
  const index = new Map<string, Where>([['', { pos: root.pos, keyPos: undefined, broken: root.kind === 'scalar' && root.broken }]]);
  const context: SchemaContext & { file: string } = {
    file,
    dir: path.dirname(file),
    readFile,
    fileProblem,
    has: (p) => index.has(p),
    line: (p) => index.get(p)?.pos?.line,
  };
  const schema = configSchema(context);
  const plain = toPlain(root, schema, [], index);
  const result = schema.safeParse(plain);
  if (result.success) return { config: result.data, problems: [] };

  const problems: (ConfigProblem & { only?: boolean })[] = [];
  const at = (where: string, key: boolean): Position | undefined => {
    const found = index.get(where);
    if (found !== undefined) return key ? (found.keyPos ?? found.pos) : found.pos;
    // A missing key: the mapping that lacks it.
    let p = where;
    while (p !== '') {
      p = p.includes('.') || p.includes('[') ? p.replace(/(\.[^.[\]]*|\[\d+\])$/, '') : '';
      const parent = index.get(p);
      if (parent !== undefined) return parent.pos;
    }
    return index.get('')?.pos;
  };
  for (const issue of result.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      const allowed = Object.keys((schemaAt(schema, issue.path) as z.ZodObject | undefined)?.shape ?? {});
      for (const key of issue.keys) {
        const where = pathText([...issue.path, key]);
        const close = closestMatch(key, allowed);
        const hint = close !== undefined ? `did you mean "${close}"?` : `allowed keys here: ${allowed.join(', ')}`;
        problems.push(withPosition({ path: where, message: 'unknown key', hint }, at(where, true)));
      }
      continue;
    }
    const where = pathText(issue.path);
    if (index.get(where)?.broken === true) continue;
    const params = ((issue as { params?: IssueParams }).params ?? {}) as IssueParams;
    const hint = params.hint ?? (issue.code === 'invalid_type' ? (z.globalRegistry.get(schemaAt(schema, issue.path) as z.ZodType)?.['hint'] as string | undefined) : undefined);
    const problem: ConfigProblem & { only?: boolean } = { path: where, message: issue.message };
    if (hint !== undefined) problem.hint = hint;
    if (params.only === true) problem.only = true;
    problems.push(withPosition(problem, at(where, params.at === 'key')));
  }
  const only = new Set(problems.filter((p) => p.only === true).map((p) => p.path));
  return {
    config: undefined,
    problems: problems.filter((p) => !only.has(p.path) || p.only === true).map(({ only: _, ...p }) => p),
  };
}

/** By line and column; whole-file problems first; otherwise in the order found. */
function sortProblems(problems: readonly ConfigProblem[]): ConfigProblem[] {
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => (a.p.line ?? 0) - (b.p.line ?? 0) || (a.p.column ?? 0) - (b.p.column ?? 0) || a.i - b.i)
    .map(({ p }) => p);
}

/**
 * What is valid but probably not meant, for `check` to print and the daemon to log at start: a
 * configuration that watches nothing.
 */
export function configWarnings(config: Config): string[] {
  const warnings: string[] = [];
  if (config.servers.length === 0 && config.systemAccount?.discover !== true) {
    warnings.push(
      'this configuration watches no server: servers is empty and system_account.discover is not true; ' +
        'add servers (- url: http://host:8222), or system_account with discover: true',
    );
  }
  return warnings;
}

function tooLarge(bytes: number): ConfigProblem {
  return {
    path: '',
    message: `the file has ${bytes} bytes; a configuration file may have at most ${formatSize(MAX_CONFIG_BYTES)}`,
    hint: 'is this the right file?',
  };
}

function withPosition(problem: ConfigProblem, pos: Position | undefined): ConfigProblem {
  if (pos !== undefined) {
    problem.line = pos.line;
    problem.column = pos.column;
  }
  return problem;
}

/** Reads a secret file, refusing what cannot be one (a directory, a device, anything over 64KiB). */
export function readSecretFile(file: string): string {
  const st = statSync(file);
  if (st.isDirectory()) throw Object.assign(new Error('it is a directory'), { code: 'EISDIR' });
  if (!st.isFile()) throw new Error('not a regular file');
  if (st.size > MAX_SECRET_FILE_BYTES) throw new Error(`it has ${st.size} bytes, too many for a secret; is this the right file?`);
  return readFileSync(file, 'utf8');
}

function fileProblem(file: string): string | undefined {
  try {
    const st = statSync(file);
    if (st.isDirectory()) return 'it is a directory';
    return st.isFile() ? undefined : 'not a regular file';
  } catch (err) {
    return fsReason(err);
  }
}

/** Object.freeze all the way down (Secret instances keep their private field and need no freezing). */
function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || value instanceof Secret || Object.isFrozen(value)) return value;
  for (const v of Object.values(value)) deepFreeze(v);
  return Object.freeze(value);
}

// ---------------------------------------------------------------------------------------------------------

/** `${VAR}`, `${VAR:-default}` (default when unset or empty) and `$${` for a literal `${`. */
export function expandEnv(text: string, env: Env): { value: string; problems: { message: string; hint: string }[] } {
  const problems: { message: string; hint: string }[] = [];
  let out = '';
  let i = 0;
  while (i < text.length) {
    const dollar = text.indexOf('$', i);
    if (dollar < 0) {
      out += text.slice(i);
      break;
    }
    out += text.slice(i, dollar);
    if (text.startsWith('$${', dollar)) {
      out += '${';
      i = dollar + 3;
      continue;
    }
    if (!text.startsWith('${', dollar)) {
      out += '$';
      i = dollar + 1;
      continue;
    }
    const close = text.indexOf('}', dollar + 2);
    const m = close < 0 ? null : /^([A-Za-z_][A-Za-z0-9_]*)(?::-([^]*))?$/.exec(text.slice(dollar + 2, close));
    const name = m?.[1];
    if (m === null || name === undefined) {
      const ref = close < 0 ? text.slice(dollar) : text.slice(dollar, close + 1);
      problems.push({
        message: `${JSON.stringify(ref.length > 40 ? `${ref.slice(0, 37)}...` : ref)} is not a valid variable reference`,
        hint: 'write ${NAME} or ${NAME:-default}, or $${ for a literal ${',
      });
      out += ref;
      i = close < 0 ? text.length : close + 1;
      continue;
    }
    const fallback = m[2];
    const value = env[name];
    if (fallback !== undefined) {
      out += value === undefined || value === '' ? fallback : value;
    } else if (value === undefined) {
      problems.push({ message: `environment variable ${name} is not set`, hint: `export it, or write \${${name}:-default}` });
    } else {
      out += value;
    }
    i = close + 1;
  }
  return { value: out, problems };
}

/** Builds the `ConfigNode` tree: resolves aliases and `<<` merge keys, expands variables, keeps positions. */
class TreeBuilder {
  private nodes = 0;
  tooLarge = false;

  constructor(
    private readonly doc: Document,
    private readonly at: (offset: number | undefined) => Position | undefined,
    private readonly env: Env,
    private readonly problems: ConfigProblem[],
  ) {}

  build(node: unknown, where: string): ConfigNode {
    if (++this.nodes > MAX_NODES) {
      this.tooLarge = true;
      return { kind: 'scalar', path: where, pos: undefined, value: null, broken: true };
    }
    if (isAlias(node)) {
      const target = node.resolve(this.doc);
      if (target === undefined) return { kind: 'scalar', path: where, pos: this.at(node.range?.[0]), value: null, broken: true };
      return this.build(target, where);
    }
    const pos = this.at(isScalar(node) || isMap(node) || isSeq(node) ? node.range?.[0] : undefined);
    if (isMap(node)) {
      const entries: MapEntry[] = [];
      const merged: MapEntry[] = [];
      for (const pair of node.items) {
        const keyNode = pair.key;
        const key = isScalar(keyNode) ? String(keyNode.value) : '';
        const keyPos = (isScalar(keyNode) || isMap(keyNode) || isSeq(keyNode) ? this.at(keyNode.range?.[0]) : undefined) ?? pos;
        if (!isScalar(keyNode)) {
          this.problems.push(withPosition({ path: where, message: 'a key must be a plain string, not a list or mapping' }, keyPos));
          continue;
        }
        if (key === '<<' && keyNode.type === 'PLAIN') {
          this.merge(pair.value, where, merged);
          continue;
        }
        entries.push({ key, keyPos, value: this.build(pair.value, joinPath(where, key)) });
      }
      // Explicit keys win over merged ones; among merged mappings the first one wins.
      for (const m of merged) if (!entries.some((e) => e.key === m.key)) entries.push(m);
      return { kind: 'map', path: where, pos, entries };
    }
    if (isSeq(node)) {
      return { kind: 'seq', path: where, pos, items: node.items.map((item, i) => this.build(item, `${where}[${i}]`)) };
    }
    if (isScalar(node)) {
      const v = node.value;
      if (typeof v === 'string') {
        const { value, problems } = expandEnv(v, this.env);
        for (const p of problems) this.problems.push(withPosition({ path: where, ...p }, pos));
        return { kind: 'scalar', path: where, pos, value, broken: problems.length > 0 };
      }
      if (typeof v === 'number' || typeof v === 'boolean' || v === null) {
        return { kind: 'scalar', path: where, pos, value: v, broken: false };
      }
      return { kind: 'scalar', path: where, pos, value: String(v), broken: false };
    }
    // `key:` with nothing after it has no node at all.
    return { kind: 'scalar', path: where, pos, value: null, broken: false };
  }

  private merge(value: unknown, where: string, into: MapEntry[]): void {
    const sources = isSeq(value) ? value.items : [value];
    for (const source of sources) {
      const built = this.build(source, where);
      if (built.kind !== 'map') {
        const message = 'a merge key (<<) takes a mapping or a list of mappings';
        this.problems.push(withPosition({ path: joinPath(where, '<<'), message }, built.pos));
        continue;
      }
      for (const e of built.entries) if (!into.some((m) => m.key === e.key)) into.push(e);
    }
  }
}
