// Body writer of the mock origin: paces writes to a per-connection bandwidth
// cap, respects backpressure, and applies the body faults (corrupt, cutAfter).
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Fault } from './faults.js';

/** When each connection may send its next byte (performance.now() ms). */
const nextFree = new WeakMap<Socket, number>();

async function pace(socket: Socket | null, n: number, rate: number): Promise<void> {
  if (socket === null) return;
  const now = performance.now();
  const start = Math.max(now, nextFree.get(socket) ?? now);
  nextFree.set(socket, start + (n * 1000) / rate);
  if (start - now >= 1) await sleep(start - now);
}

/** Resolves on 'drain', or when the response closes first (then the caller stops). */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function writeFlushed(res: ServerResponse, chunk: Buffer): Promise<void> {
  return new Promise((resolve) => {
    res.write(chunk, () => resolve());
  });
}

export interface SendBodyOptions {
  /** Current cap in bytes/s, read before each slice so runtime changes apply at once. */
  bandwidth: () => number | null;
  fault: Fault | undefined;
  onBytes: (n: number) => void;
  /** False for one part of several (multipart/byteranges): the caller ends the response. */
  end?: boolean;
}

/**
 * Writes `src` to `res` and ends it (unless `end: false`). Resolves 'done' on a complete body,
 * 'cut' when a cutAfter fault destroyed the socket, 'aborted' when the client left.
 */
export async function sendBody(
  src: Readable,
  res: ServerResponse,
  o: SendBodyOptions,
): Promise<'done' | 'cut' | 'aborted'> {
  const socket = res.socket;
  let sent = 0;
  const cut = o.fault?.cutAfter;
  try {
    for await (const raw of src as AsyncIterable<Buffer>) {
      let chunk = raw;
      if (o.fault?.corrupt === true) {
        // Same length, different bytes: every byte inverted.
        chunk = Buffer.allocUnsafe(raw.length);
        for (let i = 0; i < raw.length; i++) chunk[i] = (raw[i] ?? 0) ^ 0xff;
      }
      for (let off = 0; off < chunk.length;) {
        if (res.destroyed) return 'aborted';
        const rate = o.bandwidth();
        const sliceMax = rate === null ? chunk.length : Math.min(1 << 20, Math.max(1024, Math.floor(rate / 50)));
        let slice = chunk.subarray(off, off + sliceMax);
        if (cut !== undefined && sent + slice.length >= cut) {
          slice = slice.subarray(0, cut - sent);
          if (slice.length > 0) {
            if (rate !== null) await pace(socket, slice.length, rate);
            await writeFlushed(res, slice);
            o.onBytes(slice.length);
          }
          // Written to the kernel; now break the connection mid-body.
          res.socket?.destroy();
          res.destroy();
          return 'cut';
        }
        if (rate !== null) await pace(socket, slice.length, rate);
        off += slice.length;
        sent += slice.length;
        o.onBytes(slice.length);
        if (!res.write(slice)) await drained(res);
      }
    }
    if (cut !== undefined && sent >= cut) {
      res.socket?.destroy();
      res.destroy();
      return 'cut';
    }
    if (res.destroyed) return 'aborted';
    if (o.end !== false) await new Promise<void>((resolve) => res.end(resolve));
    return 'done';
  } finally {
    src.destroy();
  }
}
