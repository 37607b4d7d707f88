#!/usr/bin/env node
// Writes what the configuration schema publishes, from the built dist/: config/schema.json and, in README.md,
// the configuration reference and the sample error (between marker comments). Run by `npm run build`;
// test/unit/config/schema-json.test.ts fails when the committed files differ from what this writes.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const ref = await import(join(root, 'dist', 'config', 'reference.js'));

writeFileSync(join(root, 'config', 'schema.json'), `${JSON.stringify(ref.configJsonSchema(), null, 2)}\n`);
const readmeFile = join(root, 'README.md');
let readme = readFileSync(readmeFile, 'utf8');
readme = ref.replaceBetween(readme, 'config-reference', ref.configReferenceTable());
readme = ref.replaceBetween(readme, 'config-sample-error', `\`\`\`yaml\n${ref.SAMPLE_CONFIG}\`\`\`\n\ngives\n\n\`\`\`\n${ref.sampleError()}\n\`\`\``);
writeFileSync(readmeFile, readme);
