// pino, kept off the hot path (docs/architecture.md §9): JSON lines through an asynchronous
// destination, or, with `log.formatter: text`, pino-pretty on a transport thread, one
// line per record for people. Tokens are redacted wherever they could appear.
import { pino, type Logger } from 'pino';
import type { Config } from '../config/types.js';

const CENSOR = '[redacted]';
/** Fields that hold a token, at the top of a record or one object down (`{ err }` included). */
const SECRET_KEYS = ['token', 'authorization'];

/**
 * A record with every token censored: `token` and `authorization` at the top and one object
 * down, and `headers.authorization` at both levels. Records without one pass through
 * untouched. (pino's own `redact` did this with wildcard paths, which it re-parses on every
 * record: 10–20 % of the small-hit throughput; bench/NOTES.md, "Log redaction".)
 */
export function censorTokens(record: Record<string, unknown>, skip?: string): Record<string, unknown> {
  let out: Record<string, unknown> | null = null;
  for (const key of Object.keys(record)) {
    if (key === skip) continue;
    const value = record[key];
    const censored = SECRET_KEYS.includes(key) ? CENSOR : censorObject(value);
    if (censored !== value) (out ??= { ...record })[key] = censored;
  }
  return out ?? record;
}

/** The value with its own secrets censored (a plain copy), or the value itself when it has none. */
function censorObject(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || Buffer.isBuffer(value)) return value;
  const v = value as Record<string, unknown>;
  const headers = v['headers'];
  const headerSecret = typeof headers === 'object' && headers !== null && 'authorization' in headers;
  if (!SECRET_KEYS.some((k) => k in v) && !headerSecret) return value;
  // A spread keeps what JSON would show of it: its own enumerable fields.
  const copy: Record<string, unknown> = { ...v };
  for (const k of SECRET_KEYS) if (k in copy) copy[k] = CENSOR;
  if (headerSecret) copy['headers'] = { ...(headers as object), authorization: CENSOR };
  return copy;
}

/**
 * The largest write the kernel keeps whole on a pipe (PIPE_BUF on Linux): the serving
 * processes of a node share one stdout, and a line must never be cut by another's.
 */
const ATOMIC_WRITE = 4096;

/**
 * The bindings every line carries; log.fields are added to them. pid: a node runs several
 * processes that write to the same stdout.
 */
const BASE = { svc: 'dtr-cache', pid: process.pid };

/**
 * The names a line of this logger may already carry: pino's own, the base bindings, the
 * serving process's `proc` (cluster/member.ts) and `err`. A log.fields entry of one of
 * these names would write the key twice into one JSON object (config/sections.ts skips it).
 */
export const LINE_FIELD_NAMES: readonly string[] = [
  'level',
  'time',
  'msg',
  'hostname',
  ...Object.keys(BASE),
  'proc',
  'err',
];

export function createLogger(
  cfg: Pick<Config['log'], 'level' | 'formatter'> & Partial<Pick<Config['log'], 'fields'>>,
  dest: number | string = 1,
): Logger {
  const options = {
    level: cfg.level,
    // log.fields go in the bindings, so every line has them, the access log's too (it
    // writes the bindings).
    base: { ...BASE, ...cfg.fields },
    // `err` is censored after pino's serializer has made a plain object of it (a copy made
    // before would lose its message and stack, which are not enumerable); the rest before.
    formatters: { log: (record: Record<string, unknown>) => censorTokens(record, 'err') },
    serializers: {
      err: (err: Error) => censorTokens(pino.stdSerializers.err(err) as unknown as Record<string, unknown>),
    },
  };
  if (cfg.formatter === 'text') {
    const transport = pino.transport({ target: 'pino-pretty', options: textOptions(dest) });
    return pino(options, transport);
  }
  return pino(options, pino.destination({ dest, sync: false, minLength: 0, maxWrite: ATOMIC_WRITE }));
}

/**
 * `[2026-11-22T10:00:00.000Z] INFO (4242): request {"method":"GET","status":200,…}`: UTC time,
 * level, the writing process's pid (pino-pretty's own form), message, then the other fields as
 * JSON on the same line, errors included (grep-able, no colours). The pid: a supervisor and its
 * serving processes write to the same stream, and the JSON lines say which one wrote.
 */
function textOptions(dest: number | string): Record<string, unknown> {
  return {
    destination: dest,
    append: true,
    colorize: false,
    singleLine: true,
    translateTime: "UTC:yyyy-mm-dd'T'HH:MM:ss.l'Z'",
    ignore: 'hostname,svc',
    // pino-pretty prints `err` (and `error`) apart, on lines of their own, stacks unfolded,
    // whatever singleLine says: an access log line with an error, or any error logged,
    // would take several lines. They stay in the line's JSON, as every other field.
    errorLikeObjectKeys: [],
  };
}

/** Flushes what an async destination still holds (before exit). */
export function flushLogger(log: Logger): Promise<void> {
  return new Promise((resolve) => {
    try {
      log.flush(() => resolve());
    } catch {
      resolve();
    }
  });
}
