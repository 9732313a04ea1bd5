// A cursor over the parsed YAML tree that knows its key path and where its value came from
// (a line of the file or a REGISTRY_* variable), so that every check can throw a ConfigError
// naming both. The schema modules read the config only through this class.
import {
  isAlias,
  isMap,
  isNode,
  isScalar,
  isSeq,
  type Document,
  type LineCounter,
  type Node,
  type YAMLMap,
} from 'yaml';
import { ConfigError, ValueSyntaxError, formatWhere, type ConfigLocation } from './errors.js';

export interface LoadContext {
  readonly doc: Document;
  readonly lineCounter: LineCounter;
  /** Scalars set from REGISTRY_* variables → the variable's name. */
  readonly envOrigins: WeakMap<object, string>;
  readonly warnings: string[];
  readonly source: string | null;
}

interface Entry {
  readonly key: string;
  readonly keyNode: unknown;
  readonly value: unknown;
}

export class Field {
  /** The value; null when the key is absent or its value is YAML null (`key:` or `key: ~`). */
  readonly node: Node | null;

  constructor(
    private readonly ctx: LoadContext,
    readonly path: string,
    value: unknown,
    /** What this field's line is taken from: its key, its list item, or (when absent) its parent. */
    private readonly anchor: unknown,
  ) {
    const resolved: unknown = isAlias(value) ? value.resolve(ctx.doc) : value;
    this.node = !isNode(resolved) || (isScalar(resolved) && resolved.value === null) ? null : resolved;
  }

  static root(ctx: LoadContext): Field {
    // No anchor: a missing top-level key has no line worth naming.
    return new Field(ctx, '', ctx.doc.contents, null);
  }

  get present(): boolean {
    return this.node !== null;
  }

  get kind(): 'absent' | 'mapping' | 'list' | 'scalar' {
    if (this.node === null) return 'absent';
    if (isMap(this.node)) return 'mapping';
    return isSeq(this.node) ? 'list' : 'scalar';
  }

  get location(): ConfigLocation {
    const envVar = this.node === null ? undefined : this.ctx.envOrigins.get(this.node);
    if (envVar !== undefined) return { line: null, envVar };
    return { line: lineOf(this.ctx.lineCounter, this.anchor) ?? lineOf(this.ctx.lineCounter, this.node), envVar: null };
  }

  /** Throws the ConfigError for this field. `found` defaults to a description of the value. */
  fail(expected: string, found?: string, cause?: unknown): never {
    throw new ConfigError({
      keyPath: this.path === '' ? '(document)' : this.path,
      ...this.location,
      found: found ?? describe(this.node),
      expected,
      source: this.ctx.source,
      cause,
    });
  }

  warn(message: string): void {
    this.ctx.warnings.push(
      `config warning: ${this.path === '' ? '(document)' : this.path}${formatWhere(this.location)}: ${message}`,
    );
  }

  /** The key's value as a Field (absent if the key is missing). Fails if this is not a mapping. */
  child(key: string): Field {
    const entry = this.entries().find((e) => e.key === key);
    const path = this.path === '' ? key : `${this.path}.${key}`;
    if (entry === undefined) return new Field(this.ctx, path, null, this.anchor);
    return new Field(this.ctx, path, entry.value, entry.keyNode);
  }

  /** An absent field named `path`: defaults for a section the config does not have (a pure mirror's downstream). */
  absent(path: string): Field {
    return new Field(this.ctx, path, null, this.anchor);
  }

  /** All keys of a mapping (merge keys `<<` expanded, as Go's yaml.v2 does); [] when absent. */
  keys(): string[] {
    return this.entries().map((e) => e.key);
  }

  /** The items of a list; [] when absent. Fails if present and not a list. */
  items(expected = 'a list'): Field[] {
    if (this.node === null) return [];
    if (!isSeq(this.node)) this.fail(expected);
    return this.node.items.map((item, i) => new Field(this.ctx, `${this.path}[${i}]`, item, item));
  }

  /**
   * Warns about every key not in `known`. `ignored` keys (Docker Registry settings that do not
   * matter to a cache) pass silently; `unsupported` ones warn with their own message.
   */
  checkKeys(
    known: readonly string[],
    ignored: readonly string[] = [],
    unsupported: Readonly<Record<string, string>> = {},
  ): void {
    for (const key of this.keys()) {
      if (known.includes(key) || ignored.includes(key)) continue;
      this.child(key).warn(Object.hasOwn(unsupported, key) ? (unsupported[key] ?? '') : 'unknown key, ignored');
    }
  }

  /** The scalar value, or null when absent. Fails on a mapping or list. */
  scalar(expected: string): string | number | boolean | null {
    if (this.node === null) return null;
    if (!isScalar(this.node)) this.fail(expected);
    const v = this.node.value;
    if (typeof v === 'string' || typeof v === 'boolean') return v;
    if (typeof v === 'number') return v;
    return this.fail(expected);
  }

  /** A string; plain numbers and booleans are read as their source text, as Go reads them into a string field. */
  string(expected = 'a string'): string | null {
    const v = this.scalar(expected);
    if (v === null || typeof v === 'string') return v;
    return this.rawText();
  }

  /** A non-empty string. */
  text(expected = 'a non-empty string'): string | null {
    const v = this.string(expected);
    if (v === '') this.fail(expected);
    return v;
  }

  /**
   * A non-empty string, or null when absent or empty: for the keys distribution tests for ""
   * (http.host, http.tls.certificate and key, http.debug.addr, log.formatter), where "" means unset.
   */
  optionalText(expected = 'a non-empty string'): string | null {
    return this.string(expected) || null;
  }

  /** A boolean; YAML 1.1 spellings (yes/no/on/off), which Go's yaml.v2 accepts, are accepted too. */
  bool(): boolean | null {
    const expected = 'true or false';
    const v = this.scalar(expected);
    if (v === null || typeof v === 'boolean') return v;
    if (typeof v === 'string') {
      if (/^(y|Y|yes|Yes|YES|true|True|TRUE|on|On|ON)$/.test(v)) return true;
      if (/^(n|N|no|No|NO|false|False|FALSE|off|Off|OFF)$/.test(v)) return false;
    }
    return this.fail(expected);
  }

  /** A whole number in [min, max]. */
  int(min: number, max = Number.MAX_SAFE_INTEGER): number | null {
    const expected =
      max === Number.MAX_SAFE_INTEGER ? `a whole number ≥ ${min}` : `a whole number from ${min} to ${max}`;
    const v = this.scalar(expected);
    if (v === null) return null;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) this.fail(expected);
    return v;
  }

  /** Runs a string/number parser (duration, size) and turns its ValueSyntaxError into a ConfigError here. */
  parse<T>(parser: (value: string | number) => T, expected: string): T | null {
    const v = this.scalar(expected);
    if (v === null) return null;
    if (typeof v === 'boolean') this.fail(expected);
    try {
      return parser(v);
    } catch (err) {
      if (err instanceof ValueSyntaxError) this.fail(err.expected, undefined, err);
      throw err;
    }
  }

  /** The scalar as written (so `0.1` stays "0.1" and `0x1F` stays "0x1F"). */
  rawText(): string {
    if (this.node === null || !isScalar(this.node)) return '';
    return typeof this.node.source === 'string' ? this.node.source : String(this.node.value);
  }

  private entries(): Entry[] {
    if (this.node === null) return [];
    if (!isMap(this.node)) this.fail('a mapping');
    return this.mapEntries(this.node, 0);
  }

  private mapEntries(map: YAMLMap, depth: number): Entry[] {
    if (depth > 32) this.fail('a mapping without merge-key cycles');
    const own: Entry[] = [];
    const merged: Entry[] = [];
    for (const pair of map.items) {
      const k = pair.key;
      // `<<: *anchor` (YAML 1.1 merge key): parseDocument's `merge` option marks it with a symbol.
      if (isScalar(k) && typeof k.value === 'symbol') {
        const value = isAlias(pair.value) ? pair.value.resolve(this.ctx.doc) : pair.value;
        const sources = isSeq(value) ? value.items : [value];
        for (const s of sources) {
          const src = isAlias(s) ? s.resolve(this.ctx.doc) : s;
          if (!isMap(src)) this.fail('merge keys (<<) that refer to mappings');
          merged.push(...this.mapEntries(src, depth + 1));
        }
        continue;
      }
      const key = isScalar(k) ? k.value : k;
      if (typeof key !== 'string' && typeof key !== 'number' && typeof key !== 'boolean') {
        new Field(this.ctx, this.path, pair.value, k).fail('mapping keys that are plain words', 'a complex key');
      }
      own.push({ key: String(key), keyNode: k, value: pair.value });
    }
    // Own keys win over merged ones, and earlier merge sources over later ones (YAML merge spec).
    const out = [...own];
    for (const e of merged) if (!out.some((o) => o.key === e.key)) out.push(e);
    return out;
  }
}

function lineOf(lc: LineCounter, node: unknown): number | null {
  if (node === null || typeof node !== 'object' || !('range' in node)) return null;
  const range = (node as { range?: readonly number[] | null }).range;
  const start = range?.[0];
  return start === undefined ? null : lc.linePos(start).line;
}

/**
 * Longer strings are cut after this many characters in "found": the CLI writes the message
 * and exits, and stderr into a pipe kept only its first 64 KiB, losing what was expected.
 */
const SHOWN_CHARS = 100;

/** JSON quoting, with a non-breaking space (pasted from a web page) shown rather than blank. */
function quote(text: string): string {
  return JSON.stringify(text).replace(/\u00a0/g, '\\u00a0');
}

/** How a value is shown after "found": strings quoted, numbers as written, collections by kind. */
export function describe(node: Node | null): string {
  if (node === null) return 'nothing';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    if (typeof node.value === 'string') {
      const text = node.value;
      if (text.length <= SHOWN_CHARS) return quote(text);
      return `${quote(text.slice(0, SHOWN_CHARS)).slice(0, -1)}…" (${text.length} characters)`;
    }
    if (node.value instanceof Uint8Array) return `binary data (${node.tag ?? '!!binary'})`;
    const shown = typeof node.source === 'string' && node.source !== '' ? node.source : String(node.value);
    // Never an empty "found": a tagged empty scalar would read `found , expected …`.
    return shown === '' ? `an empty ${node.tag ?? 'value'}` : shown;
  }
  return 'an unsupported YAML node';
}
