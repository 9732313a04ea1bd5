// The upstream chain (docs/protocol.md §4): round robin over the upstream hosts, the origin
// as the fallback (2.2 form), failover on refused connections, timeouts, 5xx and answers the
// cache cannot use, and
// a `Via` header as the loop guard (RFC 9110 §7.6.3). URLs are built only from config
// and from the already-validated name and digest.
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import type { UpstreamsConfig } from '../config/types.js';
import { classifyUpstreamError, gatewayError, type UpstreamFailureKind } from '../errors/upstream.js';
import { UpstreamHost, type HostOptions } from './host.js';
import { messageOf } from '../errors/inspect.js';
import { forwardedVia } from './via.js';

export interface BlobRequest {
  method: 'GET' | 'HEAD';
  name: string;
  digest: string;
  /** The redirect token forwarded as `Authorization: Bearer` (docs/protocol.md §2). */
  token: string;
  /** Resume point: sends `Range: bytes=<offset>-` when > 0. */
  offset?: number;
  /** The incoming request's Via, to which this node appends itself. */
  via?: string | undefined;
  signal?: AbortSignal;
  /** Hosts that already failed this fill: asked only after every other host. */
  avoid?: ReadonlySet<UpstreamHost>;
  /** Hosts that failed this fill for good: not asked at all. */
  exclude?: ReadonlySet<UpstreamHost>;
}

export interface UpstreamResponse {
  host: UpstreamHost;
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: Dispatcher.ResponseData['body'];
}

export interface ChainOptions extends HostOptions {
  /** This node's name in `Via`. */
  viaName: string;
  log?: { warn(obj: object, msg: string): void };
}

const NONE: ReadonlySet<UpstreamHost> = new Set();

/** Upstream statuses that are an answer for this request; any other fails the host (see request). */
const ANSWERS: ReadonlySet<number> = new Set([200, 206, 401, 403, 404, 416]);

export class UpstreamChain {
  readonly hosts: readonly UpstreamHost[];
  readonly origin: UpstreamHost | null;
  readonly #viaName: string;
  readonly #log: ChainOptions['log'];
  #next = 0;

  constructor(cfg: UpstreamsConfig, opts: ChainOptions) {
    this.hosts = cfg.hosts.map((url) => new UpstreamHost(url, 'upstream', opts));
    this.origin = cfg.origin === null ? null : new UpstreamHost(cfg.origin, 'origin', opts);
    this.#viaName = opts.viaName;
    this.#log = opts.log;
  }

  get all(): readonly UpstreamHost[] {
    return this.origin === null ? this.hosts : [...this.hosts, this.origin];
  }

  /**
   * The order to try hosts for one request: round robin from the next host, then the origin;
   * hosts under penalty after all of those, the origin included (docs/protocol.md §4: a host
   * that failed recently is tried after the others), those that failed fewer times first, so
   * a tier that keeps breaking is not asked first by every miss during its back-off, and is
   * asked again once it has passed. Hosts in `avoid` come after all of those; hosts in
   * `exclude` are left out.
   */
  candidates(avoid: ReadonlySet<UpstreamHost> = NONE, exclude: ReadonlySet<UpstreamHost> = NONE): UpstreamHost[] {
    const n = this.hosts.length;
    const start = n === 0 ? 0 : this.#next++ % n;
    const all = Array.from({ length: n }, (_, i) => this.hosts[(start + i) % n]!);
    if (this.origin !== null) all.push(this.origin);
    const penalised = all.filter((h) => h.penalised).sort((a, b) => a.failures - b.failures);
    const ordered = [...all.filter((h) => !h.penalised), ...penalised];
    const usable = ordered.filter((h) => !exclude.has(h));
    return [...usable.filter((h) => !avoid.has(h)), ...usable.filter((h) => avoid.has(h))];
  }

  /**
   * Sends the request to the first host that gives one of the ANSWERS: a 5xx, a 429 (a host
   * throttling us), a 3xx or another 4xx (a host refusing our request) is that host's failure,
   * and the next is asked. A 200 or 206, or an answer about the blob (404 BLOB_UNKNOWN, 401,
   * 403, 416) is returned as is, for the caller to use or relay; when no host answers,
   * throws UNAVAILABLE (502/503/504), or TOOMANYREQUESTS when the last throttled.
   */
  async request(req: BlobRequest): Promise<UpstreamResponse> {
    let lastKind: UpstreamFailureKind = 'unreachable';
    let lastCause: unknown;
    let retryAfter: string | undefined;
    const tried: string[] = [];
    for (const host of this.candidates(req.avoid, req.exclude)) {
      if (req.signal?.aborted) break;
      tried.push(host.url);
      try {
        const res = await host.dispatcher.request({
          method: req.method,
          path: `/v2/${req.name}/blobs/${req.digest}`,
          headers: this.#headers(req),
          ...(req.signal === undefined ? {} : { signal: req.signal }),
        });
        if (!ANSWERS.has(res.statusCode)) {
          discardBody(res.body);
          host.recordFailure(`status ${res.statusCode}`);
          lastKind = res.statusCode === 429 ? 'throttled' : 'status';
          retryAfter = typeof res.headers['retry-after'] === 'string' ? res.headers['retry-after'] : undefined;
          lastCause = new Error(`upstream ${host.url} answered ${res.statusCode}`);
          this.#log?.warn(
            { upstream: host.url, status: res.statusCode, digest: req.digest },
            'upstream failed, trying next',
          );
          continue;
        }
        host.recordSuccess();
        return { host, statusCode: res.statusCode, headers: res.headers, body: res.body };
      } catch (err) {
        lastKind = classifyUpstreamError(err);
        lastCause = err;
        host.recordFailure(`${lastKind}: ${messageOf(err)}`);
        this.#log?.warn(
          { upstream: host.url, reason: lastKind, err, digest: req.digest },
          'upstream failed, trying next',
        );
      }
    }
    const why =
      tried.length === 0
        ? 'no upstream left to ask: every host has already failed this transfer'
        : `no upstream could serve the blob (tried ${tried.length})`;
    throw gatewayError(lastKind, why, lastCause, retryAfter);
  }

  #headers(req: BlobRequest): Record<string, string> {
    const headers: Record<string, string> = {
      authorization: `Bearer ${req.token}`,
      via: forwardedVia(req.via, this.#viaName),
      'user-agent': 'dtr-cache',
      'accept-encoding': 'identity',
    };
    if (req.offset !== undefined && req.offset > 0) headers.range = `bytes=${req.offset}-`;
    return headers;
  }

  /** True when the incoming Via shows this node already forwarded the request: a loop. */
  seenIn(via: string | undefined): boolean {
    if (!via) return false;
    return via.split(',').some((hop) => hop.trim().split(/\s+/)[1] === this.#viaName);
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((h) => h.close()));
  }
}

/**
 * Drops an undici body we will not read. undici's destroy() emits an 'error'
 * (RequestAbortedError), which would be an uncaught exception without a listener.
 */
export function discardBody(body: UpstreamResponse['body']): void {
  body.on('error', () => undefined);
  body.destroy();
}
