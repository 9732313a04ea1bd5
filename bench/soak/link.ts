// The faulty link between the edge and the regional tier. It terminates the edge's TLS with
// its own certificate (from the run's CA, trusted by the edge through `cas`) and opens its own
// TLS connection to the regional, so it sees HTTP/1.1 messages in the clear: it can cut a
// body midway, stall it (headers, then silence) or flip one byte of it, which a TCP-level
// link could not do without breaking TLS (a flipped TLS record only ever reads as a cut).
import { Agent, createServer, request, type Server } from 'node:https';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export type LinkFault = 'cut' | 'stall' | 'flip';

export interface LinkMode {
  /** Faults drawn from, one per faulted transfer. */
  faults: LinkFault[];
  /** Share of blob bodies (GET 200/206) that get a fault. */
  rate: number;
}

export interface LinkStats {
  requests: number;
  /** Blob GETs the edge sent to the regional through the link, per digest. */
  getsByDigest: Record<string, number>;
  cut: number;
  stalled: number;
  flipped: number;
  /** Requests the link could not forward (the regional was down): the edge's connection is dropped. */
  unreachable: number;
}

/** Headers that describe one connection, not the message (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
]);

function endToEnd(h: IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
  return out;
}

/** A stalled response is dropped after this long if the edge never gives up on it. */
const STALL_LIMIT_MS = 120_000;
/** Bodies smaller than this pass untouched: a fault needs room to land mid-body. */
const MIN_FAULT_BODY = 64 * 1024;

/**
 * Forwards body bytes; at byte `at` it flips one bit (flip), or calls `onReach` and lets
 * nothing more through (cut, stall). A stalled body never ends: its end is withheld.
 */
class BodyFault extends Transform {
  #seen = 0;
  #reached = false;

  constructor(
    readonly kind: LinkFault,
    readonly at: number,
    readonly onReach: () => void,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const start = this.#seen;
    this.#seen += chunk.length;
    if (this.#reached) {
      cb(null, this.kind === 'flip' ? chunk : undefined);
      return;
    }
    if (this.#seen <= this.at) {
      cb(null, chunk);
      return;
    }
    this.#reached = true;
    const i = this.at - start;
    if (this.kind === 'flip') {
      const copy = Buffer.from(chunk);
      copy[i] = (copy[i] ?? 0) ^ 0x20;
      cb(null, copy);
      return;
    }
    if (i > 0) this.push(chunk.subarray(0, i));
    this.onReach();
    cb();
  }

  override _flush(cb: TransformCallback): void {
    // A stall withholds the end: the response stays open and silent until someone drops it.
    if (this.kind !== 'stall' || !this.#reached) cb();
  }
}

export class FaultLink {
  readonly stats: LinkStats = { requests: 0, getsByDigest: {}, cut: 0, stalled: 0, flipped: 0, unreachable: 0 };
  #mode: LinkMode = { faults: [], rate: 0 };
  /** Faults drawn since the mode was set: the first qualifying body of a phase always gets one. */
  #faultsInMode = 0;
  url = '';
  readonly #server: Server;
  readonly #agent: Agent;
  readonly #sockets = new Set<Socket>();
  readonly #stallTimers = new Set<NodeJS.Timeout>();

  /**
   * @param target the regional's port on localhost (kept across its restarts)
   * @param rnd the run's seeded random source
   */
  constructor(
    tls: { cert: string; key: string },
    caPem: string,
    readonly target: number,
    readonly rnd: () => number,
  ) {
    this.#agent = new Agent({ keepAlive: true, maxSockets: 64, ca: caPem, servername: 'localhost' });
    // HTTP/1.1 only, so every body byte the link forwards is a body byte (no h2 framing).
    this.#server = createServer({ cert: tls.cert, key: tls.key, ALPNProtocols: ['http/1.1'] }, (req, res) =>
      this.#forward(req, res),
    );
    this.#server.on('secureConnection', (s: Socket) => {
      this.#sockets.add(s);
      s.once('close', () => this.#sockets.delete(s));
    });
    // A broken edge connection must not take the harness down.
    this.#server.on('tlsClientError', () => undefined);
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.url = `https://localhost:${(this.#server.address() as AddressInfo).port}`;
    return this.url;
  }

  #forward(req: IncomingMessage, res: ServerResponse): void {
    this.stats.requests++;
    const digest = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? '')?.[1];
    if (digest !== undefined && req.method === 'GET')
      this.stats.getsByDigest[digest] = (this.stats.getsByDigest[digest] ?? 0) + 1;
    const up = request({
      host: '127.0.0.1',
      port: this.target,
      method: req.method,
      path: req.url,
      headers: { ...endToEnd(req.headers), host: `localhost:${this.target}` },
      agent: this.#agent,
    });
    const drop = (): void => {
      up.destroy();
      req.socket.destroy();
    };
    up.once('error', () => {
      // The regional is down or dropped us: the edge sees its connection close, as it would
      // if the regional itself had gone.
      if (!res.headersSent) this.stats.unreachable++;
      req.socket.destroy();
    });
    req.once('error', drop);
    res.once('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    up.once('response', (upRes) => {
      upRes.once('error', drop);
      res.writeHead(upRes.statusCode ?? 502, endToEnd(upRes.headers));
      const length = Number(upRes.headers['content-length'] ?? 0);
      const fault = this.#draw(req.method ?? '', upRes.statusCode ?? 0, length);
      if (fault === null) {
        pipeline(upRes, res).catch(drop);
        return;
      }
      const at = Math.floor(this.rnd() * length);
      const onReach = (): void => {
        if (fault === 'cut') {
          this.stats.cut++;
          // Let the bytes before the cut leave first, then break the connection.
          setImmediate(drop);
        } else if (fault === 'stall') {
          this.stats.stalled++;
          // The regional's bytes keep arriving and are swallowed; the edge hears nothing more.
          const timer = setTimeout(() => {
            this.#stallTimers.delete(timer);
            drop();
          }, STALL_LIMIT_MS);
          this.#stallTimers.add(timer);
          res.once('close', () => {
            clearTimeout(timer);
            this.#stallTimers.delete(timer);
          });
        }
      };
      if (fault === 'flip') this.stats.flipped++;
      pipeline(upRes, new BodyFault(fault, at, onReach), res).catch(drop);
    });
    pipeline(req, up).catch(drop);
  }

  /** A new fault mode (or none); a short phase still faults at least one transfer. */
  setMode(mode: LinkMode): void {
    this.#mode = mode;
    this.#faultsInMode = 0;
  }

  #draw(method: string, status: number, length: number): LinkFault | null {
    const { faults, rate } = this.#mode;
    if (faults.length === 0 || method !== 'GET' || (status !== 200 && status !== 206)) return null;
    if (length < MIN_FAULT_BODY || (this.#faultsInMode > 0 && this.rnd() >= rate)) return null;
    this.#faultsInMode++;
    // In a mixed phase the first faults take each kind in turn, then the draw decides.
    const i = this.#faultsInMode <= faults.length ? this.#faultsInMode - 1 : Math.floor(this.rnd() * faults.length);
    return faults[i] ?? null;
  }

  async close(): Promise<void> {
    for (const t of this.#stallTimers) clearTimeout(t);
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#agent.destroy();
  }
}
