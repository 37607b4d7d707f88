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

  const absolute = path.resolve(file);
  const index = new Map<string, Where>();
  const context: SchemaContext & { file: string } = {
    file: absolute,
    dir: path.dirname(absolute),
    readFile,
    fileProblem,
    has: (p) => index.has(p),
    line: (p) => index.get(p)?.pos?.line,
  };
  const schema = configSchema(context);
  const builder = new TreeBuilder(doc, at, env, schema, index);
  const plain = builder.build(doc.contents, []);
  if (builder.tooLarge) {
    throw new ConfigError(file, [{ path: '', message: `the document has more than ${MAX_NODES} values once aliases are expanded` }]);
  }
  const result = schema.safeParse(plain);
  const all = sortProblems([...builder.problems, ...(result.success ? [] : problemsOf(result.error.issues, schema, index))]);
  if (all.length > 0 || !result.success) throw new ConfigError(file, all);
  return deepFreeze(result.data);
}

// ---------------------------------------------------------------------------------------------------------
// Positions, and zod's issues as problems

/** 1-based line and column in the configuration file. */
export interface Position {
  readonly line: number;
  readonly column: number;
}

/** Where a value is: its position, its key's, and whether a problem was already reported for it. */
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

/** The zod schema at `parts` below `schema`, through optional, default, pipe and the like. */
function schemaAt(schema: z.ZodType, parts: readonly PropertyKey[]): z.ZodType | undefined {
  const unwrap = (t: z.ZodType): z.ZodType => {
    for (;;) {
      const def = t.def as { type: string; innerType?: z.ZodType; in?: z.ZodType };
      if (def.innerType !== undefined) t = def.innerType;
      else if (def.type === 'pipe' && def.in !== undefined) t = def.in;
      else return t;
    }
  };
  let s: z.ZodType | undefined = unwrap(schema);
  for (const part of parts) {
    if (s instanceof z.ZodObject) s = (s.shape as Record<string, z.ZodType>)[String(part)];
    else if (s instanceof z.ZodArray) s = s.element as z.ZodType;
    else if (s instanceof z.ZodRecord) s = s.valueType as z.ZodType;
    else return undefined;
    if (s !== undefined) s = unwrap(s);
  }
  return s;
}

/** Each issue at its position; an unknown key at the key, with a did-you-mean; nothing about a broken value. */
function problemsOf(issues: readonly z.core.$ZodIssue[], schema: z.ZodType, index: ReadonlyMap<string, Where>): ConfigProblem[] {
  const at = (where: string, key: boolean): Position | undefined => {
    const found = index.get(where);
    if (found !== undefined) return key ? (found.keyPos ?? found.pos) : found.pos;
    // A missing key: the mapping that lacks it.
    for (let p = where; p !== ''; ) {
      p = p.replace(/(\.[^.[\]]*|\[\d+\]|^[^.[\]]*)$/, '');
      const parent = index.get(p);
      if (parent !== undefined) return parent.pos;
    }
    return index.get('')?.pos;
  };
  const problems: (ConfigProblem & { only?: boolean })[] = [];
  for (const issue of issues) {
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
    const problem: ConfigProblem & { only?: boolean } = { path: where, message: issue.message };
    if (params.hint !== undefined) problem.hint = params.hint;
    if (params.only === true) problem.only = true;
    problems.push(withPosition(problem, at(where, params.at === 'key')));
  }
  // "both password and password_file" says all there is to say about password_file.
  const only = new Set(problems.filter((p) => p.only === true).map((p) => p.path));
  return problems.filter((p) => !only.has(p.path) || p.only === true).map(({ only: _, ...p }) => p);
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
 * configuration that watches nothing; replicas whose KV timeout does not fit inside their lease.
 */
export function configWarnings(config: Config): string[] {
  const warnings: string[] = [];
  if (config.servers.length === 0 && config.systemAccount?.discover !== true) {
    warnings.push(
      'this configuration watches no server: servers is empty and system_account.discover is not true; ' +
        'add servers (- url: http://host:8222), or system_account with discover: true',
    );
  }
  const c = config.coordination;
  // A heartbeat write may stall for up to `timeout` (a JetStream leader election, when a node is lost); the
  // others must not take this replica for gone meanwhile.
  if (c && c.timeoutMs + c.heartbeatMs >= c.leaseTtlMs) {
    warnings.push(
      `coordination.timeout (${c.timeoutMs} ms) plus heartbeat (${c.heartbeatMs} ms) is not below lease_ttl (${c.leaseTtlMs} ms): ` +
        'one KV write stalled while JetStream elects a leader (a node lost) makes the other replicas take this one for gone, and its servers move back and forth; ' +
        'raise lease_ttl or lower timeout',
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

/** A value already reported (an unset variable): no schema accepts it, and problems at it are dropped. */
const BROKEN = Symbol('already reported');

/**
 * Builds plain values for the schema from the YAML document: resolves aliases and `<<` merge keys, expands
 * variables, and records where each value is in `index` (by YAML path). A mapping or list written `key:`
 * with nothing is left out, so that its defaults apply.
 */
class TreeBuilder {
  private nodes = 0;
  private merging = 0;
  tooLarge = false;
  readonly problems: ConfigProblem[] = [];

  constructor(
    private readonly doc: Document,
    private readonly at: (offset: number | undefined) => Position | undefined,
    private readonly env: Env,
    private readonly schema: z.ZodType,
    private readonly index: Map<string, Where>,
    private readonly pos = (n: unknown): Position | undefined => (isScalar(n) || isMap(n) || isSeq(n) ? at(n.range?.[0]) : undefined),
  ) {}

  build(node: unknown, parts: PropertyKey[], keyPos?: Position): unknown {
    const where = pathText(parts);
    if (++this.nodes > MAX_NODES) {
      this.tooLarge = true;
      return BROKEN;
    }
    if (isAlias(node)) {
      const target = node.resolve(this.doc);
      if (target !== undefined) return this.build(target, parts, keyPos);
      this.index.set(where, { pos: this.at(node.range?.[0]) ?? keyPos, keyPos, broken: true });
      return BROKEN;
    }
    const pos = this.pos(node) ?? keyPos;
    let broken = false;
    let value: unknown = null;
    if (isMap(node)) {
      const out: Record<string, unknown> = {};
      // zod leaves a __proto__ key out of a record; a header or server may still be called that.
      const free = schemaAt(this.schema, parts) instanceof z.ZodRecord;
      const merged: Record<string, unknown> = {};
      for (const pair of node.items) {
        const k = pair.key;
        if (!isScalar(k)) {
          this.problems.push(withPosition({ path: where, message: 'a key must be a plain string, not a list or mapping' }, this.pos(k) ?? pos));
          continue;
        }
        if (k.value === '<<' && k.type === 'PLAIN') {
          this.merge(pair.value, parts, merged);
          continue;
        }
        const key = free && String(k.value) === '__proto__' ? PROTO_KEY : String(k.value);
        const v = this.build(pair.value, [...parts, key], this.pos(k) ?? pos);
        const s = v === null ? schemaAt(this.schema, [...parts, key]) : undefined;
        if (s instanceof z.ZodObject || s instanceof z.ZodArray || s instanceof z.ZodRecord) continue;
        // defineProperty, not assignment: a key named __proto__ must stay a key.
        Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      }
      // Explicit keys win over merged ones; among merged mappings the first one wins.
      for (const [k, v] of Object.entries(merged)) if (!Object.hasOwn(out, k)) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
      value = out;
    } else if (isSeq(node)) {
      value = node.items.map((item, i) => this.build(item, [...parts, i]));
    } else if (isScalar(node)) {
      // (`key:` with nothing after it has no node at all, and is null.)
      const v = node.value;
      if (typeof v === 'string') {
        const expanded = expandEnv(v, this.env);
        for (const p of expanded.problems) this.problems.push(withPosition({ path: where, ...p }, pos));
        broken = expanded.problems.length > 0;
        value = broken ? BROKEN : expanded.value;
      } else {
        value = typeof v === 'number' || typeof v === 'boolean' || v === null ? v : String(v);
      }
    }
    // A merged value does not take the place of one written out.
    if (this.merging === 0 || !this.index.has(where)) this.index.set(where, { pos, keyPos, broken });
    return value;
  }

  private merge(value: unknown, parts: PropertyKey[], into: Record<string, unknown>): void {
    for (const source of isSeq(value) ? value.items : [value]) {
      this.merging++;
      const built = this.build(source, parts);
      this.merging--;
      if (typeof built !== 'object' || built === null || Array.isArray(built)) {
        const message = 'a merge key (<<) takes a mapping or a list of mappings';
        this.problems.push(withPosition({ path: joinPath(pathText(parts), '<<'), message }, this.pos(isAlias(source) ? source.resolve(this.doc) : source)));
        continue;
      }
      for (const [k, v] of Object.entries(built)) if (!Object.hasOwn(into, k)) Object.defineProperty(into, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
  }
}
