// pino, kept off the hot path (docs/architecture.md §9): JSON lines through an asynchronous
// destination, or, with `log.formatter: text`, pino-pretty on a transport thread, one
// line per record for people. Tokens are redacted wherever they could appear.
import { pino, type Logger } from 'pino';
import type { Config } from '../config/types.js';

// `*.headers.authorization` covers an error logged as `{ err }` that carries request headers.
const REDACT = [
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
];

/**
 * The largest write the kernel keeps whole on a pipe (PIPE_BUF on Linux): the serving
 * processes of a node share one stdout, and a line must never be cut by another's.
 */
const ATOMIC_WRITE = 4096;

export function createLogger(cfg: Config['log'], dest: number | string = 1): Logger {
  const options = {
    level: cfg.level,
    // pid: a node runs several processes that write to the same stdout.
    base: { svc: 'dtr-cache', pid: process.pid },
    redact: { paths: REDACT, censor: '[redacted]' },
  };
  if (cfg.formatter === 'text') {
    const transport = pino.transport({ target: 'pino-pretty', options: textOptions(dest) });
    return pino(options, transport);
  }
  return pino(options, pino.destination({ dest, sync: false, minLength: 0, maxWrite: ATOMIC_WRITE }));
}

/**
 * `2026-11-22T10:00:00.000Z INFO: request {"method":"GET","status":200,…}`: UTC time, level,
 * message, then the other fields as JSON on the same line (grep-able, no colours).
 */
function textOptions(dest: number | string): Record<string, unknown> {
  return {
    destination: dest,
    append: true,
    colorize: false,
    singleLine: true,
    translateTime: "UTC:yyyy-mm-dd'T'HH:MM:ss.l'Z'",
    ignore: 'pid,hostname,svc',
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
