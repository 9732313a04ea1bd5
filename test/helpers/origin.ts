// A small test origin for the cache's own tests: it serves known blobs to requests with a
// valid redirect token, publishes its JWKS, counts requests, and can be told to pause a
// blob after N bytes (to test late joiners), send wrong bytes, or fail. The full DTR mock
// lives in bench/dtr-mock/; this one exists for precise control.
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { exportJWK, generateKeyPair, jwtVerify, SignJWT, createLocalJWKSet, type JWK, type CryptoKey } from 'jose';
import type { Leaf } from '../../testkit/pki.js';

export interface OriginBlob {
  bytes: Buffer;
  digest: string;
}

export interface Gate {
  /** Bytes sent before the gate holds the stream. */
  after: number;
  open: () => void;
  /** Breaks the held transfer midway (destroys the connection). */
  cut: () => void;
  reached: Promise<void>;
}

interface KeyPair {
  kid: string;
  alg: 'ES256' | 'RS256' | 'EdDSA';
  priv: CryptoKey;
  jwk: JWK;
}

export class TestOrigin {
  readonly blobs = new Map<string, OriginBlob>();
  readonly gets = new Map<string, number>();
  readonly heads = new Map<string, number>();
  readonly ranges: string[] = [];
  readonly corrupt = new Set<string>();
  /** Every GET of these digests is cut after this many body bytes (a tier that keeps breaking). */
  readonly cutAfter = new Map<string, number>();
  /** Every GET of these digests sends this many body bytes, then nothing more (a stalled tier). */
  readonly stallAfter = new Map<string, number>();
  /** Bytes served in place of a blob's own (any length, even empty): an upstream that lies. */
  readonly lies = new Map<string, Buffer>();
  readonly fail503 = new Set<string>();
  /** Digests answered with this status (and headers, and a JSON body) instead of the blob. */
  readonly statusFor = new Map<string, { status: number; headers?: Record<string, string>; body?: unknown }>();
  readonly gates = new Map<string, Gate>();
  /** When set, the JWK Set is answered with this status instead (an origin that fails). */
  jwksStatus: number | null = null;
  /** Request headers seen, newest last (for Via / Authorization checks). */
  readonly seen: Array<{ method: string; path: string; headers: IncomingMessage['headers'] }> = [];
  keys: KeyPair[] = [];
  server!: Server;
  url = '';
  #sockets = new Set<Socket>();
  #kidSerial = 0;

  static async start(tls: Leaf): Promise<TestOrigin> {
    const o = new TestOrigin();
    await o.rotate();
    o.server = createServer({ cert: tls.cert, key: tls.key }, (req, res) => void o.#handle(req, res));
    o.server.on('connection', (s: Socket) => {
      o.#sockets.add(s);
      s.once('close', () => o.#sockets.delete(s));
    });
    await new Promise<void>((r) => o.server.listen(0, '127.0.0.1', r));
    o.url = `https://localhost:${(o.server.address() as AddressInfo).port}`;
    return o;
  }

  add(bytes: Buffer): OriginBlob {
    const blob = { bytes, digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}` };
    this.blobs.set(blob.digest, blob);
    return blob;
  }

  /** Holds the next GET of `digest` after `after` bytes until open() is called. */
  gate(digest: string, after: number): Gate {
    let open!: () => void;
    let reach!: () => void;
    let cutNow = false;
    const opened = new Promise<void>((r) => (open = r));
    const reached = new Promise<void>((r) => (reach = r));
    const gate = {
      after,
      open,
      reached,
      opened,
      reach,
      cut: () => {
        cutNow = true;
        open();
      },
      get cutNow() {
        return cutNow;
      },
    };
    this.gates.set(digest, gate as Gate);
    return gate as Gate;
  }

  /** A new signing key; old keys stay published unless dropOld. */
  async rotate(alg: KeyPair['alg'] = 'ES256', dropOld = false): Promise<KeyPair> {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const kid = `k${++this.#kidSerial}`;
    const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
    const pair = { kid, alg, priv: privateKey, jwk };
    this.keys = dropOld ? [pair] : [...this.keys, pair];
    return pair;
  }

  jwks(): { keys: JWK[] } {
    return { keys: this.keys.map((k) => k.jwk) };
  }

  async mint(
    name: string,
    digest: string,
    opts: { ttlSec?: number; actions?: string[]; key?: KeyPair; exp?: number; sub?: string } = {},
  ): Promise<string> {
    const key = opts.key ?? this.keys[this.keys.length - 1]!;
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ access: [{ type: 'repository', name, actions: opts.actions ?? ['pull'] }], digest })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
      .setIssuer('test-origin')
      .setSubject(opts.sub ?? 'alice')
      .setIssuedAt(now)
      .setNotBefore(now - 1)
      .setExpirationTime(opts.exp ?? now + (opts.ttlSec ?? 300))
      .sign(key.priv);
  }

  count(map: Map<string, number>, digest: string): number {
    return map.get(digest) ?? 0;
  }

  async #authorized(req: IncomingMessage, name: string, digest: string): Promise<boolean> {
    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ')
      ? auth.slice(7)
      : new URL(req.url ?? '/', 'https://x').searchParams.get('token');
    if (!token) return false;
    try {
      const { payload } = await jwtVerify(token, createLocalJWKSet(this.jwks()), { clockTolerance: 60 });
      // As docs/protocol.md §2 reads it (and the cache does): entries that are not repository grants are skipped.
      const access: unknown[] = Array.isArray(payload['access']) ? payload['access'] : [];
      const pulls = (a: unknown): boolean => {
        const e = a as { type?: unknown; name?: unknown; actions?: unknown } | null;
        return (
          typeof e === 'object' &&
          e !== null &&
          e.type === 'repository' &&
          e.name === name &&
          Array.isArray(e.actions) &&
          e.actions.includes('pull')
        );
      };
      return payload['digest'] === digest && access.some(pulls);
    } catch {
      return false;
    }
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'https://x').pathname;
    this.seen.push({ method: req.method ?? '', path, headers: req.headers });
    if (path === '/.well-known/jwks.json') {
      if (this.jwksStatus !== null) {
        res.writeHead(this.jwksStatus).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(this.jwks()));
      return;
    }
    const m = /^\/v2\/(.+)\/blobs\/(sha256:[0-9a-f]{64})$/.exec(path);
    if (!m) {
      res.writeHead(404).end();
      return;
    }
    const [, name, digest] = m as unknown as [string, string, string];
    const counter = req.method === 'HEAD' ? this.heads : this.gets;
    counter.set(digest, (counter.get(digest) ?? 0) + 1);
    if (!(await this.#authorized(req, name, digest))) {
      res
        .writeHead(401, { 'content-type': 'application/json' })
        .end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad token' }] }));
      return;
    }
    const canned = this.statusFor.get(digest);
    if (canned !== undefined) {
      const body = canned.body === undefined ? '' : JSON.stringify(canned.body);
      res.writeHead(canned.status, { 'content-type': 'application/json', ...canned.headers }).end(body);
      return;
    }
    if (this.fail503.has(digest)) {
      res.writeHead(503).end();
      return;
    }
    const blob = this.blobs.get(digest);
    if (!blob) {
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown' }] }));
      return;
    }
    let body =
      this.lies.get(digest) ??
      (this.corrupt.has(digest) ? Buffer.from(blob.bytes).fill(0x61, 0, Math.min(16, blob.bytes.length)) : blob.bytes);
    const range = req.headers.range;
    let status = 200;
    const headers: Record<string, string | number> = {
      'content-type': 'application/octet-stream',
      'docker-content-digest': digest,
    };
    if (range) {
      this.ranges.push(range);
      const rm = /^bytes=(\d+)-$/.exec(range);
      if (rm) {
        const start = Number(rm[1]);
        headers['content-range'] = `bytes ${start}-${body.length - 1}/${body.length}`;
        body = body.subarray(start);
        status = 206;
      }
    }
    headers['content-length'] = body.length;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const gate = this.gates.get(digest) as
      (Gate & { opened: Promise<void>; reach: () => void; cutNow: boolean }) | undefined;
    if (gate) {
      this.gates.delete(digest);
      res.write(body.subarray(0, gate.after));
      gate.reach();
      await gate.opened;
      if (gate.cutNow) res.destroy();
      else res.end(body.subarray(gate.after));
      return;
    }
    const cut = this.cutAfter.get(digest);
    if (cut !== undefined) {
      // The connection ends once these bytes are out.
      res.write(body.subarray(0, cut), () => res.destroy());
      return;
    }
    const stall = this.stallAfter.get(digest);
    if (stall !== undefined) {
      // The connection stays open and silent.
      res.write(body.subarray(0, stall));
      return;
    }
    res.end(body);
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
