// pino, kept off the hot path (DESIGN.md §11): JSON lines through an asynchronous
// destination, or, with `log.formatter: text`, a transport thread that formats lines
// for people. Tokens are redacted wherever they could appear.
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

export function createLogger(cfg: Config['log'], dest: number | string = 1): Logger {
  const options = { level: cfg.level, base: { svc: 'dtr-cache' }, redact: { paths: REDACT, censor: '[redacted]' } };
  if (cfg.formatter === 'text') {
    const transport = pino.transport({ target: new URL('./log-text.js', import.meta.url).href, options: { dest } });
    return pino(options, transport);
  }
  return pino(options, pino.destination({ dest, sync: false, minLength: 0 }));
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
