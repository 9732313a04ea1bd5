// Mutated configs: every seed config of the DTR documentation (test/fixtures/seeds/), with
// its placeholders filled (URLs, and real PEM files for its paths), then broken in the
// tree (a value replaced, a key removed or added) and in the text (lines deleted, repeated,
// swapped or re-indented, characters inserted, YAML anchors, aliases, tags and nesting),
// plus REGISTRY_* overrides with arbitrary values.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { ENV_KEYS, envVarName } from '../../src/config/env.js';
import { URL_PLACEHOLDERS } from '../helpers/seed-placeholders.js';

/**
 * The seed configs with every placeholder filled: absolute /certs and /run/secrets paths
 * point at files in `dir` (the CA certificate, or the key for *key* files), and the
 * storage root at a directory there, so each seed loads as it is.
 */
export async function filledSeeds(seedDir: string, dir: string, pem: { cert: string; key: string }): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(seedDir)).filter((n) => n.endsWith('.yml')).sort()) {
    let text = await readFile(join(seedDir, name), 'utf8');
    for (const [placeholder, value] of URL_PLACEHOLDERS) text = text.replaceAll(placeholder, value);
    const files = new Map<string, string>();
    text = text.replace(/\/(?:certs|run\/secrets)\/[\w.-]+/g, (docPath) => {
      const real = join(dir, docPath.replaceAll('/', '_'));
      files.set(real, docPath.includes('key') ? pem.key : pem.cert);
      return real;
    });
    for (const [path, content] of files) await writeFile(path, content);
    out.push(text.replaceAll('/var/lib/registry', join(dir, 'registry')));
  }
  return out;
}

type Tree = null | boolean | number | string | Tree[] | { [k: string]: Tree };

const scalar: fc.Arbitrary<Tree> = fc.oneof(
  fc.constantFrom<Tree>(
    null,
    true,
    false,
    0,
    -1,
    0.5,
    1e309,
    2 ** 53 + 1,
    '',
    ' ',
    'yes',
    'off',
    '~',
    '0x1F',
    '1e3',
    '24h',
    '24x',
    '-1h',
    '1h30m',
    '5000000000000000000000h',
    '500GiB',
    '1.5TiB',
    '-1GiB',
    '1 GiB',
    '0',
    ':5000',
    '0.0.0.0:443',
    '[::1]:5000',
    ':99999',
    'localhost:-1',
    'https://dtr.example.org',
    'http://x',
    'https://',
    '/',
    'relative/path',
    '/nonexistent/file.pem',
    'debug',
    'TRACE',
    'json',
    'text',
    '0.1',
    'é',
    '\u0000',
    'a\nb',
    '!!binary',
    '*alias',
    '&anchor',
  ),
  fc.string({ maxLength: 30 }),
  fc.integer().map((n): Tree => n),
  fc.double().map((n): Tree => n),
);
const value: fc.Arbitrary<Tree> = fc.oneof(
  { weight: 6, arbitrary: scalar },
  { weight: 1, arbitrary: fc.array(scalar, { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), scalar, { maxKeys: 3 }) },
);

type TreeEdit = { op: 'set' | 'delete' | 'add'; at: number; value: Tree; key: string };
type TextEdit = {
  op:
    | 'delete'
    | 'repeat'
    | 'swap'
    | 'indent'
    | 'dedent'
    | 'insert'
    | 'truncate'
    | 'tab'
    | 'anchor'
    | 'deep'
    | 'tag'
    | 'document';
  at: number;
  other: number;
  char: string;
};

export interface ConfigCase {
  seed: number;
  tree: TreeEdit[];
  text: TextEdit[];
  env: Record<string, string>;
}

/** Every path to a node of the tree, parents first. */
function paths(t: Tree, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [prefix];
  if (Array.isArray(t)) t.forEach((v, i) => out.push(...paths(v, [...prefix, i])));
  else if (t !== null && typeof t === 'object')
    for (const [k, v] of Object.entries(t)) out.push(...paths(v, [...prefix, k]));
  return out;
}

function editTree(root: Tree, e: TreeEdit): Tree {
  const all = paths(root).slice(1);
  const path = all[e.at % Math.max(1, all.length)];
  if (path === undefined) return root;
  let parent: Tree = root;
  for (const k of path.slice(0, -1)) parent = (parent as Record<string | number, Tree>)[k] ?? null;
  const last = path[path.length - 1]!;
  if (parent === null || typeof parent !== 'object') return root;
  const p = parent as Record<string | number, Tree>;
  if (e.op === 'set') p[last] = e.value;
  else if (e.op === 'delete') {
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete p[last];
  } else if (!Array.isArray(parent)) p[e.key] = e.value;
  return root;
}

function editText(text: string, e: TextEdit): string {
  const lines = text.split('\n');
  const i = e.at % lines.length;
  const j = e.other % lines.length;
  const line = lines[i] ?? '';
  switch (e.op) {
    case 'delete':
      lines.splice(i, 1);
      break;
    case 'repeat':
      lines.splice(i, 0, line);
      break;
    case 'swap':
      [lines[i], lines[j]] = [lines[j] ?? '', line];
      break;
    case 'indent':
      lines[i] = ' '.repeat((e.other % 4) + 1) + line;
      break;
    case 'dedent':
      lines[i] = line.replace(/^ {1,4}/, '');
      break;
    case 'tab':
      lines[i] = `\t${line.trimStart()}`;
      break;
    case 'insert': {
      const at = e.other % (line.length + 1);
      lines[i] = line.slice(0, at) + e.char + line.slice(at);
      break;
    }
    case 'truncate':
      return text.slice(0, e.other % (text.length + 1));
    case 'anchor':
      // A merge key and aliases (yaml.v2 honours `<<`), including ones that name nothing.
      lines.splice(i, 0, `${line.match(/^\s*/)?.[0] ?? ''}<<: *${e.other % 2 === 0 ? 'missing' : 'a'}`);
      lines.unshift('x-base: &a {x: [&b [1, *b]]}');
      break;
    case 'deep':
      lines.push(`deep: ${'['.repeat(1000 + (e.other % 4000))}`);
      break;
    case 'tag':
      lines[i] = line.replace(
        /: (.+)$/,
        `: !!${['binary', 'int', 'map', 'set', 'timestamp', 'python/object'][e.other % 6]} $1`,
      );
      break;
    case 'document':
      lines.splice(i, 0, e.other % 2 === 0 ? '---' : '...');
      break;
  }
  return lines.join('\n');
}

export function configCase(seeds: number): fc.Arbitrary<ConfigCase> {
  const treeEdit = fc.record({
    op: fc.constantFrom<TreeEdit['op']>('set', 'set', 'delete', 'add'),
    at: fc.nat(),
    value,
    key: fc.oneof(
      fc.constantFrom('blobttl', 'maxsize', 'upstreams', 'limits', 'tls', 'x', ''),
      fc.string({ maxLength: 8 }),
    ),
  });
  const textEdit = fc.record({
    op: fc.constantFrom<TextEdit['op']>(
      'delete',
      'repeat',
      'swap',
      'indent',
      'dedent',
      'insert',
      'truncate',
      'tab',
      'anchor',
      'deep',
      'tag',
      'document',
    ),
    at: fc.nat(),
    other: fc.nat(),
    char: fc.constantFrom(
      ':',
      '-',
      '"',
      "'",
      '#',
      '[',
      '{',
      '&',
      '*',
      '!',
      '|',
      '>',
      '%',
      '@',
      '`',
      '\t',
      '\\',
      '\u0000',
      '\ufeff',
      '\r',
    ),
  });
  const env = fc.dictionary(
    fc.oneof(
      fc.constantFrom(...ENV_KEYS.map(envVarName)),
      fc.constantFrom('REGISTRY_', 'REGISTRY_MIDDLEWARE', 'REGISTRY_HTTP'),
    ),
    fc.oneof(
      scalar.map((v) => (typeof v === 'string' ? v : (JSON.stringify(v) ?? ''))),
      fc.string({ maxLength: 20 }),
    ),
    { maxKeys: 2 },
  );
  return fc.record({
    seed: fc.nat({ max: seeds - 1 }),
    tree: fc.array(treeEdit, { maxLength: 3 }),
    text: fc.array(textEdit, { maxLength: 2 }),
    env: fc.oneof({ weight: 4, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: env }),
  });
}

/** The config text of a case: tree edits on the parsed seed, then text edits. */
export function render(seeds: readonly string[], c: ConfigCase): string {
  let text = seeds[c.seed]!;
  if (c.tree.length > 0) {
    let tree = parse(text) as Tree;
    for (const e of c.tree) tree = editTree(tree, e);
    text = stringify(tree);
  }
  for (const e of c.text) text = editText(text, e);
  return text;
}
