// The two ways the fuzzer speaks to the cache. HTTP/1.1 is written byte for byte on a
// fresh TLS connection, so a request target or header can hold anything a hostile client
// could send (undici and node:http validate what they send). HTTP/2 goes through one
// node:http2 session, reopened when the server closes it; raw frames are in h2-frames.ts.
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';

export interface Answer {
  status: number;
  /** Lower-case names; repeated fields joined with ", " (only set-cookie repeats in practice). */
  headers: Record<string, string>;
  body: Buffer;
  /** The body ended by a reset or a truncated read instead of a clean end. */
  broken: boolean;
}

export interface WireRequest {
  method: string;
  /** The request target, sent as is. */
  target: string;
  headers: Array<[string, string]>;
}

const DEADLINE_MS = 15_000;

function withDeadline<T>(what: string, p: Promise<T>, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        onTimeout();
        reject(new Error(`no answer within ${DEADLINE_MS} ms: ${what}`));
      }, DEADLINE_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Splits a raw HTTP/1.1 response (one, on a connection we closed after it). */
export function parseH1(raw: Buffer, closedCleanly: boolean): Answer | null {
  // Interim 1xx answers (100 Continue to `Expect`) come first; they have no body (RFC 9110 §15.2).
  while (/^HTTP\/1\.1 1\d\d/.test(raw.subarray(0, 12).toString('latin1'))) {
    const interim = raw.indexOf('\r\n\r\n');
    if (interim < 0) return null;
    raw = raw.subarray(interim + 4);
  }
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.1 (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!m) throw new Error(`not an HTTP/1.1 status line: ${JSON.stringify(lines[0])}`);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`malformed response header line: ${JSON.stringify(line)}`);
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  let body = raw.subarray(end + 4);
  const length = headers['content-length'];
  let broken = !closedCleanly;
  if (length !== undefined) {
    const n = Number(length);
    if (body.length < n) broken = true;
    else body = body.subarray(0, n);
  }
  return { status: Number(m[1]), headers, body, broken };
}

/**
 * One request on its own TLS connection (`Connection: close` is added), read to the end.
 * Null when the server closed the connection without any response.
 */
export function h1Request(
  port: number,
  ca: string,
  req: WireRequest,
  head = req.method === 'HEAD',
): Promise<Answer | null> {
  const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca, ALPNProtocols: ['http/1.1'] });
  const chunks: Buffer[] = [];
  let clean = true;
  const done = new Promise<Answer | null>((resolve, reject) => {
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', () => (clean = false));
    socket.on('close', () => {
      try {
        const answer = parseH1(Buffer.concat(chunks), clean);
        // A HEAD answer has Content-Length but no body.
        if (answer !== null && head) answer.broken = !clean;
        resolve(answer);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  });
  const lines = [`${req.method} ${req.target} HTTP/1.1`, 'Host: localhost'];
  for (const [name, value] of req.headers) lines.push(`${name}: ${value}`);
  lines.push('Connection: close', '', '');
  // No end(): a half-closed connection may be dropped before the answer is written.
  socket.write(Buffer.from(lines.join('\r\n'), 'latin1'));
  return withDeadline(`h1 ${req.method} ${req.target.slice(0, 80)}`, done, () => socket.destroy());
}

/** One HTTP/2 session, reopened after the server closes it (GOAWAY, idle timeout, errors). */
export class H2Client {
  readonly #url: string;
  readonly #ca: string;
  #session: ClientHttp2Session | null = null;

  constructor(url: string, ca: string) {
    this.#url = url;
    this.#ca = ca;
  }

  #open(): ClientHttp2Session {
    if (this.#session !== null && !this.#session.closed && !this.#session.destroyed) return this.#session;
    const session = h2connect(this.#url, { ca: this.#ca });
    session.on('error', () => undefined);
    session.once('close', () => {
      if (this.#session === session) this.#session = null;
    });
    session.once('goaway', () => {
      if (this.#session === session) this.#session = null;
    });
    this.#session = session;
    return session;
  }

  /**
   * Null when the stream closed without a response. Throws synchronously (before sending)
   * when node:http2 refuses a header it considers invalid.
   */
  request(req: WireRequest): Promise<Answer | null> {
    const headers: Record<string, string | string[]> = { ':method': req.method, ':path': req.target };
    for (const [name, value] of req.headers) {
      const key = name.toLowerCase();
      const prev = headers[key];
      headers[key] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value];
    }
    const stream = this.#open().request(headers, { endStream: true });
    const chunks: Buffer[] = [];
    const answer = new Promise<Answer | null>((resolve) => {
      let status = 0;
      const out: Record<string, string> = {};
      stream.on('response', (h) => {
        status = Number(h[':status']);
        for (const [k, v] of Object.entries(h)) if (!k.startsWith(':') && v !== undefined) out[k] = String(v);
      });
      stream.on('data', (d: Buffer) => chunks.push(d));
      let broken = false;
      stream.on('error', () => (broken = true));
      stream.on('close', () => {
        if (status === 0) return resolve(null);
        broken ||= stream.rstCode !== 0;
        resolve({ status, headers: out, body: Buffer.concat(chunks), broken });
      });
    });
    return withDeadline(`h2 ${req.method} ${req.target.slice(0, 80)}`, answer, () => stream.close());
  }

  close(): void {
    this.#session?.destroy();
    this.#session = null;
  }
}
