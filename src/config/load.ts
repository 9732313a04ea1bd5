// Config loading: parse the YAML (keeping node positions), apply REGISTRY_* overrides, validate
// every key once, and deep-freeze the result (docs/architecture.md §8). Nothing else builds a Config.
import { readFile } from 'node:fs/promises';
import { Composer, LineCounter, Parser, isMap, isScalar, isSeq, visit, type Document, type YAMLError } from 'yaml';
import type { Config } from './types.js';
import { readDownstream } from './downstream.js';
import { readMirrors, storeTtl } from './mirrors.js';
import { applyEnvOverrides } from './env.js';
import { ConfigError } from './errors.js';
import { Field, type LoadContext } from './field.js';
import { runFileChecks, type FileCheck } from './files.js';
import { readHttp } from './http.js';
import { readLog, readStorage, readVersion } from './sections.js';
import { errnoCode } from '../errors/inspect.js';

export interface LoadOptions {
  /** REGISTRY_* overrides are read from here; none when omitted (loadConfig stays pure). */
  readonly env?: NodeJS.ProcessEnv;
  /** The file name, kept on ConfigError.source. */
  readonly source?: string;
}

export interface LoadResult {
  readonly config: Config;
  /** One line each, `config warning: <key path> (line N): …`, for the caller to print. */
  readonly warnings: string[];
}

// Docker Registry settings a cache has no use for: accepted with a warning so that a registry's
// existing config.yml loads.
const UNUSED_TOP = 'a Docker Registry setting that dtr-cache does not use, ignored';
const UNUSED_TOP_LEVEL: Readonly<Record<string, string>> = {
  auth: "not used by dtr-cache (pulls are authorized by the origin's redirect tokens), ignored",
  notifications: UNUSED_TOP,
  redis: UNUSED_TOP,
  health: UNUSED_TOP,
  reporting: UNUSED_TOP,
  validation: UNUSED_TOP,
  compatibility: UNUSED_TOP,
  catalog: UNUSED_TOP,
  policy: UNUSED_TOP,
};

/**
 * Parses and validates a config.yml text. Pure: no file access, so the files named by `cas`,
 * `http.tls` and a `jwks` path are NOT checked here; loadConfigFile checks them.
 * Throws ConfigError on the first invalid value.
 */
export function loadConfig(text: string, opts: LoadOptions = {}): LoadResult {
  const { config, warnings } = parseAndValidate(text, opts.env ?? {}, opts.source ?? null);
  return { config, warnings };
}

/**
 * Reads a config file, applies REGISTRY_* overrides from `env`, validates it, and checks that
 * the CA, TLS and jwks files it names exist and hold PEM/JWK data. Throws ConfigError.
 */
export async function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadResult> {
  let text: string;
  try {
    text = decodeConfigBytes(await readFile(path));
  } catch (err) {
    const code = errnoCode(err) ?? 'unreadable';
    throw new ConfigError({
      keyPath: '(document)',
      line: null,
      envVar: null,
      source: path,
      cause: err,
      found: `${JSON.stringify(path)} (${code})`,
      expected: 'a readable config file',
    });
  }
  const { config, warnings, checks } = parseAndValidate(text, env, path);
  await runFileChecks(checks);
  return { config, warnings };
}

/**
 * The file's text as Go's yaml.v2 (distribution's parser) decodes it: UTF-16 when it starts
 * with a UTF-16 byte order mark (Windows PowerShell 5.1 writes files so), else UTF-8. A
 * UTF-8 BOM is left for the YAML parser, which skips it.
 */
function decodeConfigBytes(bytes: Buffer): string {
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return new TextDecoder('utf-16le').decode(bytes);
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return new TextDecoder('utf-16be').decode(bytes);
  return bytes.toString('utf8');
}

function parseAndValidate(
  written: string,
  env: NodeJS.ProcessEnv,
  source: string | null,
): LoadResult & { checks: FileCheck[] } {
  // A CR alone is a YAML line break (yaml.v2 reads it so); the yaml package knows LF and CRLF only.
  const text = written.replace(/\r(?!\n)/g, '\n');
  const lineCounter = new LineCounter();
  const [doc, ...rest] = parseStream(text, lineCounter);
  const firstError = doc.errors[0];
  if (firstError !== undefined) throw yamlError(firstError, text, lineCounter, source, doc);
  checkAliases(doc, lineCounter, source);

  const warnings = doc.warnings.map(
    (w) => `config warning: (document)${lineSuffix(w, lineCounter)}: ${firstLine(w.message)}`,
  );
  // A trailing `---` alone makes an empty document: nothing is ignored there.
  const ignored = rest.find((d) => !(d.contents === null || (isScalar(d.contents) && d.contents.value === null)));
  if (ignored !== undefined) {
    const { line } = lineCounter.linePos(ignored.range[0]);
    warnings.push(
      `config warning: (document) (line ${line}): a second YAML document (after ---), ignored as Docker Registry ignores it: only the first is read`,
    );
  }
  const envOrigins = new WeakMap<object, string>();
  applyEnvOverrides(doc, env, envOrigins, warnings, source);

  const ctx: LoadContext = { doc, lineCounter, envOrigins, warnings, source };
  const root: Field = Field.root(ctx);
  if (root.kind !== 'mapping') root.fail('a mapping of settings, as in a Docker Registry config.yml');
  root.checkKeys(
    ['version', 'log', 'loglevel', 'storage', 'http', 'middleware', 'proxy', 'mirrors'],
    [],
    UNUSED_TOP_LEVEL,
  );

  const checks: FileCheck[] = [];
  const version = readVersion(root);
  const log = readLog(root);
  const storage = readStorage(root, checks);
  const http = readHttp(root, checks);
  const deleteEnabled = root.child('storage').child('delete').child('enabled');
  const mirrors = readMirrors(root, env, checks, storage.deleteEnabled);
  const read = readDownstream(root, deleteEnabled, checks, mirrors.length > 0);
  const downstream = { ...read.options, blobTtlMs: storeTtl(read.options.blobTtlMs, read.present, mirrors) };
  const config: Config = { version, log, storage, http, downstream, mirrors };
  return { config: deepFreeze(config), warnings, checks };
}

/**
 * The documents of the text, parsed once; the first is always there (empty for an empty or
 * comment-only file, as parseDocument makes it, with its errors: directives without a `---`).
 * Not parseAllDocuments then parseDocument for a stream without a document: the second parse
 * would add every line start again to the same LineCounter, and later lines would be wrong.
 * Go's yaml.Unmarshal reads the first document of a stream and ignores the rest.
 */
function parseStream(text: string, lineCounter: LineCounter): [Document.Parsed, ...Document.Parsed[]] {
  const parser = new Parser(lineCounter.addNewLine);
  // merge: Go's yaml.v2 (which Docker Registry uses) honours `<<: *anchor`, so we do too.
  const composer = new Composer({ merge: true });
  // forceDoc: with no document in the stream, compose ends with an empty one, so there is a first.
  const docs = Array.from(composer.compose(parser.parse(text), true, text.length));
  return docs as [Document.Parsed, ...Document.Parsed[]];
}

const DUPLICATE_KEY = /^("(?:[^"\\\n]|\\.)*"|'[^'\n]*'|[^\s:,{}[\]][^:\n,{}]*?)\s*:/;

function yamlError(
  err: YAMLError,
  text: string,
  lineCounter: LineCounter,
  source: string | null,
  doc: Document,
): ConfigError {
  const line = err.linePos?.[0].line ?? (err.pos[0] >= 0 ? lineCounter.linePos(err.pos[0]).line : null);
  // A config copied from a web page may carry U+00A0 for spaces: YAML reads it as text, and the
  // error it causes (a column mismatch, a key on two lines) points at another line.
  const nbsp = text.indexOf('\u00a0');
  const at = nbsp < 0 ? null : lineCounter.linePos(nbsp);
  if (at !== null && line !== null && at.line <= line) {
    return new ConfigError({
      keyPath: '(document)',
      line: at.line,
      envVar: null,
      source,
      cause: err,
      found: `a non-breaking space (U+00A0) at column ${at.col}, as pasted from a web page`,
      expected: 'plain spaces (YAML reads U+00A0 as text, not as indentation or a separator)',
    });
  }
  const duplicate = err.code === 'DUPLICATE_KEY';
  // The error points at the key's second occurrence: the key is what precedes its colon there.
  const key = duplicate && err.pos[0] >= 0 ? (DUPLICATE_KEY.exec(text.slice(err.pos[0]))?.[1] ?? '') : '';
  return new ConfigError({
    // The duplicate pair is kept in the tree: its path tells which mapping holds the key twice.
    keyPath: (duplicate ? keyPathAt(doc.contents, '', err.pos[0]) : undefined) ?? '(document)',
    line,
    envVar: null,
    source,
    cause: err,
    found: duplicate
      ? `${key === '' || key.length > 100 ? 'a key' : `the key ${/^["']/.test(key) ? key : JSON.stringify(key)}`} given twice in one mapping`
      : `invalid YAML (${firstLine(err.message)})`,
    expected: duplicate ? 'each key once (Docker Registry refuses duplicates too)' : 'a valid YAML document',
  });
}

/** A key a key path can name: the schema's keys are all of this form. */
const PATH_KEY = /^[A-Za-z0-9_-]+$/;

/**
 * The key path of the mapping key that starts at `pos` (`middleware.registry[0].name`), if
 * any. Only through keys a path can name: under a key such as `:http` or `a.b` no key is of
 * our schema, and the error names the document instead.
 */
function keyPathAt(node: unknown, path: string, pos: number): string | undefined {
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      if (!PATH_KEY.test(key)) continue;
      const at = path === '' ? key : `${path}.${key}`;
      if (isScalar(pair.key) && pair.key.range?.[0] === pos) return at;
      const found = keyPathAt(pair.value, at, pos);
      if (found !== undefined) return found;
    }
  } else if (isSeq(node)) {
    for (const [i, item] of node.items.entries()) {
      const found = keyPathAt(item, `${path}[${i}]`, pos);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/**
 * An alias must name an anchor defined before it. The yaml library reads one that does not as
 * a null value, which would silently leave the key unset; Go's yaml.v2, which Docker Registry
 * uses, refuses the file ("unknown anchor"), and so do we.
 */
function checkAliases(doc: Document, lineCounter: LineCounter, source: string | null): void {
  visit(doc, {
    Alias(_, alias) {
      if (alias.resolve(doc) !== undefined) return;
      const start = alias.range?.[0];
      throw new ConfigError({
        keyPath: '(document)',
        line: start === undefined ? null : lineCounter.linePos(start).line,
        envVar: null,
        source,
        found: `the alias *${alias.source} with no &${alias.source} anchor before it`,
        expected: 'an alias to an anchor defined above it (Docker Registry refuses it too: unknown anchor)',
      });
    },
  });
}

function lineSuffix(err: YAMLError, lineCounter: LineCounter): string {
  return err.pos[0] >= 0 ? ` (line ${lineCounter.linePos(err.pos[0]).line})` : '';
}

function firstLine(message: string): string {
  return (message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '').trim();
}

/** Freezes the config and everything in it: it is shared by every module for the process's life. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
