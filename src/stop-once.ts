// A process stops once, whatever asks first (SIGTERM, SIGINT, the supervisor's drain): it
// logs why, waits for `stop`, flushes its log and exits with the code `stop` resolves (1 if
// the stop itself failed).
import type { Logger } from 'pino';
import { flushLogger } from './log/log.js';

export function stopOnce(log: Logger, stop: () => Promise<number>): (why: string) => void {
  let stopping = false;
  return (why) => {
    if (stopping) return;
    stopping = true;
    log.info({ why }, 'stopping');
    stop().then(
      async (code) => {
        await flushLogger(log);
        process.exit(code);
      },
      async (err: unknown) => {
        log.error({ err }, 'stop failed');
        await flushLogger(log);
        process.exit(1);
      },
    );
  };
}
