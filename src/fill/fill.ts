// One fill: one upstream fetch of one blob, streamed to every client that asks for it while
// it arrives, verified, then kept (docs/architecture.md, "The miss path"). Clients read the
// fill's recent bytes from memory and older ones from its data file; the digest verdict
// releases every client's last byte; the fsync and the publication follow, off their path.
// The fill goes on when clients leave. This file is the state machine; the pieces it drives
// are the claim or the replica followed (claim.ts, replica.ts), the download (download.ts),
// small blobs (small-blob.ts), large ones through the ring to the worker (streamed.ts,
// ring.ts, stream-store.ts), the readers (readers.ts) and the outcome (outcome.ts).
import type { FileHandle } from 'node:fs/promises';
import { RegistryError } from '../errors/registry.js';
import { gatewayError } from '../errors/upstream.js';
import type { Digest } from '../store/digest.js';
import type { OwnedSpool } from '../store/spool.js';
import { claimSpool, followReplica, type ClaimContext } from './claim.js';
import type { ReplicaFollower } from './replica.js';
import type { BodyContext, FillDeps } from './deps.js';
import { spaceReturned } from './disk-full.js';
import { Download, type ByteSink } from './download.js';
import type { BlobFetch } from './fetch.js';
import { FillFailure, isPublished, logSettled, type FillOutcome, type FillPath } from './outcome.js';
import { Readers, type FillBytes, type FillClient } from './readers.js';
import { Signal } from './signal.js';
import { fillSmall, reserveSmallBody } from './small-blob.js';
import type { BlobSource } from './source.js';
import { StreamStore } from './stream-store.js';
import { streamToWorker } from './streamed.js';

export type { FillDeps, FillHooks } from './deps.js';

/**
 * Disk full: a client of a fill streaming through memory that reads nothing for this long,
 * while the upstream waits for it, is cut off (there is no file for it to catch up from),
 * rather than hold up every other client of the blob until its idle timeout.
 */
export const PASS_THROUGH_STALL_MS = 5_000;

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
  /** While this fill follows another process's download (replica.ts). */
  #following: ReplicaFollower | null = null;
  #through: FillPath = null;
  #stream: StreamStore | null = null;
  #download: Download | null = null;
  #spool: OwnedSpool | null = null;
  #handles: FileHandle[] = [];
  /** The run holds one reference; each attached source holds one. The last closes the files. */
  #refs = 1;
  /** Set when the fill has failed and is cleaning up: newcomers start a fill of their own. */
  #failing = false;
  #stallTimer: NodeJS.Timeout | null = null;
  /** A body buffered whole (small-blob.ts) gives its budget back once nobody reads it. */
  #releaseSmallBody: (() => void) | null = null;
  /** While this fill follows another process's download: the newest credential told to the node. */
  #sharing = false;
  #sharedExp = 0;
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
    // A follower's readers read the writer's verified bytes from its data file: the writer's
    // verdict releases their last byte, before its fsync and publication.
    return this.#verified || this.#following?.verified() === true;
  }

  failure(): Error | null {
    return this.#failure;
  }

  read(buf: Buffer, position: number, length: number): Promise<number> {
    return this.#bytes?.read(buf, position, length) ?? Promise.resolve(0);
  }

  /** A credential from a client that follows this fill from another process of the node. */
  offer(client: FillClient): void {
    this.#readers.offer(client);
  }

  /**
   * A follower tells the node each newer credential among its clients: the process whose
   * download they wait on retries with the newest token among every client of the blob,
   * not only its own (docs/protocol.md §4).
   */
  #share(client: FillClient): void {
    if (!this.#sharing || client.exp <= this.#sharedExp) return;
    this.#sharedExp = client.exp;
    this.#deps.shareCredential?.(this.digest, client);
  }

  /** A client joins: once the headers are known it gets a source that reads from any offset. */
  async attach(client: FillClient): Promise<BlobSource> {
    this.#readers.add(client);
    this.#share(client);
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
      const failure = FillFailure.of(err);
      return this.#settle(failure.outcome, failure.error, started);
    }
  }

  async #fill(): Promise<FillOutcome> {
    let claim = await claimSpool(this.#claimContext);
    let startOffset = 0;
    let prefix: FileHandle | null = null;
    if (claim.kind === 'replica') {
      this.#size = claim.size;
      this.#bytes = claim.follower;
      this.#following = claim.follower;
      this.#through = 'replica';
      this.#resolveReady(this.#size);
      this.#sharing = true;
      this.#share(this.#readers.newest(this.#first));
      const followed = await followReplica(this.#claimContext, claim.follower, {
        size: this.#size,
        waiting: () => this.#readers.count,
        keep: (handle) => this.#handles.push(handle),
      });
      if (followed.kind === 'published') {
        this.#verified = true;
        this.#deps.store.add(this.digest, this.#size);
        return 'published-by-replica';
      }
      this.#sharing = false;
      this.#following = null;
      claim = followed.spool === null ? { kind: 'none' } : { kind: 'owned', spool: followed.spool };
      startOffset = followed.offset;
      prefix = followed.prefix;
    }
    this.#spool = claim.kind === 'owned' ? claim.spool : null;
    const download = new Download(
      {
        fetch: this.#fetch,
        credential: () => this.#readers.newest(this.#first),
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
    this.#releaseSmallBody = startOffset === 0 ? reserveSmallBody(this.#size) : null;
    this.#through = this.#releaseSmallBody === null ? 'worker' : 'memory';
    if (this.#releaseSmallBody !== null) return fillSmall(this.#body, download);
    return this.#streamed(download, startOffset, prefix);
  }

  /** Large blobs: through the ring to a worker that hashes and writes; readers read memory and disk. */
  async #streamed(download: Download, startOffset: number, prefix: FileHandle | null): Promise<FillOutcome> {
    const streamed = await streamToWorker(
      {
        ...this.#body,
        keep: (handle) => this.#handles.push(handle),
        progress: () => this.progress.notify(),
        writeFailed: (offset, store) => store.diskFailed(offset, this.#readers.slowest(store.arrived())),
        fastestReader: (from, to) => this.#readers.fastestBetween(from, to),
      },
      download,
      startOffset,
      prefix,
    );
    if (streamed.kind === 'stopped') throw this.#stoppedOutcome(streamed.err);
    return streamed.outcome;
  }

  /** Why a download stopped: every client left a fill that cannot be kept, or the upstream failed. */
  #stoppedOutcome(err: unknown): FillFailure {
    if (this.#stream?.inMemoryOnly === true && this.#readers.count === 0) return new FillFailure('aborted', err);
    return FillFailure.of(err);
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
   * wake-up of its own. The first bytes wake them at once: one turn of a fast upstream can
   * bring megabytes (libuv reads a socket until it is empty), and the first byte would wait
   * for all of them.
   */
  #announcing(sink: ByteSink): ByteSink {
    let scheduled = false;
    let first = true;
    const announce = (): void => {
      scheduled = false;
      this.progress.notify();
    };
    return {
      write: (chunk) => {
        const more = sink.write(chunk);
        // Streaming through memory: bytes every reader is already past (a Range client waiting
        // further on) go at once, or they would fill the tail and pause the upstream for good.
        if (this.#stream?.inMemoryOnly === true) {
          this.#readerMoved();
          if (!more) this.#watchPassThrough();
        }
        if (!scheduled) {
          scheduled = true;
          if (first) queueMicrotask(announce);
          else setImmediate(announce);
          first = false;
        }
        return more;
      },
      onDrain: (resume) => sink.onDrain(resume),
    };
  }

  /** The upstream waits for the slowest reader of a pass-through fill: cut it off if it has stalled. */
  #watchPassThrough(): void {
    const stream = this.#stream;
    if (this.#stallTimer !== null || stream === null) return;
    const slowest = this.#readers.slowest(stream.arrived());
    this.#stallTimer = setTimeout(() => {
      this.#stallTimer = null;
      if (!stream.waitingOnReaders) return;
      if (this.#readers.slowest(stream.arrived()) !== slowest) {
        this.#watchPassThrough();
        return;
      }
      const why = new RegistryError('UNAVAILABLE', {
        message: 'the client stopped reading a blob that streams through memory (disk full): cut off',
      });
      const clients = this.#readers.cutAt(slowest, why);
      if (clients > 0) {
        this.#deps.log.warn({ digest: this.digest.value, clients, position: slowest }, why.message);
      }
    }, PASS_THROUGH_STALL_MS).unref();
  }

  #readerMoved(): void {
    const stream = this.#stream;
    if (stream === null) return;
    stream.trim(this.#readers.slowest(stream.arrived()));
    stream.ring.readerMoved();
    if (stream.inMemoryOnly && this.#readers.count === 0 && !this.#verified) {
      // Nobody is left to stream to, and nothing can be stored: stop downloading.
      this.#download?.stop(new Error('every client left a fill that cannot be stored'));
    }
  }

  get #finalPath(): string {
    return this.#deps.store.layout.blobData(this.digest);
  }

  /** What the small-blob and streamed paths need from this fill. */
  get #body(): BodyContext {
    return {
      deps: this.#deps,
      digest: this.digest,
      size: this.#size,
      finalPath: this.#finalPath,
      spool: this.#spool,
      opened: (bytes) => {
        if (bytes instanceof StreamStore) this.#stream = bytes;
        this.#bytes = bytes;
        this.#resolveReady(this.#size);
      },
      sink: (sink) => this.#announcing(sink),
      verified: () => this.#released(),
    };
  }

  get #claimContext(): ClaimContext {
    return { deps: this.#deps, digest: this.digest, finalPath: this.#finalPath, progress: this.progress };
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
    const published = isPublished(outcome);
    if (published) this.#deps.onPublished?.(this.digest, this.#size);
    if (outcome === 'published') spaceReturned(this.#deps, this.digest);
    const ms = Date.now() - started;
    const fields = { digest: this.digest.value, size: this.#size, outcome, joins: this.joins, ms };
    logSettled(this.#deps.log, { ...fields, route: this.#download?.route, through: this.#through }, error);
    this.#deps.hooks?.settled({ outcome, size: this.#size, joins: this.joins });
    this.#stream?.ring.close();
    await this.#spool?.release().catch(() => undefined);
    await this.#unref();
    return published;
  }

  async #unref(): Promise<void> {
    if (--this.#refs > 0) return;
    // Nobody reads the fill any more, and its worker task has ended: the ring's memory goes back.
    this.#stream?.ring.recycle();
    this.#releaseSmallBody?.();
    const handles = this.#handles;
    this.#handles = [];
    await Promise.all(handles.map((h) => h.close().catch(() => undefined)));
  }
}
