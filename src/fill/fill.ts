// One fill: one upstream fetch of one blob, written through a worker to the spool and
// read by every waiting client as it grows (DESIGN.md "Data flow"). The fill goes on when
// clients leave; it is published only when the worker has verified size and digest.
import { open, type FileHandle } from 'node:fs/promises';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { Logger } from 'pino';
import { RegistryError } from '../errors/registry.js';
import { gatewayError } from '../errors/upstream.js';
import type { WorkerPool } from '../pool.js';
import type { BlobStore } from '../store/blob-store.js';
import type { Digest } from '../store/digest.js';
import {
  claimSpool,
  claimTakeover,
  recordSpoolOwner,
  removeOwner,
  removeSpool,
  SPOOL_STALE_MS,
  THIS_PROCESS,
  type SpoolClaim,
  type SpoolOwner,
} from '../store/spool.js';
import { discardBody, type UpstreamChain, type UpstreamResponse } from '../upstream/chain.js';
import type { SpoolProgress, SpoolResult } from '../../workers/types.js';
import { follow, followerSize, type FollowOptions } from './follow.js';
import { MemoryTail } from './memory-tail.js';
import { Signal } from './signal.js';
import type { BlobSource } from './source.js';
import { expectFullBody, expectResumeBody, spoolFailure } from './upstream-response.js';

/**
 * Bytes between upstream and disk: the ring shared with the worker. Upstream chunks wait in
 * `pending` (references, no copy) while the ring is full; past RING_SIZE of them, the
 * upstream body is paused (DESIGN.md: backpressure runs upstream ← worker).
 */
const RING_SIZE = 4 << 20;
/** With the disk full, bytes stream through memory: at most this much per fill. */
const TAIL_LIMIT = 16 << 20;
const DISK_FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);
/** Resumes after a transfer breaks midway, across all hosts, before the fill gives up. */
const MAX_RESUMES = 8;

export interface FillDeps {
  chain: UpstreamChain;
  pool: WorkerPool;
  store: BlobStore;
  log: Logger;
  /** After a blob is published (eviction checks the size cap here). */
  onPublished?: (digest: Digest, size: number) => void;
  /** Observers (metrics); `upstreamBytes` runs per chunk, so both must be cheap. */
  hooks?: FillHooks;
  /** Shared by all fills, so a full disk is logged once per episode, not per fill or chunk. */
  disk: { full: boolean };
}

export interface FillHooks {
  upstreamBytes(host: string, bytes: number): void;
  /** Once per fill: 'published', or the failure ('digest-mismatch', 'size-mismatch', 'aborted', 'io', 'upstream'). */
  settled(s: { result: string; size: number; joins: number }): void;
}

export interface FillClient {
  token: string;
  /** The token's `exp`, seconds since epoch: the newest is used for retries. */
  exp: number;
}

function sameProcess(owner: SpoolOwner | null): boolean {
  return (
    owner !== null &&
    owner.host === THIS_PROCESS.host &&
    owner.pid === THIS_PROCESS.pid &&
    owner.startedAt === THIS_PROCESS.startedAt
  );
}

export class Fill {
  readonly digest: Digest;
  readonly name: string;
  readonly via: string | undefined;
  /** Resolves with the blob size once upstream headers arrived and the spool exists. */
  readonly ready: Promise<number>;
  /** Resolves true when published, false when the fill failed. */
  readonly settled: Promise<boolean>;
  /** Clients that joined after the first; each is an upstream download saved. */
  joins = 0;
  upstreamHost: string | null = null;

  #deps: FillDeps;
  #size = 0;
  /** Bytes on disk in the spool. */
  #written = 0;
  /** Bytes the worker is done with (written, or only hashed after a write failure): frees the ring. */
  #acked = 0;
  #sent = 0;
  #received = 0;
  #verified = false;
  #failure: Error | null = null;
  #reader: FileHandle | null = null;
  #refs = 1;
  #progress = new Signal();
  #clients = new Set<FillClient>();
  #firstClient: FillClient;
  #port: MessagePort | null = null;
  #ring = new SharedArrayBuffer(RING_SIZE);
  #ringView = Buffer.from(this.#ring);
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #flushScheduled = false;
  #pausedBody: UpstreamResponse['body'] | null = null;
  /** Set when the disk failed: bytes from tail.start on stream through memory, uncached. */
  #tail: MemoryTail | null = null;
  /** Each reader's next offset, so the memory tail is dropped only behind the slowest. */
  #positions = new Map<FillClient, number>();
  #body: UpstreamResponse['body'] | null = null;
  #workerLost = false;
  #resolveReady!: (size: number) => void;
  #rejectReady!: (err: Error) => void;

  constructor(deps: FillDeps, name: string, digest: Digest, client: FillClient, via: string | undefined) {
    this.#deps = deps;
    this.name = name;
    this.digest = digest;
    this.via = via;
    this.#firstClient = client;
    this.ready = new Promise<number>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    // Every client awaits `ready`; when all have gone, nobody does, and that is fine.
    this.ready.catch(() => undefined);
    this.settled = this.#run();
  }

  get size(): number {
    return this.#size;
  }

  get waiters(): number {
    return this.#clients.size;
  }

  /** A fill streaming through memory (disk full) cannot serve late joiners from offset 0. */
  get joinable(): boolean {
    return this.#tail === null;
  }

  /** A client joins: it gets a source that reads the spool from any offset. */
  async attach(client: FillClient): Promise<BlobSource> {
    this.#clients.add(client);
    try {
      await this.ready;
    } catch (err) {
      this.#clients.delete(client);
      throw err;
    }
    this.#refs++;
    this.#positions.set(client, 0);
    let released = false;
    return {
      size: this.#size,
      read: async (buf, position, length) => {
        const got = await this.#readAt(buf, position, length);
        this.#positions.set(client, position + got);
        this.#trimTail();
        return got;
      },
      startingAt: (position) => {
        if ((this.#positions.get(client) ?? 0) >= position) return;
        this.#positions.set(client, position);
        this.#trimTail();
      },
      available: () => this.#available(),
      failure: () => this.#failure,
      waitForMore: () => this.#progress.wait(),
      release: async () => {
        if (released) return;
        released = true;
        this.#clients.delete(client);
        this.#positions.delete(client);
        this.#trimTail();
        if (this.#tail !== null && this.#clients.size === 0 && !this.#verified) {
          // Nobody is left to stream to, and nothing can be stored: stop downloading.
          this.#body?.destroy(new Error('every client left a fill that cannot be stored'));
        }
        await this.#unref();
      },
    };
  }

  /** The last byte is held back until the digest verifies, so no client can end cleanly on bad bytes. */
  #available(): number {
    if (this.#verified) return this.#size;
    const arrived = this.#tail === null ? this.#written : this.#received;
    return Math.max(0, Math.min(arrived, this.#size - 1));
  }

  /** Reads from the spool below what is on disk, from the memory tail above it. */
  async #readAt(buf: Buffer, position: number, length: number): Promise<number> {
    if (position < this.#written && this.#reader !== null) {
      const n = Math.min(length, this.#written - position);
      return (await this.#reader.read(buf, 0, n, position)).bytesRead;
    }
    return this.#tail?.read(buf, position, length) ?? 0;
  }

  #trimTail(): void {
    const tail = this.#tail;
    if (tail === null) return;
    let slowest = this.#received;
    for (const pos of this.#positions.values()) slowest = Math.min(slowest, pos);
    tail.trim(slowest);
    this.#maybeResume();
  }

  #maybeResume(): void {
    if (this.#pausedBody === null) return;
    if (this.#pendingBytes < RING_SIZE / 2 && (this.#tail === null || this.#tail.bytes < TAIL_LIMIT / 2)) {
      this.#pausedBody.resume();
      this.#pausedBody = null;
    }
  }

  /** The newest token among the clients still waiting (PROTOCOL §3: a retry outlives the first token). */
  #bestToken(): string {
    let best = this.#firstClient;
    for (const c of this.#clients) if (c.exp > best.exp) best = c;
    return best.token;
  }

  async #run(): Promise<boolean> {
    const started = Date.now();
    let result: SpoolResult | null = null;
    let unownedSpool: string | null = null;
    let first: UpstreamResponse | null = null;
    try {
      // The spool is claimed before upstream is asked: when a replica sharing the root is
      // already filling this blob, we follow its spool and make no upstream request at all.
      let claim = await this.#claim();
      let startOffset = 0;
      while (claim.kind === 'exists') {
        const followed = await this.#followReplica(claim.path);
        if (followed === 'published') return this.#publishedByReplica(started);
        if (followed === 'reclaim') {
          claim = await this.#claim();
          continue;
        }
        startOffset = followed.offset;
        claim = { kind: 'taken-over', path: claim.path };
      }
      if (claim.kind === 'created') this.#reader = claim.reader;
      const spoolPath = claim.kind === 'none' ? null : claim.path;

      // Ours until the worker task owns it: removed if we fail before that, or the next
      // request for this digest would follow a spool nobody writes.
      unownedSpool = spoolPath;
      // A taken-over spool may hold every byte already (its writer died before the rename):
      // then there is nothing to ask upstream for, only the verification.
      const complete = startOffset > 0 && startOffset === this.#size;
      let skip = 0;
      if (!complete) {
        first = await this.#deps.chain.request({
          method: 'GET',
          name: this.name,
          digest: this.digest.value,
          token: this.#bestToken(),
          via: this.via,
          offset: startOffset,
        });
        if (startOffset === 0) {
          this.#size = await expectFullBody(first);
          if (spoolPath !== null) await recordSpoolOwner(spoolPath, this.#size);
        } else {
          skip = await expectResumeBody(first, startOffset, this.#size);
        }
        this.upstreamHost = first.host.url;
      }
      const size = this.#size;
      this.#received = this.#sent = this.#acked = this.#written = startOffset;
      const { port1, port2 } = new MessageChannel();
      this.#port = port1;
      port1.on('message', (msg: SpoolProgress) => this.#onProgress(msg));
      // Refused synchronously by a full worker queue (429): the catch below cleans up.
      const spooled = this.#deps.pool
        .spool({
          spoolPath,
          finalPath: this.#deps.store.layout.blobData(this.digest),
          algorithm: this.digest.algorithm,
          expectedHex: this.digest.hex,
          startOffset,
          ring: this.#ring,
          port: port2,
        })
        .catch((err: unknown): SpoolResult => {
          // A lost worker (crash, pool closed) must fail the fill, not the process, and must
          // wake whatever waits for its progress.
          this.#workerLost = true;
          this.#progress.notify();
          return {
            ok: false,
            reason: 'io',
            code: 'EWORKER',
            message: err instanceof Error ? err.message : String(err),
          };
        });
      unownedSpool = null;
      this.#resolveReady(size);
      let downloadError: unknown = null;
      try {
        if (first !== null) await this.#download(first, skip);
        await this.#flushAll();
        port1.postMessage({ type: 'end', expectedSize: size });
      } catch (err) {
        downloadError = err;
        port1.postMessage({ type: 'abort' });
      }
      result = await spooled;
      // Only now: until the worker renamed or removed the data, the owner file says it is live.
      if (spoolPath !== null) await removeOwner(spoolPath).catch(() => undefined);
      if (downloadError !== null) throw downloadError;
      if (!result.ok && result.reason === 'not-stored' && result.digestMatches) {
        // The disk failed, but every byte streamed through and the digest holds: the
        // clients complete; nothing is published.
        this.#verified = true;
        this.#progress.notify();
        this.#deps.log.warn(
          { digest: this.digest.value, size, code: result.code, ms: Date.now() - started },
          'fill streamed through without caching',
        );
        this.#deps.hooks?.settled({ result: 'not-stored', size, joins: this.joins });
        return false;
      }
      if (!result.ok) throw spoolFailure(result);
      if (this.#deps.disk.full) {
        this.#deps.disk.full = false;
        this.#deps.log.info({ digest: this.digest.value }, 'disk has room again: caching resumed');
      }
      this.#deps.store.add(this.digest, size);
      this.#deps.onPublished?.(this.digest, size);
      this.#verified = true;
      this.#written = size;
      this.#progress.notify();
      this.#deps.log.info(
        { digest: this.digest.value, size, upstream: this.upstreamHost, joins: this.joins, ms: Date.now() - started },
        'fill published',
      );
      this.#deps.hooks?.settled({ result: 'published', size, joins: this.joins });
      return true;
    } catch (err) {
      if (first !== null) discardBody(first.body);
      if (unownedSpool !== null) await removeSpool(unownedSpool).catch(() => undefined);
      const error = err instanceof Error ? err : new Error(String(err));
      this.#failure = error;
      this.#rejectReady(error);
      this.#progress.notify();
      const level = err instanceof RegistryError && err.status < 500 ? 'info' : 'error';
      this.#deps.log[level](
        { digest: this.digest.value, err: error.message, reason: result && !result.ok ? result.reason : undefined },
        'fill failed',
      );
      this.#deps.hooks?.settled({
        result: result && !result.ok ? result.reason : 'upstream',
        size: this.#size,
        joins: this.joins,
      });
      return false;
    } finally {
      this.#port?.close();
      this.#port = null;
      await this.#unref();
    }
  }

  /**
   * Follows a replica's fill of this blob through its spool. Returns 'published' when the
   * replica published it, the offset to continue from when we took over a dead writer's
   * spool, or 'reclaim' when a writer died before it knew the size (its spool is removed).
   */
  async #followReplica(spoolPath: string): Promise<'published' | 'reclaim' | { offset: number }> {
    const opts: FollowOptions = {
      spoolPath,
      finalPath: this.#deps.store.layout.blobData(this.digest),
      staleMs: SPOOL_STALE_MS,
      onGrow: (bytes) => {
        this.#received = this.#sent = this.#acked = this.#written = bytes;
        this.#progress.notify();
      },
      abandoned: () => this.#clients.size === 0,
    };
    const size = await followerSize(opts);
    if (size === null) {
      await removeSpool(spoolPath);
      return 'reclaim';
    }
    try {
      this.#reader = await open(spoolPath, 'r');
    } catch {
      // Renamed into place between the claim and the open.
      this.#reader = await open(opts.finalPath, 'r');
      this.#size = size;
      return 'published';
    }
    this.#size = size;
    this.#resolveReady(size);
    this.#deps.log.info({ digest: this.digest.value, size }, "following a replica's fill of this blob");
    for (;;) {
      const outcome = await follow(this.#reader, size, opts);
      if (outcome.kind === 'published') return 'published';
      if (outcome.kind === 'failed')
        throw gatewayError('status', 'the replica filling this blob failed or was abandoned');
      if (await claimTakeover(spoolPath, size, SPOOL_STALE_MS)) {
        this.#deps.log.warn(
          { digest: this.digest.value, offset: outcome.offset, size },
          'took over the spool of a dead writer',
        );
        return { offset: outcome.offset };
      }
    }
  }

  #publishedByReplica(started: number): boolean {
    this.#deps.store.add(this.digest, this.#size);
    this.#written = this.#size;
    this.#verified = true;
    this.#resolveReady(this.#size);
    this.#progress.notify();
    this.#deps.log.info(
      { digest: this.digest.value, size: this.#size, ms: Date.now() - started },
      'replica published the blob we followed',
    );
    this.#deps.hooks?.settled({ result: 'published-by-replica', size: this.#size, joins: this.joins });
    return true;
  }

  /** The spool, or, when the disk cannot take even an empty file, none: stream through memory. */
  async #claim(): Promise<SpoolClaim | { kind: 'none' } | { kind: 'taken-over'; path: string }> {
    try {
      const claim = await claimSpool(this.#deps.store.layout, this.digest);
      // Our own process's spool belongs to a fill that is not joinable: one streaming
      // through memory because the disk failed. Following it would stall where its disk
      // writes stopped, so this fill streams through memory too.
      if (claim.kind === 'exists' && sameProcess(claim.owner)) {
        this.#tail = new MemoryTail(0);
        return { kind: 'none' };
      }
      return claim;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (!DISK_FULL_CODES.has(code)) throw err;
      this.#diskFailed(code, 0);
      return { kind: 'none' };
    }
  }

  /** Switches to streaming through memory from `offset` (the first byte not on disk). */
  #diskFailed(code: string, offset: number): void {
    const tail = new MemoryTail(offset);
    // Bytes already handed to the worker but not on disk are still in the ring: copy them out.
    for (let at = offset; at < this.#sent;) {
      const ringAt = at % RING_SIZE;
      const n = Math.min(this.#sent - at, RING_SIZE - ringAt);
      tail.push(Buffer.from(this.#ringView.subarray(ringAt, ringAt + n)));
      at += n;
    }
    for (const chunk of this.#pending) tail.push(chunk);
    this.#tail = tail;
    if (DISK_FULL_CODES.has(code) && !this.#deps.disk.full) {
      this.#deps.disk.full = true;
      this.#deps.log.error(
        { code, digest: this.digest.value },
        'disk full: blobs stream through to clients without caching until space returns',
      );
    } else if (!DISK_FULL_CODES.has(code)) {
      this.#deps.log.error(
        { code, digest: this.digest.value },
        'spool write failed: streaming this blob through without caching',
      );
    }
  }

  /**
   * Streams the upstream body into the worker. A transfer that breaks midway is resumed
   * from the next host with `Range: bytes=<received>-`; the bytes already received stay.
   */
  async #download(first: UpstreamResponse, firstSkip: number): Promise<void> {
    let res = first;
    let skip = firstSkip;
    for (let resumes = 0; ; resumes++) {
      try {
        await this.#pump(res, skip);
        if (this.#received === this.#size) return;
        throw new Error(`upstream ended early at ${this.#received} of ${this.#size} bytes`);
      } catch (err) {
        discardBody(res.body);
        // Streaming through memory (disk full) with nobody left to stream to: stop, do not resume.
        if (this.#tail !== null && this.#clients.size === 0) throw err;
        res.host.recordFailure(`body: ${err instanceof Error ? err.message : String(err)}`);
        if (resumes >= MAX_RESUMES) throw gatewayError('reset', 'upstream transfer kept breaking', err);
        this.#deps.log.warn(
          { digest: this.digest.value, upstream: res.host.url, offset: this.#received, err: String(err) },
          'upstream transfer broke, resuming',
        );
      }
      res = await this.#deps.chain.request({
        method: 'GET',
        name: this.name,
        digest: this.digest.value,
        token: this.#bestToken(),
        via: this.via,
        offset: this.#received,
      });
      skip = await expectResumeBody(res, this.#received, this.#size);
      this.upstreamHost = res.host.url;
    }
  }

  #pump(res: UpstreamResponse, skip: number): Promise<void> {
    const body = res.body;
    this.#body = body;
    let toSkip = skip;
    return new Promise<void>((resolve, reject) => {
      body.on('data', (chunk: Buffer) => {
        let data = chunk;
        if (toSkip > 0) {
          const n = Math.min(toSkip, data.length);
          toSkip -= n;
          data = data.subarray(n);
          if (data.length === 0) return;
        }
        if (this.#received + data.length > this.#size) {
          body.destroy(new Error('upstream sent more bytes than its Content-Length'));
          return;
        }
        this.#received += data.length;
        this.#deps.hooks?.upstreamBytes(res.host.url, data.length);
        this.#pending.push(data);
        this.#pendingBytes += data.length;
        this.#scheduleFlush();
        if (this.#tail !== null) {
          this.#tail.push(data);
          // Bytes every reader is already past (a Range client waiting further on) go at once:
          // trimming only when readers read would let them fill the tail and pause us for good.
          this.#trimTail();
          this.#progress.notify();
        }
        if (this.#pendingBytes > RING_SIZE || (this.#tail !== null && this.#tail.bytes > TAIL_LIMIT)) {
          body.pause();
          this.#pausedBody = body;
        }
      });
      body.once('end', resolve);
      body.once('error', reject);
      body.once('close', () => reject(new Error('upstream body closed early')));
    });
  }

  /** Coalesces the chunks of one event-loop turn into one ring region (one message). */
  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  /**
   * Copies pending bytes into the free part of the ring and names each contiguous region
   * to the worker. The worker reports `written` offsets, which free the ring again.
   */
  #flush(): void {
    const port = this.#port;
    if (port === null) return;
    while (this.#pendingBytes > 0) {
      const free = RING_SIZE - (this.#sent - this.#acked);
      if (free === 0) return;
      const at = this.#sent % RING_SIZE;
      const room = Math.min(free, RING_SIZE - at);
      let length = 0;
      while (length < room && this.#pending.length > 0) {
        const chunk = this.#pending[0]!;
        const n = Math.min(chunk.length, room - length);
        chunk.copy(this.#ringView, at + length, 0, n);
        length += n;
        if (n === chunk.length) this.#pending.shift();
        else this.#pending[0] = chunk.subarray(n);
      }
      this.#pendingBytes -= length;
      this.#sent += length;
      port.postMessage({ type: 'chunk', at, length });
    }
  }

  /** Waits until every received byte is in the ring (before `end`). */
  async #flushAll(): Promise<void> {
    for (;;) {
      this.#flush();
      if (this.#pendingBytes === 0) return;
      await this.#progress.wait();
      if (this.#workerLost) throw new Error('the spool worker was lost');
    }
  }

  #onProgress(msg: SpoolProgress): void {
    if (msg.type === 'write-failed') {
      this.#diskFailed(msg.code, msg.offset);
      return;
    }
    this.#acked = msg.offset;
    if (msg.type === 'written') this.#written = msg.offset;
    this.#progress.notify();
    if (this.#pendingBytes > 0) this.#flush();
    this.#maybeResume();
  }

  async #unref(): Promise<void> {
    if (--this.#refs === 0 && this.#reader !== null) {
      const reader = this.#reader;
      this.#reader = null;
      await reader.close().catch(() => undefined);
    }
  }
}
