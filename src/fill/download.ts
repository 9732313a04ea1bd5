// The upstream download of one fill: the first answer, then the body pumped into a sink
// with backpressure. A transfer that breaks midway, or stalls past the body-idle timeout,
// is resumed with `Range: bytes=<received>-` from the next host in order: the hosts that
// have not failed this fill first, then those that did. A host that fails without
// delivering a byte, or fails too often, is not asked again by this fill; the fill fails
// only when no host is left (docs/protocol.md §3).
import { finished } from 'node:stream';
import type { Logger } from 'pino';
import { isRegistryError } from '../errors/registry.js';
import { gatewayError } from '../errors/upstream.js';
import { messageOf } from '../errors/inspect.js';
import { discardBody, type UpstreamResponse } from '../upstream/chain.js';
import type { UpstreamHost } from '../upstream/host.js';
import { expectFullBody, expectResumeBody } from '../upstream/response.js';
import type { BlobFetch } from './fetch.js';

/** How long a host that sent bytes failing the digest check stays at the back of the order. */
const BAD_BYTES_PENALTY_MS = 5 * 60_000;

/** Where downloaded bytes go. */
export interface ByteSink {
  /** Takes the next chunk; false: pause until the sink calls the `onDrain` callback. */
  write(chunk: Buffer): boolean;
  onDrain(resume: () => void): void;
}

/** Attempts of one host in one fill, after which it is not asked again by that fill. */
const ATTEMPTS_PER_HOST = 3;

export interface DownloadOptions {
  fetch: BlobFetch;
  /** The newest credential among the clients still waiting, and its repository (asked at each attempt). */
  credential(): { token: string; name: string };
  log: Logger;
  /** Per chunk, so it must be cheap (metrics). */
  onBytes?(host: string, bytes: number): void;
}

/** One stretch of the blob from one host: `to` is where it stopped (null while running). */
export interface RouteLeg {
  host: string;
  from: number;
  to: number | null;
}

export class Download {
  readonly #legs: Array<{ host: UpstreamHost; from: number; to: number | null }> = [];
  readonly #opts: DownloadOptions;
  readonly #failures = new Map<UpstreamHost, number>();
  readonly #exhausted = new Set<UpstreamHost>();
  #size = -1;
  readonly #startOffset: number;
  #received: number;
  #current: UpstreamResponse | null = null;
  #skip = 0;
  #stopped: Error | null = null;

  constructor(opts: DownloadOptions, startOffset: number) {
    this.#opts = opts;
    this.#startOffset = startOffset;
    this.#received = startOffset;
  }

  get received(): number {
    return this.#received;
  }

  /** The hosts this fill used, and the offsets at which it switched (one log line per fill). */
  get route(): RouteLeg[] {
    return this.#legs.map((leg) => ({ host: leg.host.url, from: leg.from, to: leg.to }));
  }

  /**
   * The bytes failed the digest check: every host that sent some goes to the back of the
   * order for a while. Not when this fill continued bytes another writer fetched (a replica
   * that gave up on a mismatch, or died): the bad bytes may be in that prefix, from hosts this
   * fill never asked, and blaming the good host that sent the rest would send the node's next
   * fills to the bad one first.
   */
  blameBadBytes(actualHex: string): void {
    if (this.#startOffset > 0) return;
    for (const host of new Set(this.#legs.map((leg) => leg.host)))
      host.recordFailure(`bytes failed the digest check (${actualHex.slice(0, 16)}…)`, BAD_BYTES_PENALTY_MS);
  }

  /**
   * The first answer: the blob's size from a full 200, or, for a take-over continuing at
   * `knownSize`, a resumed answer checked against it.
   */
  async open(knownSize: number | null): Promise<number> {
    if (knownSize !== null) {
      this.#size = knownSize;
      await this.#resume();
      return this.#size;
    }
    await this.#answer(
      async (res) => {
        this.#size = await expectFullBody(res);
      },
      // An upstream's answer about the blob (404, 401, 403, 416) goes to the clients, who have
      // no headers yet; an answer the cache cannot use (a 3xx, another 4xx, no Content-Length)
      // is that host's failure, and the next is asked.
      (err) => isRegistryError(err) && err.status < 500,
    );
    return this.#size;
  }

  /** Pumps the body into the sink, resuming across hosts, until every byte has arrived. */
  async run(sink: ByteSink): Promise<void> {
    for (;;) {
      const res = this.#current;
      if (res === null) throw new Error('download not opened');
      const before = this.#received;
      try {
        await this.#pump(res, sink);
        if (this.#received === this.#size) {
          this.#finishLeg();
          return;
        }
        throw new Error(`upstream ended early at ${this.#received} of ${this.#size} bytes`);
      } catch (err) {
        discardBody(res.body);
        this.#finishLeg();
        if (this.#stopped !== null) throw this.#stopped;
        this.#fail(res.host, this.#received > before, err);
      }
      await this.#resume();
    }
  }

  /** Stops the transfer (every client left a fill that cannot be kept). */
  stop(reason: Error): void {
    this.#stopped = reason;
    this.#current?.body.destroy(reason);
  }

  #fail(host: UpstreamHost, progressed: boolean, err: unknown, msg = 'upstream transfer broke, resuming'): void {
    const message = messageOf(err);
    host.recordFailure(`body: ${message}`);
    const attempts = (this.#failures.get(host) ?? 0) + 1;
    this.#failures.set(host, attempts);
    if (!progressed || attempts >= ATTEMPTS_PER_HOST) this.#exhausted.add(host);
    this.#opts.log.warn(
      { digest: this.#opts.fetch.digest.value, upstream: host.url, offset: this.#received, err: message },
      msg,
    );
  }

  async #resume(): Promise<void> {
    try {
      // Every client has its headers already: no answer of a host can reach them, and one
      // that cannot resume the transfer (a wrong Content-Range, a 404, 416 …) is its failure.
      await this.#answer(
        async (res) => {
          this.#skip = await expectResumeBody(res, this.#received, this.#size);
        },
        // A 401 or 403 is about the token, which every host would refuse alike: not a host's fault.
        (err) => isRegistryError(err) && (err.status === 401 || err.status === 403),
      );
    } catch (err) {
      if (err === this.#stopped) throw err;
      throw gatewayError('reset', `upstream transfer broke at ${this.#received} and no host could resume it`, err);
    }
  }

  /**
   * Asks the hosts in order until one gives an answer `accept` takes, and starts its leg. A
   * host whose answer is refused has failed this fill without a byte, and the next host is
   * asked: a fill fails only when no host is left (docs/protocol.md §4), with the last
   * refusal; a `final` refusal ends it at once.
   */
  async #answer(accept: (res: UpstreamResponse) => Promise<void>, final: (err: unknown) => boolean): Promise<void> {
    let refusal: unknown = null;
    for (;;) {
      if (this.#stopped !== null) throw this.#stopped;
      let res: UpstreamResponse;
      try {
        res = await this.#request();
      } catch (err) {
        throw refusal ?? err;
      }
      try {
        await accept(res);
      } catch (err) {
        if (final(err)) throw err;
        this.#fail(res.host, false, err, 'upstream answer refused, asking the next host');
        refusal = err;
        continue;
      }
      // Stopped while the answer came: its body is not wanted.
      if (this.#stopped !== null) {
        discardBody(res.body);
        throw this.#stopped;
      }
      this.#begin(res);
      return;
    }
  }

  #request(): Promise<UpstreamResponse> {
    const { token, name } = this.#opts.credential();
    return this.#opts.fetch.get({
      offset: this.#received,
      token,
      name,
      avoid: new Set(this.#failures.keys()),
      exclude: this.#exhausted,
    });
  }

  #begin(res: UpstreamResponse): void {
    this.#current = res;
    this.#legs.push({ host: res.host, from: this.#received, to: null });
  }

  #finishLeg(): void {
    const leg = this.#legs.at(-1);
    if (leg !== undefined && leg.to === null) leg.to = this.#received;
  }

  #pump(res: UpstreamResponse, sink: ByteSink): Promise<void> {
    const body = res.body;
    const host = res.host.url;
    return new Promise<void>((resolve, reject) => {
      body.on('data', (chunk: Buffer) => {
        let data = chunk;
        if (this.#skip > 0) {
          const n = Math.min(this.#skip, data.length);
          this.#skip -= n;
          data = data.subarray(n);
          if (data.length === 0) return;
        }
        if (this.#received + data.length > this.#size) {
          body.destroy(new Error('upstream sent more bytes than its Content-Length'));
          return;
        }
        this.#received += data.length;
        this.#opts.onBytes?.(host, data.length);
        if (!sink.write(data)) {
          body.pause();
          sink.onDrain(() => body.resume());
        }
      });
      // finished() also sees a body that broke before this listener was attached: the
      // connection may be cut between the headers and the first read, while the fill opens
      // its spool, and 'error' and 'close' would then never come again.
      finished(body, (err) => (err === undefined || err === null ? resolve() : reject(err)));
    });
  }
}
