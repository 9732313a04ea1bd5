// A long link between two tiers, as a process of its own: a TCP relay on loopback that
// passes every byte, each way, `--delay-ms` after it arrived, at most `--bandwidth` bytes a
// second per connection and direction (0: uncapped), as the bench's far origin does. TLS
// goes through untouched, so what a connection carries is up to its two ends as well (TCP
// windows, HTTP/2 flow control), as on a long link.
//   node dist/bench/lib/delay-link.js --target PORT --delay-ms 40 --bandwidth 25000000
// Prints {"event":"listening","port":N} once it listens on 127.0.0.1.
import { createConnection, createServer, type Socket } from 'node:net';
import { parseArgs } from 'node:util';

/** Bytes held per direction of a connection before reading from its source pauses. */
const HELD_MAX = 16 << 20;

interface Link {
  delayMs: number;
  /** Bytes per millisecond; 0: uncapped. */
  bytesPerMs: number;
}

/** Relays `src` to `dst`: each chunk leaves once the line is free and `delayMs` have passed, in order. */
function relay(src: Socket, dst: Socket, link: Link): void {
  const queue: Array<{ at: number; chunk: Buffer }> = [];
  let held = 0;
  /** When the line has sent everything queued so far (the bandwidth cap). */
  let lineFree = 0;
  let timer: NodeJS.Timeout | null = null;
  let ended = false;
  const roomy = (): boolean => held + dst.writableLength <= HELD_MAX;
  const pump = (): void => {
    timer = null;
    const now = performance.now();
    while (queue.length > 0 && queue[0]!.at <= now) {
      const { chunk } = queue.shift()!;
      held -= chunk.length;
      if (!dst.destroyed) dst.write(chunk);
    }
    if (queue.length > 0) timer = setTimeout(pump, queue[0]!.at - now);
    else if (ended) dst.end();
    if (src.isPaused() && roomy()) src.resume();
  };
  src.on('data', (chunk: Buffer) => {
    const now = performance.now();
    lineFree = Math.max(now, lineFree) + (link.bytesPerMs > 0 ? chunk.length / link.bytesPerMs : 0);
    queue.push({ at: lineFree + link.delayMs, chunk });
    held += chunk.length;
    if (!roomy()) src.pause();
    timer ??= setTimeout(pump, queue[0]!.at - now);
  });
  dst.on('drain', () => {
    if (src.isPaused() && roomy()) src.resume();
  });
  src.on('end', () => {
    ended = true;
    timer ??= setTimeout(pump, 0);
  });
  src.on('close', (hadError) => {
    if (hadError) dst.destroy();
  });
  src.on('error', () => undefined);
}

function main(): void {
  const { values } = parseArgs({
    options: { target: { type: 'string' }, 'delay-ms': { type: 'string' }, bandwidth: { type: 'string' } },
  });
  const target = Number(values.target);
  const delayMs = Number(values['delay-ms'] ?? 40);
  const bandwidth = Number(values.bandwidth ?? 0);
  if (!Number.isInteger(target) || target <= 0 || !(delayMs >= 0) || !(bandwidth >= 0)) {
    process.stderr.write('usage: delay-link --target PORT --delay-ms N [--bandwidth BYTES_PER_SECOND]\n');
    process.exit(2);
  }
  const link: Link = { delayMs, bytesPerMs: bandwidth / 1000 };
  const server = createServer((near) => {
    const far = createConnection({ host: '127.0.0.1', port: target });
    relay(near, far, link);
    relay(far, near, link);
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    process.stdout.write(`${JSON.stringify({ event: 'listening', port })}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

main();
