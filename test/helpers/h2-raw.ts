// A raw HTTP/2 client (RFC 9113) for hostile-client tests: it writes frames itself, so it
// can do what well-behaved clients (node:http2, undici) refuse to: ignore the peer's
// SETTINGS_MAX_CONCURRENT_STREAMS, or open and cancel streams in a tight loop (the
// CVE-2023-44487 "rapid reset" pattern). Header blocks use only HPACK static-table
// indices and literals without indexing (RFC 7541 §6.1, §6.2.2), so no encoder state.
import { connect as netConnect } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
export const H2_CANCEL = 0x8;

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

export interface RawFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

/** RFC 7541 §5.1 integer with an N-bit prefix; `first` holds the bits above the prefix. */
function hpackInt(value: number, prefixBits: number, first: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

/** RFC 7541 §5.2 string literal, without Huffman coding. */
export function hpackString(s: string): Buffer {
  const bytes = Buffer.from(s);
  return Buffer.concat([hpackInt(bytes.length, 7, 0), bytes]);
}

/** A GET header block: static :method GET and :scheme https, literal :authority and :path, extras. */
export function getHeaderBlock(authority: string, path: string, extra: Array<[string, string]> = []): Buffer {
  const parts = [
    Buffer.from([0x82, 0x87]),
    hpackInt(1, 4, 0x00),
    hpackString(authority), // :authority, literal without indexing (name index 1)
    hpackInt(4, 4, 0x00),
    hpackString(path), // :path (name index 4)
  ];
  for (const [name, value] of extra) parts.push(Buffer.from([0x00]), hpackString(name), hpackString(value));
  return Buffer.concat(parts);
}

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

export function rstStream(streamId: number, code = H2_CANCEL): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code, 0);
  return frame(FRAME.RST_STREAM, 0, streamId, p);
}

export function headersFrame(streamId: number, block: Buffer, endStream: boolean): Buffer {
  return frame(FRAME.HEADERS, FLAG.END_HEADERS | (endStream ? FLAG.END_STREAM : 0), streamId, block);
}

/** A raw session over TLS with ALPN h2: it ACKs the server's SETTINGS and PINGs and records every frame. */
export class RawH2 {
  readonly socket: TLSSocket;
  readonly frames: RawFrame[] = [];
  goaway: { lastStreamId: number; code: number } | null = null;
  closed = false;
  #buf: Buffer = Buffer.alloc(0);
  #nextId = 1;

  private constructor(socket: TLSSocket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => this.#onData(d));
    socket.on('error', () => undefined);
    socket.on('close', () => (this.closed = true));
  }

  static open(port: number, ca: string, opts: { localAddress?: string } = {}): Promise<RawH2> {
    return new Promise((resolve, reject) => {
      const tcp = netConnect({
        host: '127.0.0.1',
        port,
        ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }),
      });
      tcp.once('error', reject);
      const socket = connect({ socket: tcp, servername: 'localhost', ca, ALPNProtocols: ['h2'] }, () => {
        if (socket.alpnProtocol !== 'h2') return reject(new Error(`ALPN gave ${String(socket.alpnProtocol)}`));
        socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
        resolve(new RawH2(socket));
      });
      socket.once('error', reject);
    });
  }

  /** The next client stream id (odd, increasing). */
  nextStream(): number {
    const id = this.#nextId;
    this.#nextId += 2;
    return id;
  }

  write(buf: Buffer): boolean {
    return this.socket.write(buf);
  }

  /** Responses (HEADERS frames from the server) per stream id. */
  responded(): Set<number> {
    return new Set(this.frames.filter((f) => f.type === FRAME.HEADERS).map((f) => f.streamId));
  }

  resets(): Array<{ streamId: number; code: number }> {
    return this.frames
      .filter((f) => f.type === FRAME.RST_STREAM)
      .map((f) => ({ streamId: f.streamId, code: f.payload.readUInt32BE(0) }));
  }

  destroy(): void {
    this.socket.destroy();
  }

  #onData(d: Buffer): void {
    this.#buf = this.#buf.length === 0 ? d : Buffer.concat([this.#buf, d]);
    while (this.#buf.length >= 9) {
      const length = this.#buf.readUIntBE(0, 3);
      if (this.#buf.length < 9 + length) return;
      const f: RawFrame = {
        type: this.#buf[3]!,
        flags: this.#buf[4]!,
        streamId: this.#buf.readUInt32BE(5) & 0x7fffffff,
        payload: Buffer.from(this.#buf.subarray(9, 9 + length)),
      };
      this.#buf = this.#buf.subarray(9 + length);
      this.frames.push(f);
      if (f.type === FRAME.SETTINGS && (f.flags & FLAG.ACK) === 0)
        this.socket.write(frame(FRAME.SETTINGS, FLAG.ACK, 0));
      if (f.type === FRAME.PING && (f.flags & FLAG.ACK) === 0)
        this.socket.write(frame(FRAME.PING, FLAG.ACK, 0, f.payload));
      if (f.type === FRAME.GOAWAY)
        this.goaway = { lastStreamId: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4) };
    }
  }
}
