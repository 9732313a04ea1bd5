// Load driver for large bodies over HTTP/1.1: one keep-alive connection per loop, TLS
// records decrypted straight into one reused buffer (the socket's `onread`), and a minimal
// response parser (status line, Content-Length; a chunked body is an error, no subject
// sends one for a blob).
//   node dist/bench/drivers/raw.js SPEC.json RESULT.json
// Why it exists: on this 2-core machine the client shares the CPU with the server it
// measures. undici spent 2.0 s of CPU per GB received (a Buffer, a stream read and an
// llhttp pass per 16 KiB TLS record), this driver 0.7 s; with 32 clients on a 256 MiB
// blob undici's process sat at 100 % of a core and set the wall time instead of the
// server (bench/README.md, "Load drivers").
import { createHash, type Hash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { connect as connectTcp, type OnReadOpts, type Socket } from 'node:net';
import { connect as connectTls, createSecureContext, type ConnectionOptions, type SecureContext } from 'node:tls';
import { closedLoop, driverMain, judge, type Fetched, type LoadResult, type LoadSpec } from './protocol.js';

const READ_BUFFER = 256 * 1024;
const MAX_HEAD = 64 * 1024;

interface Exchange {
  path: string;
  expect: number;
  started: number;
  /** Response head received so far (latin1: one char per byte). */
  head: string;
  inBody: boolean;
  status: number;
  remaining: number;
  bytes: number;
  ttfb: number;
  keepAlive: boolean;
  hash: Hash | null;
  digest: string | undefined;
  timer: NodeJS.Timeout;
  resolve: (r: Fetched) => void;
}

interface Target {
  host: string;
  port: number;
  /** One TLS context for every connection, as a real client keeps one TLS config; null: plain TCP. */
  tls: SecureContext | null;
}

/** One client: a connection reused for its requests, one request at a time. */
class Client {
  private socket: Socket | null = null;
  private ex: Exchange | null = null;
  private readonly buffer = Buffer.allocUnsafe(READ_BUFFER);

  constructor(
    private readonly target: Target,
    private readonly timeoutMs: number,
  ) {}

  fetch(path: string, expect: number, digest: string | undefined): Promise<Fetched> {
    return new Promise((resolve) => {
      const started = performance.now();
      this.ex = {
        path,
        expect,
        started,
        head: '',
        inBody: false,
        status: 0,
        remaining: 0,
        bytes: 0,
        ttfb: -1,
        keepAlive: true,
        hash: digest === undefined ? null : createHash('sha256'),
        digest,
        resolve,
        timer: setTimeout(() => this.fail(`timeout after ${this.timeoutMs} ms`), this.timeoutMs),
      };
      (this.socket ?? this.open()).write(
        `GET ${path} HTTP/1.1\r\nHost: ${this.target.host}:${this.target.port}\r\nUser-Agent: dtr-cache-bench-raw\r\n\r\n`,
      );
    });
  }

  /** Opens the connection and waits for its handshake (`preconnect`). */
  connect(): Promise<void> {
    const socket = this.open();
    return new Promise((resolve, reject) => {
      socket.once(this.target.tls !== null ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
  }

  private open(): Socket {
    const { host, port, tls } = this.target;
    const onread = { buffer: this.buffer, callback: (n: number, buf: Uint8Array) => this.received(n, buf as Buffer) };
    // tls.connect takes `onread` since Node 15 (nodejs/node#35753); @types/node lists it
    // for net only, hence the variable rather than an object literal.
    const tlsOptions: ConnectionOptions & { onread: OnReadOpts } = {
      host,
      port,
      secureContext: tls ?? undefined,
      servername: host,
      ALPNProtocols: ['http/1.1'],
      onread,
    };
    const socket = tls !== null ? connectTls(tlsOptions) : connectTcp({ host, port, onread });
    // A dropped socket's late events must not touch the next request's exchange.
    socket.on('error', (err) => {
      if (this.socket === socket) this.fail(`${err.name}: ${err.message}`);
    });
    socket.on('close', () => {
      if (this.socket === socket) this.fail('connection closed');
    });
    this.socket = socket;
    return socket;
  }

  private received(n: number, buf: Buffer): boolean {
    const ex = this.ex;
    if (ex === null) {
      this.drop();
      return false;
    }
    let off = 0;
    if (!ex.inBody) {
      ex.head += buf.toString('latin1', 0, n);
      const end = ex.head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (ex.head.length > MAX_HEAD) this.fail('response head over 64 KiB');
        return true;
      }
      off = n - (ex.head.length - (end + 4));
      const problem = this.parseHead(ex, ex.head.slice(0, end));
      if (problem !== null) {
        this.fail(problem);
        return false;
      }
    }
    const take = Math.min(n - off, ex.remaining);
    if (take > 0) {
      if (ex.ttfb < 0) ex.ttfb = performance.now() - ex.started;
      ex.bytes += take;
      ex.remaining -= take;
      ex.hash?.update(buf.subarray(off, off + take));
    }
    if (off + take < n) {
      this.fail(`${n - off - take} bytes past the response's Content-Length`);
      return false;
    }
    if (ex.remaining === 0) this.finish(ex);
    return true;
  }

  /** Reads status and framing from the head; returns what is wrong with it, or null. */
  private parseHead(ex: Exchange, head: string): string | null {
    const status = /^HTTP\/1\.([01]) (\d{3})/.exec(head);
    if (status === null) return `not an HTTP/1.1 response: ${JSON.stringify(head.slice(0, 40))}`;
    ex.status = Number(status[2]);
    if (/\r\ntransfer-encoding:/i.test(head)) return 'chunked response (this driver reads Content-Length bodies only)';
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (length === null) return `status ${ex.status} without Content-Length`;
    ex.remaining = Number(length[1]);
    // HTTP/1.1 keeps the connection unless told otherwise; HTTP/1.0 closes unless told otherwise.
    ex.keepAlive =
      status[1] === '1' ? !/\r\nconnection: *close/i.test(head) : /\r\nconnection: *keep-alive/i.test(head);
    ex.inBody = true;
    ex.head = '';
    return null;
  }

  private finish(ex: Exchange): void {
    clearTimeout(ex.timer);
    this.ex = null;
    let r = judge(ex.path, ex.status, ex.bytes, ex.expect, ex.ttfb);
    if (r.ok && ex.hash !== null && `sha256:${ex.hash.digest('hex')}` !== ex.digest) {
      r = { ok: false, bytes: ex.bytes, ttfb: ex.ttfb, error: `digest mismatch for ${ex.path.split('?')[0]}` };
    }
    if (!ex.keepAlive || !r.ok) this.drop();
    ex.resolve(r);
  }

  private fail(why: string): void {
    const ex = this.ex;
    this.drop();
    if (ex === null) return;
    clearTimeout(ex.timer);
    this.ex = null;
    ex.resolve({
      ok: false,
      bytes: ex.bytes,
      ttfb: ex.ttfb,
      error: `${why} (${ex.bytes} body bytes of ${ex.path.split('?')[0]})`,
    });
  }

  private drop(): void {
    const s = this.socket;
    this.socket = null;
    s?.destroy();
  }

  close(): void {
    this.drop();
  }
}

export async function runRaw(spec: LoadSpec): Promise<LoadResult> {
  if (spec.proto !== 'h1') throw new Error('the raw driver speaks HTTP/1.1 only');
  const url = new URL(spec.origin);
  const secure = url.protocol === 'https:';
  // A context per connection (tls.connect with `ca`) parsed the CA and built an SSL_CTX
  // for each of the stampede's 32 handshakes: the first completed only after ~80 ms.
  const target: Target = {
    host: url.hostname,
    port: Number(url.port || (secure ? 443 : 80)),
    tls: secure ? createSecureContext({ ca: await readFile(spec.caPath, 'utf8') }) : null,
  };
  const clients = Array.from({ length: spec.concurrency }, () => new Client(target, spec.requestTimeoutMs));
  // Connections and handshakes before the clock starts: a fresh driver process's first
  // handshake runs cold code and cost tens of ms here, which would be timed as the server's.
  if (spec.preconnect === true) await Promise.all(clients.map((c) => c.connect()));
  // The first response of each path is hashed: bytes are checked, not only counted, at
  // the cost of one hash per distinct blob.
  const hashed = new Set<number>();
  const result = await closedLoop(spec, async (loop, i) => {
    const digest = hashed.has(i) ? undefined : spec.digests?.[i];
    hashed.add(i);
    const r = await (clients[loop] as Client).fetch(spec.paths[i] ?? '/', spec.sizes[i] ?? -1, digest);
    // A hashed request that failed before its end checked nothing: the next one hashes.
    if (digest !== undefined && !r.ok && !(r.error ?? '').startsWith('digest mismatch')) hashed.delete(i);
    return r;
  });
  for (const c of clients) c.close();
  return result;
}

driverMain('raw', runRaw);
