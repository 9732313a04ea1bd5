// The floor for misses (`peer-node-relay`): the least work a Node process can do to pass a
// blob from an upstream to a client and verify it on the way. Each request is forwarded
// over a kept-alive TLS connection whose records are decrypted into one reused buffer (no
// HTTP client library), hashed on the main thread as they come, and written to the client
// in 1 MiB writes. Nothing goes to disk, and nothing is kept. A wrong digest resets the
// client's stream. HTTP/1.1 only, one upstream, blobs only.
//   node dist/bench/peers/node-relay.js --cert PEM --key PEM --ca PEM --upstream https://HOST:PORT [--port N]
import { createHash, type Hash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo, OnReadOpts } from 'node:net';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    cert: { type: 'string' },
    key: { type: 'string' },
    ca: { type: 'string' },
    upstream: { type: 'string' },
    port: { type: 'string' },
  },
});
const { cert, key, ca: caPath, upstream: upstreamUrl } = values;
if (cert === undefined || key === undefined || caPath === undefined || upstreamUrl === undefined) {
  process.stderr.write('usage: node-relay.js --cert PEM --key PEM --ca PEM --upstream https://HOST:PORT [--port N]\n');
  process.exit(2);
}
const upstream = new URL(upstreamUrl);
const ca = await readFile(caPath);
const BLOB = /^\/v2\/.+\/blobs\/sha256:([0-9a-f]{64})$/;
const WRITE_SIZE = 1 << 20;
const HEAD = /^HTTP\/1\.1 (\d{3})[^]*?\r\ncontent-length: *(\d+)/i;

/** One relayed response: what the upstream connection's reads are handed to. */
interface Transfer {
  res: ServerResponse;
  hex: string;
  hash: Hash;
  head: Buffer | null;
  left: number;
  out: Buffer;
  filled: number;
}

/** An upstream connection, kept for the next request once its body has ended. */
class Link {
  readonly socket: TLSSocket;
  transfer: Transfer | null = null;

  constructor(onClose: (l: Link) => void) {
    const buffer = Buffer.allocUnsafe(256 << 10);
    // tls.connect takes `onread` (see bench/drivers/raw.ts); @types/node lists it for net only.
    const options: ConnectionOptions & { onread: OnReadOpts } = {
      host: upstream.hostname,
      port: Number(upstream.port),
      servername: 'localhost',
      ALPNProtocols: ['http/1.1'],
      ca,
      onread: { buffer, callback: (n: number) => (this.#received(buffer.subarray(0, n)), true) },
    };
    this.socket = connect(options);
    this.socket.on('error', () => this.#fail());
    this.socket.on('close', () => {
      this.#fail();
      onClose(this);
    });
  }

  send(path: string, t: Transfer): void {
    this.transfer = t;
    this.socket.write(`GET ${path} HTTP/1.1\r\nHost: ${upstream.host}\r\n\r\n`);
  }

  #received(chunk: Buffer): void {
    const t = this.transfer;
    if (t === null) return;
    if (t.left < 0) {
      t.head = t.head === null ? Buffer.from(chunk) : Buffer.concat([t.head, chunk]);
      const end = t.head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const m = HEAD.exec(t.head.subarray(0, end + 2).toString('latin1'));
      if (m?.[1] !== '200') return this.#fail();
      t.left = Number(m[2]);
      t.res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': t.left,
        'docker-content-digest': `sha256:${t.hex}`,
      });
      chunk = t.head.subarray(end + 4);
      t.head = null;
    }
    t.hash.update(chunk);
    t.left -= chunk.length;
    for (let at = 0; at < chunk.length;) {
      const n = chunk.copy(t.out, t.filled, at);
      at += n;
      t.filled += n;
      if (t.filled === WRITE_SIZE || t.left === 0) this.#write(t);
    }
    if (t.left === 0) {
      this.transfer = null;
      // A client that leaves once it has its bytes never drains: the next request must not
      // find this connection paused.
      this.socket.resume();
      if (t.hash.digest('hex') === t.hex) t.res.end();
      else t.res.destroy();
      idle.push(this);
    }
  }

  #write(t: Transfer): void {
    const ok = t.res.write(t.out.subarray(0, t.filled));
    t.out = Buffer.allocUnsafe(WRITE_SIZE);
    t.filled = 0;
    if (!ok) {
      this.socket.pause();
      t.res.once('drain', () => this.socket.resume());
    }
  }

  #fail(): void {
    const t = this.transfer;
    this.transfer = null;
    if (t === null) return;
    if (t.res.headersSent) t.res.destroy();
    else t.res.writeHead(502).end();
    this.socket.destroy();
  }
}

const idle: Link[] = [];
const dropIdle = (l: Link): void => {
  const i = idle.indexOf(l);
  if (i >= 0) idle.splice(i, 1);
};

const server = createServer({ cert: await readFile(cert), key: await readFile(key) }, (req, res) => {
  const url = req.url ?? '';
  const hex = BLOB.exec(url)?.[1];
  if (hex === undefined || req.method !== 'GET') {
    res.writeHead(url === '/v2/' ? 200 : 404).end();
    return;
  }
  const link = idle.pop() ?? new Link(dropIdle);
  const t: Transfer = {
    res,
    hex,
    hash: createHash('sha256'),
    head: null,
    left: -1,
    out: Buffer.allocUnsafe(WRITE_SIZE),
    filled: 0,
  };
  res.on('close', () => {
    if (link.transfer === t) link.socket.destroy();
  });
  link.send(url, t);
});
server.listen(Number(values.port ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ event: 'listening', port: (server.address() as AddressInfo).port })}\n`);
});
const stop = (): void => {
  for (const l of idle) l.socket.destroy();
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
