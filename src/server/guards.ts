// Hostile-client guards that Node's servers do not provide themselves: open
// connections per client IP, HTTP/2 rapid-reset floods, and the HTTP/2 header-list size.
// On Node 26, nghttp2's RST_STREAM rate limit (server.ts sets it from maxresetspersecond)
// stops a reset flood before its streams reach us, with GOAWAY(INTERNAL_ERROR); the guard
// here counts the resets of streams that did reach the handler. A header list beyond the
// advertised SETTINGS_MAX_HEADER_LIST_SIZE is still delivered as is; HTTP/1.1 header size
// and timeouts are node:http's (see server.ts).
import { constants, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';

export type GuardReason = 'per-ip' | 'rapid-reset' | 'header-size';

export interface GuardHooks {
  /** A connection or stream refused; called once per event, so it may log and count. */
  refused?(reason: GuardReason, ip: string): void;
}

/** The client address, with IPv4-mapped IPv6 (`::ffff:10.0.0.1`) folded to IPv4. */
export function clientIp(socket: Socket): string {
  const ip = socket.remoteAddress ?? 'unknown';
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

/** Decides, for each new connection, whether it may stay; a refused one is destroyed. */
export interface ConnectionGate {
  /** Admits or destroys a new connection; true when admitted (for now, for a node-wide gate). */
  admit(socket: Socket, hooks: GuardHooks): boolean;
}

/** Open connections per client IP; a connection over the limit is destroyed at once. */
export class PerIpLimiter implements ConnectionGate {
  readonly #max: number;
  readonly #open = new Map<string, number>();

  constructor(max: number) {
    this.#max = max;
  }

  /** Admits or destroys a new connection; true when admitted. */
  admit(socket: Socket, hooks: GuardHooks): boolean {
    const ip = clientIp(socket);
    const n = this.#open.get(ip) ?? 0;
    if (n >= this.#max) {
      socket.destroy();
      hooks.refused?.('per-ip', ip);
      return false;
    }
    this.#open.set(ip, n + 1);
    socket.once('close', () => {
      const left = (this.#open.get(ip) ?? 1) - 1;
      if (left <= 0) this.#open.delete(ip);
      else this.#open.set(ip, left);
    });
    return true;
  }
}

/**
 * CVE-2023-44487: a client that opens streams and resets them at once makes the server
 * start work for each. Past `maxPerSecond` reset streams in one second, the session gets
 * GOAWAY(ENHANCE_YOUR_CALM) and is destroyed. Every stream that closes with an error code
 * counts: a stream's 'aborted' event would miss resets that arrive after a quick answer
 * (a 404 is ended before the RST_STREAM behind it is read), and Node does not say which
 * side reset. Our own resets (a failed fill after headers) are rare, and one client
 * session never sees dozens of them in a second.
 */
export function guardRapidReset(session: Http2Session, maxPerSecond: number, onTrip: () => void): void {
  let windowStart = 0;
  let count = 0;
  let tripped = false;
  const onReset = (): void => {
    const now = Date.now();
    if (now - windowStart >= 1000) {
      windowStart = now;
      count = 0;
    }
    if (++count <= maxPerSecond || tripped) return;
    tripped = true;
    onTrip();
    session.destroy(
      new Error('HTTP/2 rapid reset: too many streams cancelled by the client'),
      constants.NGHTTP2_ENHANCE_YOUR_CALM,
    );
  };
  session.on('stream', (stream: ServerHttp2Stream) => {
    stream.once('close', () => {
      if (stream.rstCode !== constants.NGHTTP2_NO_ERROR && !session.destroyed) onReset();
    });
  });
}

/** RFC 9113 §6.5.2: a header list's size is the sum of name + value + 32 octets per field. */
export function headerListSize(rawHeaders: readonly string[]): number {
  let size = 0;
  for (let i = 0; i < rawHeaders.length; i++) size += rawHeaders[i]!.length + (i % 2 === 0 ? 32 : 0);
  return size;
}

/**
 * Guard hooks that count every refusal and log at most one line per reason per second
 * (with how many were not logged), so a flood never becomes a log flood.
 */
export function refusalReporter(
  log: { warn(obj: object, msg: string): void },
  count?: (reason: GuardReason) => void,
): GuardHooks {
  const last = new Map<GuardReason, { at: number; suppressed: number }>();
  return {
    refused(reason, ip) {
      count?.(reason);
      const now = Date.now();
      const seen = last.get(reason);
      if (seen !== undefined && now - seen.at < 1_000) {
        seen.suppressed++;
        return;
      }
      log.warn({ reason, ip, notLogged: seen?.suppressed ?? 0 }, 'refused a client over a limit');
      last.set(reason, { at: now, suppressed: 0 });
    },
  };
}
