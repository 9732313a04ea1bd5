// One fill: one upstream fetch of one blob, streamed to every client that asks for it while
// it arrives, verified, then kept (docs/architecture.md, "The miss path"). Clients read the
// fill's recent bytes from memory and older ones from its data file; the digest verdict
// releases every client's last byte; the fsync and the publication follow, off their path.
// The fill goes on when clients leave. This file is the state machine; the pieces it drives
// are the download (download.ts), the ring to the worker (ring.ts, stream-store.ts), small
// blobs (small-blob.ts), a replica's spool (replica.ts) and the readers (readers.ts).
import { open, type FileHandle } from 'node:fs/promises';
import type { Logger } from 'pino';
import { RegistryError } from '../errors/registry.js';
import { DtrCacheError } from '../errors/base.js';
import { errnoCode, messageOf } from '../errors/inspect.js';
import { gatewayError } from '../errors/upstream.js';
import type { WorkerPool } from '../pool.js';
import type { BlobStore } from '../store/blob-store.js';
import type { Digest } from '../store/digest.js';
import { isThisProcess, type OwnedSpool, type SpoolDir } from '../store/spool.js';
import type { SpoolResult } from '../../workers/types.js';
import { Download, type ByteSink } from './download.js';
import type { BlobFetch } from './fetch.js';
import { spoolFailure, type FillOutcome } from './outcome.js';
import { Readers, type FillBytes, type FillClient } from './readers.js';
import { ReplicaFollower } from './replica.js';
import { SpoolRing } from './ring.js';
import { Signal } from './signal.js';
import { SMALL_BLOB_MAX, SmallBody, storeSmall } from './small-blob.js';
import type { BlobSource } from './source.js';
import { StreamStore } from './stream-store.js';

/** Bytes in flight between upstream and the worker, per fill (the ring). */
const RING_SIZE = 4 << 20;
const DISK_FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);
/** How long a host that sent bytes failing the digest check stays at the back of the order. */
const BAD_BYTES_PENALTY_MS = 5 * 60_000;

export interface FillDeps {
  pool: WorkerPool;
  store: BlobStore;
  spools: SpoolDir;
  log: Logger;
  /** After a blob is published (eviction checks the size cap here). */
  onPublished?: (digest: Digest, size: number) => void;
  /** A write met a full disk (eviction empties its trash). */
  onDiskFull?: () => void;
  /** Observers (metrics); `upstreamBytes` runs per chunk, so both must be cheap. */
  hooks?: FillHooks;
  /** Shared by all fills, so a full disk is logged once per episode, not per fill or chunk. */
  disk: { full: boolean };
  /** A fault-injection hook for tests: the worker waits this long between verdict and fsync. */
  publishDelayMs?: number;
}

export interface FillHooks {
  upstreamBytes(host: string, bytes: number): void;
  settled(s: { outcome: FillOutcome; size: number; joins: number }): void;
}

type Claim = { kind: 'owned'; spool: OwnedSpool } | { kind: 'none' } | { kind: 'replica'; follower: ReplicaFollower };

/**
 * A failure with its outcome: `error` is what clients get (a registry error, as a rule),
 * the outcome what is counted and logged.
 */
class FillFailure extends DtrCacheError<'FILL_FAILED'> {
  readonly outcome: FillOutcome;
  readonly error: Error;
  constructor(outcome: FillOutcome, cause: unknown) {
    super('FILL_FAILED', messageOf(cause), { cause });
    this.outcome = outcome;
    this.error = cause instanceof Error ? cause : this;
  }
}

export class Fill implements FillBytes {
  readonly digest: Digest;
  readonly name: string;
  /** Resolves with the blob size once its headers are known (clients then send theirs). */
  readonly ready: Promise<number>;
  /** Resolves true when the blob is published, false otherwise. */
  readonly settled: Promise<boolean>;
  readonly progress = new Signal();
  /** Clients that joined after the first; each is an upstream download saved. */
  joins = 0;

  readonly #deps: FillDeps;
  readonly #fetch: BlobFetch;
  readonly #first: FillClient;
  readonly #readers: Readers;
  #size = 0;
  #verified = false;
  #failure: Error | null = null;
  #bytes: Pick<FillBytes, 'arrived' | 'read'> | null = null;
  #stream: StreamStore | null = null;
  #download: Download | null = null;
  #spool: OwnedSpool | null = null;
  #handles: FileHandle[] = [];
  /** The run holds one reference; each attached source holds one. The last closes the files. */
  #refs = 1;
  /** Set when the fill has failed and is cleaning up: newcomers start a fill of their own. */
  #failing = false;
  #resolveReady!: (size: number) => void;
  #rejectReady!: (err: Error) => void;

  /** `after`: a failed fill of the same blob still releasing its spool; this one starts when it is done. */
  constructor(deps: FillDeps, fetch: BlobFetch, client: FillClient, after?: Promise<unknown>) {
    this.#deps = deps;
    this.#fetch = fetch;
    this.name = fetch.name;
    this.digest = fetch.digest;
    this.#first = client;
    this.#readers = new Readers({ moved: () => this.#readerMoved(), released: () => this.#unref() });
    this.ready = new Promise<number>((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    // Every client awaits `ready`; when all have gone, nobody does, and that is fine.
    this.ready.catch(() => undefined);
    this.settled = (after ?? Promise.resolve()).then(() => this.#run());
  }

  get size(): number {
    return this.#size;
  }

  get waiters(): number {
    return this.#readers.count;
  }

  /** A fill streaming through memory (disk full) cannot serve a newcomer from offset 0. */
  get joinable(): boolean {
    return this.#stream?.inMemoryOnly !== true && !this.#failing;
  }

  /** True once the fill has failed (it may still be releasing its spool). */
  get failing(): boolean {
    return this.#failing;
  }

  arrived(): number {
    return this.#bytes?.arrived() ?? 0;
  }

  verified(): boolean {
    return this.#verified;
  }

  failure(): Error | null {
    return this.#failure;
  }

  read(buf: Buffer, position: number, length: number): Promise<number> {
    return this.#bytes?.read(buf, position, length) ?? Promise.resolve(0);
  }

  /** A client joins: once the headers are known it gets a source that reads from any offset. */
  async attach(client: FillClient): Promise<BlobSource> {
    this.#readers.add(client);
    try {
      await this.ready;
    } catch (err) {
      this.#readers.remove(client);
      throw err;
    }
    this.#refs++;
    return this.#readers.source(client, this);
  }

  async #run(): Promise<boolean> {
    const started = Date.now();
    try {
      return await this.#settle(await this.#fill(), null, started);
    } catch (err) {
      const failure =
        err instanceof FillFailure ? err : new FillFailure(err instanceof RegistryError ? 'upstream' : 'io', err);
      return this.#settle(failure.outcome, failure.error, started);
    }
  }

  async #fill(): Promise<FillOutcome> {
    let claim = await this.#claim();
    let startOffset = 0;
    let prefix: FileHandle | null = null;
    if (claim.kind === 'replica') {
      const followed = await this.#followReplica(claim.follower);
      if (followed === 'published') return 'published-by-replica';
      claim = followed.spool === null ? { kind: 'none' } : { kind: 'owned', spool: followed.spool };
      startOffset = followed.offset;
      prefix = followed.prefix;
    }
    this.#spool = claim.kind === 'owned' ? claim.spool : null;
    const download = new Download(
      {
        fetch: this.#fetch,
        token: () => this.#readers.newestToken(this.#first),
        log: this.#deps.log,
        ...(this.#deps.hooks === undefined ? {} : { onBytes: this.#deps.hooks.upstreamBytes }),
      },
      startOffset,
    );
    this.#download = download;
    // A taken-over spool may hold every byte already: only the verification is left.
    if (startOffset === 0 || startOffset < this.#size) {
      const size = await download.open(startOffset === 0 ? null : this.#size);
      if (startOffset === 0) {
        this.#size = size;
        // For replicas that follow, off this fill's path; a full disk may refuse it (they then
        // wait until this fill ends).
        this.#spool
          ?.setSize(size)
          .catch((err: unknown) => this.#deps.log.warn({ err }, 'could not record the blob size in its spool'));
      }
    }
    if (startOffset === 0 && this.#size <= SMALL_BLOB_MAX) return this.#small(download);
    return this.#streamed(download, startOffset, prefix);
  }

  /** The spool, or, when the disk cannot take even an empty file, none (stream through memory). */
  async #claim(): Promise<Claim> {
    for (let attempt = 0; ; attempt++) {
      let claim;
      try {
        claim = await this.#deps.spools.claim(this.digest);
      } catch (err) {
        const code = errnoCode(err) ?? '';
        if (!DISK_FULL_CODES.has(code)) throw err;
        this.#diskFull(code);
        return { kind: 'none' };
      }
      if (claim.kind === 'created') return { kind: 'owned', spool: claim.spool };
      // Our own process's spool belongs to a fill streaming through memory (the disk
      // failed); following it would stall where its writes stopped.
      if (claim.owner !== null && isThisProcess(claim.owner)) return { kind: 'none' };
      const follower = new ReplicaFollower(this.#deps.spools, this.digest, this.#finalPath, claim.owner, this.progress);
      const size = await follower.size();
      if (size !== null) {
        this.#size = size;
        return { kind: 'replica', follower };
      }
      // The writer died before it knew the size: nothing to continue from.
      await follower.close(false);
      await this.#deps.spools.removeDead(this.digest, claim.owner);
      if (attempt >= 2) throw new FillFailure('io', gatewayError('status', 'the spool of this blob is stuck'));
    }
  }

  /**
   * Follows a replica's fill. When its writer dies, this fill takes the spool over; when
   * the writer gives up without publishing (its disk failed, say) while our clients still
   * wait, this fill claims the blob itself. Either way it continues from the bytes it has
   * already served, read back from the writer's file, so that its own hash covers them.
   */
  async #followReplica(
    follower: ReplicaFollower,
  ): Promise<'published' | { spool: OwnedSpool | null; offset: number; prefix: FileHandle | null }> {
    this.#bytes = follower;
    this.#resolveReady(this.#size);
    this.#deps.log.info({ digest: this.digest.value, size: this.#size }, "following a replica's fill of this blob");
    const outcome = await follower.follow(() => this.#readers.count === 0);
    if (outcome.kind === 'published') {
      follower.markPublished();
      if (follower.file !== null) this.#handles.push(follower.file);
      this.#verified = true;
      this.#deps.store.add(this.digest, this.#size);
      return 'published';
    }
    const offset = follower.arrived();
    const continuing = outcome.kind === 'took-over' || this.#readers.count > 0;
    await follower.close(continuing);
    if (follower.file !== null && continuing) this.#handles.push(follower.file);
    if (outcome.kind === 'took-over') {
      this.#deps.log.warn(
        { digest: this.digest.value, offset, size: this.#size },
        'took over the spool of a dead writer',
      );
      return { spool: outcome.spool, offset, prefix: follower.file };
    }
    if (!continuing) {
      throw new FillFailure(
        'upstream',
        gatewayError('status', 'the replica filling this blob failed or was abandoned'),
      );
    }
    const claim = await this.#claimAgain();
    this.#deps.log.warn(
      { digest: this.digest.value, offset, size: this.#size },
      "the replica's fill of this blob ended unpublished: continuing it here",
    );
    return { spool: claim, offset, prefix: follower.file };
  }

  /** The spool for a fill that continues a replica's: ours, or none (disk full, or claimed again meanwhile). */
  async #claimAgain(): Promise<OwnedSpool | null> {
    try {
      const claim = await this.#deps.spools.claim(this.digest);
      if (claim.kind === 'created') {
        claim.spool.setSize(this.#size).catch(() => undefined);
        return claim.spool;
      }
    } catch (err) {
      const code = errnoCode(err) ?? '';
      if (!DISK_FULL_CODES.has(code)) throw err;
      this.#diskFull(code);
    }
    // Another replica claimed it first: this fill goes on through memory.
    return null;
  }

  /** Small blobs: buffered whole, hashed here, released, then written and published. */
  async #small(download: Download): Promise<FillOutcome> {
    const body = new SmallBody(this.#size);
    this.#bytes = body;
    this.#resolveReady(this.#size);
    await download.run(this.#announcing(body));
    const hex = body.hash(this.digest);
    if (hex !== this.digest.hex) {
      this.#penalise(download, hex);
      throw new FillFailure(
        'digest-mismatch',
        spoolFailure({ ok: false, reason: 'digest-mismatch', size: this.#size, actualHex: hex }),
      );
    }
    this.#released();
    if (this.#spool === null) return 'not-stored';
    try {
      await this.#spool.dataFile();
      await storeSmall(body.bytes, this.#spool.dataPath, this.#finalPath);
    } catch (err) {
      const code = errnoCode(err) ?? 'EIO';
      if (DISK_FULL_CODES.has(code)) this.#diskFull(code);
      else this.#deps.log.error({ digest: this.digest.value, err }, 'could not store a verified small blob');
      return 'not-stored';
    }
    this.#deps.store.add(this.digest, this.#size, body.bytes);
    return 'published';
  }

  /** Large blobs: through the ring to a worker that hashes and writes; readers read memory and disk. */
  async #streamed(download: Download, startOffset: number, prefix: FileHandle | null): Promise<FillOutcome> {
    const spool = this.#spool;
    const ring = new SpoolRing(Math.min(RING_SIZE, this.#size - startOffset), startOffset, {
      progress: () => this.progress.notify(),
      writeFailed: (offset, code) => {
        this.#stream?.diskFailed(offset, this.#readers.slowest(ring.received));
        this.#diskFull(code);
        this.progress.notify();
      },
      verdict: (ok) => {
        if (!ok) return;
        this.#released();
        spool?.setVerified().catch(() => undefined);
      },
    });
    const dataPath = spool === null ? null : await this.#dataFileOf(spool);
    const file = dataPath === null ? null : await open(dataPath, 'r');
    if (file !== null) this.#handles.push(file);
    const store = new StreamStore(ring, file, prefix === null ? null : { file: prefix, end: startOffset });
    this.#stream = store;
    this.#bytes = store;
    let result: Promise<SpoolResult>;
    try {
      result = this.#deps.pool.spool({
        dataPath,
        finalPath: this.#finalPath,
        algorithm: this.digest.algorithm,
        expectedHex: this.digest.hex,
        prefixFd: prefix?.fd ?? null,
        startOffset,
        ring: ring.buffer,
        port: ring.workerPort,
        publishDelayMs: this.#deps.publishDelayMs ?? 0,
      });
    } catch (err) {
      ring.close();
      throw err;
    }
    // A lost worker (crash, pool closed) fails the fill, not the process.
    const spooled = result.catch((err: unknown): SpoolResult => ({
      ok: false,
      reason: 'io',
      code: 'EWORKER',
      message: messageOf(err),
    }));
    this.#resolveReady(this.#size);
    try {
      if (download.received < this.#size) await download.run(this.#announcing(store));
      ring.end(this.#size);
    } catch (err) {
      ring.abort();
      await spooled;
      throw this.#stoppedOutcome(err);
    }
    return this.#afterSpool(await spooled, download);
  }

  /** The spool's data file, or null when the disk could not take it (the bytes then stream through memory). */
  async #dataFileOf(spool: OwnedSpool): Promise<string | null> {
    try {
      await spool.dataFile();
      return spool.dataPath;
    } catch (err) {
      const code = errnoCode(err) ?? '';
      if (!DISK_FULL_CODES.has(code)) throw err;
      this.#diskFull(code);
      return null;
    }
  }

  #afterSpool(result: SpoolResult, download: Download): FillOutcome {
    if (result.ok) {
      // The verdict also came as a ring message, but on another channel: the result may arrive first.
      this.#released();
      this.#deps.store.add(this.digest, this.#size);
      // Another writer of the same blob (a replica that took our stalled spool over) was first.
      return result.published ? 'published' : 'published-by-replica';
    }
    // The verdict also came as a ring message, but on another channel: the result may arrive first.
    if (result.reason === 'not-stored' && result.digestMatches) {
      this.#released();
      return 'not-stored';
    }
    if (result.reason === 'digest-mismatch') this.#penalise(download, result.actualHex);
    const outcome = result.reason === 'not-stored' ? 'digest-mismatch' : result.reason;
    throw new FillFailure(outcome, spoolFailure(result));
  }

  /** Why a download stopped: every client left a fill that cannot be kept, or the upstream failed. */
  #stoppedOutcome(err: unknown): FillFailure {
    if (this.#stream?.inMemoryOnly === true && this.#readers.count === 0) return new FillFailure('aborted', err);
    return new FillFailure(err instanceof RegistryError ? 'upstream' : 'io', err);
  }

  /** The digest verified: every client's last byte may go. */
  #released(): void {
    if (this.#verified) return;
    this.#verified = true;
    this.progress.notify();
  }

  /**
   * Wakes readers as bytes arrive, once per event-loop turn: frontier readers then send
   * whatever the turn brought from memory at once, and a chunk does not cost every reader a
   * wake-up of its own.
   */
  #announcing(sink: ByteSink): ByteSink {
    let scheduled = false;
    const announce = (): void => {
      scheduled = false;
      this.progress.notify();
    };
    return {
      write: (chunk) => {
        const more = sink.write(chunk);
        // Streaming through memory: bytes every reader is already past (a Range client waiting
        // further on) go at once, or they would fill the tail and pause the upstream for good.
        if (this.#stream?.inMemoryOnly === true) this.#readerMoved();
        if (!scheduled) {
          scheduled = true;
          setImmediate(announce);
        }
        return more;
      },
      onDrain: (resume) => sink.onDrain(resume),
    };
  }

  #penalise(download: Download, actualHex: string): void {
    for (const host of download.hosts)
      host.recordFailure(`bytes failed the digest check (${actualHex.slice(0, 16)}…)`, BAD_BYTES_PENALTY_MS);
  }

  #readerMoved(): void {
    const stream = this.#stream;
    if (stream === null) return;
    stream.trim(this.#readers.slowest(stream.arrived()));
    if (stream.inMemoryOnly && this.#readers.count === 0 && !this.#verified) {
      // Nobody is left to stream to, and nothing can be stored: stop downloading.
      this.#download?.stop(new Error('every client left a fill that cannot be stored'));
    }
  }

  #diskFull(code: string): void {
    if (DISK_FULL_CODES.has(code)) this.#deps.onDiskFull?.();
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

  get #finalPath(): string {
    return this.#deps.store.layout.blobData(this.digest);
  }

  async #settle(outcome: FillOutcome, error: Error | null, started: number): Promise<boolean> {
    if (!this.#verified) {
      // Newcomers from now on start a fill of their own, after this one has let go of its spool.
      this.#failing = true;
      this.#stream?.ring.close();
      await this.#spool?.release().catch(() => undefined);
      // Whatever ended the fill, a reader still waiting must learn that its bytes will not verify.
      const failure = error ?? gatewayError('status', `the fill ended unverified (${outcome})`);
      this.#failure = failure;
      this.#rejectReady(failure);
    }
    this.progress.notify();
    const published = outcome === 'published' || outcome === 'published-by-replica';
    if (published) this.#deps.onPublished?.(this.digest, this.#size);
    if (outcome === 'published' && this.#deps.disk.full) {
      this.#deps.disk.full = false;
      this.#deps.log.info({ digest: this.digest.value }, 'disk has room again: caching resumed');
    }
    const clientError = error instanceof RegistryError && error.status < 500;
    const level = published || clientError ? 'info' : error === null ? 'warn' : 'error';
    this.#deps.log[level](
      {
        digest: this.digest.value,
        size: this.#size,
        outcome,
        joins: this.joins,
        ms: Date.now() - started,
        route: this.#download?.route,
        ...(error === null ? {} : { err: error }),
      },
      published ? 'fill published' : outcome === 'not-stored' ? 'fill streamed through without caching' : 'fill failed',
    );
    this.#deps.hooks?.settled({ outcome, size: this.#size, joins: this.joins });
    this.#stream?.ring.close();
    await this.#spool?.release().catch(() => undefined);
    await this.#unref();
    return published;
  }

  async #unref(): Promise<void> {
    if (--this.#refs > 0) return;
    const handles = this.#handles;
    this.#handles = [];
    await Promise.all(handles.map((h) => h.close().catch(() => undefined)));
  }
}
