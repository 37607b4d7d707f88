/**
 * What the schema publishes: `config/schema.json` (the input side, for editors: `${VAR}`, `5s` and `4MiB`
 * validate) and the README's configuration reference. `scripts/gen-config-docs.mjs` writes both at build
 * time; tests fail when the committed files are stale.
 */
import { z } from 'zod';

import { ConfigError } from '../errors.js';
import { parseConfigText } from './load.js';
import { root, STATIC_CONTEXT } from './schema.js';

type Json = Record<string, unknown>;

/** The JSON Schema (draft 2020-12) of the configuration file. */
export function configJsonSchema(): Json {
  const schema = z.toJSONSchema(root(STATIC_CONTEXT), {
    io: 'input',
    unrepresentable: 'any',
    override: (ctx) => {
      const js = ctx.jsonSchema as Json;
      const own = js['json'] as Json | undefined;
      delete js['json'];
      delete js['hint'];
      if (own !== undefined) {
        delete js['type'];
        Object.assign(js, own);
      }
    },
  }) as Json;
  requiredKeys(schema);
  return {
    $schema: schema['$schema'],
    title: 'nats-autoprof configuration',
    description: 'config/example.yaml documents every key with its default. Generated from src/config/schema.ts; do not edit.',
    ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== '$schema')),
  };
}

/** Keys marked `x-required` (required, but reported by a rule with a better hint) join their mapping's `required`. */
function requiredKeys(node: unknown): void {
  if (typeof node !== 'object' || node === null) return;
  const n = node as Json;
  const props = n['properties'] as Record<string, Json> | undefined;
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value['x-required'] === true) {
      delete value['x-required'];
      n['required'] = [...((n['required'] as string[] | undefined) ?? []), key];
    }
  }
  for (const value of Object.values(n)) requiredKeys(value);
}

function show(v: unknown): string {
  if (Array.isArray(v)) return `\`[${v.join(', ')}]\``;
  if (typeof v === 'object') return 'none';
  return `\`${String(v)}\``;
}

/** One row per key, `servers[].url` style, from the JSON Schema. */
export function configReferenceTable(): string {
  const rows: string[] = ['| key | default | meaning |', '|---|---|---|'];
  const walk = (node: Json, where: string): void => {
    const props = node['properties'] as Record<string, Json> | undefined;
    const required = new Set((node['required'] as string[] | undefined) ?? []);
    for (const [key, value] of Object.entries(props ?? {})) {
      const at = where === '' ? key : `${where}.${key}`;
      const items = value['items'] as Json | undefined;
      const inner = value['properties'] !== undefined ? value : items?.['properties'] !== undefined ? items : undefined;
      const def = value['default'];
      const isSection = inner !== undefined;
      const shown = required.has(key) ? 'required' : def === undefined || (isSection && !Array.isArray(def)) ? 'none' : show(def);
      const description = String(value['description'] ?? '').replace(/\|/g, '\\|');
      rows.push(`| \`${at}${items?.['properties'] !== undefined ? '[]' : ''}\` | ${isSection && def !== undefined && !Array.isArray(def) ? '' : shown} | ${description} |`);
      if (inner !== undefined) walk(inner, items?.['properties'] !== undefined ? `${at}[]` : at);
    }
  };
  walk(configJsonSchema(), '');
  return rows.join('\n');
}

/** The README's sample error: a real load of a small bad file. */
export const SAMPLE_CONFIG = 'poll:\n  interval: 5s\n  intervall: 10s\nservers:\n  - url: http://127.0.0.1:8222\ntriggers:\n  - name: high-cpu\n    metric: cpu\n    above: eighty\n';

export function sampleError(): string {
  try {
    parseConfigText(SAMPLE_CONFIG, '/etc/nats-autoprof/config.yaml', {});
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error('the sample configuration loaded');
}

/** `text` with what is between `<!-- name:start -->` and `<!-- name:end -->` replaced by `body`. */
export function replaceBetween(text: string, name: string, body: string): string {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const a = text.indexOf(start);
  const b = text.indexOf(end);
  if (a < 0 || b < a) throw new Error(`markers ${start} ... ${end} not found`);
  return `${text.slice(0, a + start.length)}\n${body}\n${text.slice(b)}`;
}
