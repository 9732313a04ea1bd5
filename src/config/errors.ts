// Config errors. Callers branch on `code`, never on the message (docs/architecture.md §7).
import { DtrCacheError } from '../errors/base.js';
// The CLI prints `message` (always one line) and exits 2, so the message carries
// everything an operator needs: which key, where it came from, what was wrong.

/** Where a value came from: a line of the config file, or an environment variable. */
export interface ConfigLocation {
  /** 1-based line in the YAML text, or null when the value has no line (absent key, env var). */
  readonly line: number | null;
  /** The REGISTRY_* variable the value came from, or null. */
  readonly envVar: string | null;
}

export interface ConfigErrorInit extends ConfigLocation {
  /** Dotted YAML key path, e.g. `middleware.registry[0].options.blobttl`; '(document)' for the whole file. */
  readonly keyPath: string;
  /** What was found, already quoted/described for display, e.g. `"24x"` or `a list`. */
  readonly found: string;
  /** What would have been accepted, in words. */
  readonly expected: string;
  /** The file name, when the text came from a file. */
  readonly source?: string | null;
  readonly cause?: unknown;
}

/** An invalid configuration: the node must not start. */
export class ConfigError extends DtrCacheError<'CONFIG_INVALID'> {
  readonly keyPath: string;
  readonly line: number | null;
  readonly envVar: string | null;
  readonly found: string;
  readonly expected: string;
  readonly source: string | null;

  constructor(init: ConfigErrorInit) {
    super('CONFIG_INVALID', formatConfigError(init), { cause: init.cause });
    this.keyPath = init.keyPath;
    this.line = init.line;
    this.envVar = init.envVar;
    this.found = init.found;
    this.expected = init.expected;
    this.source = init.source ?? null;
  }
}

export function isConfigError(err: unknown): err is ConfigError {
  return err instanceof ConfigError;
}

/** ` (line 14)`, ` (from REGISTRY_HTTP_ADDR)` or '' — shared by errors and warnings. */
export function formatWhere(loc: ConfigLocation): string {
  if (loc.envVar !== null) return ` (from ${loc.envVar})`;
  if (loc.line !== null) return ` (line ${loc.line})`;
  return '';
}

function formatConfigError(init: ConfigErrorInit): string {
  const text = `config error: ${init.keyPath}${formatWhere(init)}: found ${init.found}, expected ${init.expected}`;
  // Values can contain newlines (a quoted multi-line scalar); the message stays one line.
  return text.replace(/\s*[\r\n]+\s*/g, ' ');
}

/** A scalar that is not a valid duration or size; load.ts turns it into a ConfigError with a key path. */
export class ValueSyntaxError extends DtrCacheError<'DURATION_INVALID' | 'SIZE_INVALID'> {
  readonly input: string;
  readonly expected: string;

  constructor(code: 'DURATION_INVALID' | 'SIZE_INVALID', input: string, expected: string) {
    super(
      code,
      `invalid ${code === 'DURATION_INVALID' ? 'duration' : 'size'} ${JSON.stringify(input)}: expected ${expected}`,
    );
    this.input = input;
    this.expected = expected;
  }
}
