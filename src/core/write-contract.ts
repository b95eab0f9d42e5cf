/**
 * Writes the contract derived from the field registry: schemas/<type>.json, schemas/asyncapi.json
 * and the README's field table. Run after changing src/core/fields.ts:
 *
 *   ./node_modules/.bin/node src/core/write-contract.ts
 *
 * test/contract.test.ts fails while the files disagree with the registry.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { DEFAULT_TYPE_PREFIX } from '../../exporters/transform.ts';
import { asyncApiDocument, dataSchema, fieldTable } from './contract.ts';
import { EVENT_TYPES } from './fields.ts';

export const ROOT = new URL('../../', import.meta.url);
export const FIELDS_BEGIN = '<!-- fields:begin (generated from src/core/fields.ts) -->';
export const FIELDS_END = '<!-- fields:end -->';

/** JSON as the files hold it: two-space indentation, non-ASCII escaped, a final newline. */
export function jsonText(value: unknown): string {
  return `${JSON.stringify(value, null, 2).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`;
}

/** Every generated file: path (relative to the repository) → content. */
export function contractFiles(readme: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const type of EVENT_TYPES) files[`schemas/${type}.json`] = jsonText(dataSchema(type));
  files['schemas/asyncapi.json'] = jsonText(asyncApiDocument(DEFAULT_TYPE_PREFIX));
  const begin = readme.indexOf(FIELDS_BEGIN);
  const end = readme.indexOf(FIELDS_END);
  if (begin < 0 || end < begin) throw new Error(`README.md lacks the ${FIELDS_BEGIN} … ${FIELDS_END} markers`);
  files['README.md'] = `${readme.slice(0, begin + FIELDS_BEGIN.length)}\n${fieldTable()}\n${readme.slice(end)}`;
  return files;
}

if (import.meta.main) {
  const readme = readFileSync(new URL('README.md', ROOT), 'utf8');
  for (const [path, text] of Object.entries(contractFiles(readme))) {
    writeFileSync(new URL(path, ROOT), text);
    process.stdout.write(`wrote ${path}\n`);
  }
}
