// Upstream request outcomes, observed through undici's diagnostics channels
// (undici lib/core/diagnostics.js; docs/architecture.md §9) rather than by code in the upstream
// chain: the chain stays free of metrics, and the channels cost nothing without
// subscribers. The channels are process-wide, so only requests to this cache's upstream
// origins for blob paths are counted (the key-set fetches to the same hosts are not).
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { classifyUpstreamError } from '../errors/upstream.js';
import { errnoCode } from '../errors/inspect.js';

interface UndiciRequest {
  origin?: unknown;
  path?: unknown;
}

interface HeadersMessage {
  request: UndiciRequest;
  response: { statusCode: number };
}

interface ErrorMessage {
  request: UndiciRequest;
  error: unknown;
}

export interface UpstreamObserver {
  /** One per request: its status class (2xx…5xx), or why no answer came (timeout, unreachable, reset). */
  outcome(host: string, outcome: string): void;
  /** A body that broke after its headers (not one we discarded ourselves). */
  broke(host: string): void;
}

const HEADERS = 'undici:request:headers';
const ERROR = 'undici:request:error';

export class UpstreamWatch {
  readonly #observer: UpstreamObserver;
  /** undici request origin (URL.origin) → the host's label (its configured URL). */
  readonly #hosts = new Map<string, string>();
  readonly #answered = new WeakSet<object>();
  #subscribed = false;

  constructor(observer: UpstreamObserver) {
    this.#observer = observer;
  }

  watch(urls: readonly string[]): void {
    for (const url of urls) this.#hosts.set(new URL(url).origin, url);
    if (!this.#subscribed && this.#hosts.size > 0) {
      subscribe(HEADERS, this.#onHeaders);
      subscribe(ERROR, this.#onError);
      this.#subscribed = true;
    }
  }

  close(): void {
    if (!this.#subscribed) return;
    unsubscribe(HEADERS, this.#onHeaders);
    unsubscribe(ERROR, this.#onError);
    this.#subscribed = false;
  }

  #host(req: UndiciRequest): string | undefined {
    if (typeof req.path !== 'string' || !req.path.startsWith('/v2/')) return undefined;
    return this.#hosts.get(String(req.origin));
  }

  readonly #onHeaders = (message: unknown): void => {
    const { request, response } = message as HeadersMessage;
    const host = this.#host(request);
    if (host === undefined) return;
    this.#answered.add(request);
    this.#observer.outcome(host, `${Math.floor(response.statusCode / 100)}xx`);
  };

  readonly #onError = (message: unknown): void => {
    const { request, error } = message as ErrorMessage;
    const host = this.#host(request);
    if (host === undefined) return;
    if (!this.#answered.has(request)) {
      this.#observer.outcome(host, classifyUpstreamError(error));
    } else if (errnoCode(error) !== 'UND_ERR_ABORTED') {
      // UND_ERR_ABORTED is our own discardBody() of a body we do not read.
      this.#observer.broke(host);
    }
  };
}
