// One mirrored registry's upstream: an undici pool for `remoteurl` (its own CA trust), the
// token flow of auth.ts answered on a 401, and redirects followed the way registry clients
// follow them (blob downloads often move to a CDN, registry.k8s.io sends manifests to regional
// registries). Credentials and the upstream's tokens never go along to another origin; a
// redirect target that asks for a token of its own gets an anonymous one from its own realm,
// as containerd authorizes each host it is sent to. Every request path is built by the
// caller from validated parts only.
import type { SecureContext } from 'node:tls';
import { LRUCache } from 'lru-cache';
import { Agent } from 'undici';
import { RegistryError } from '../errors/registry.js';
import { classifyUpstreamError, gatewayError } from '../errors/upstream.js';
import { discardBody, type UpstreamResponse } from '../upstream/chain.js';
import { UpstreamHost, upstreamDispatcherOptions } from '../upstream/host.js';
import { forwardedVia } from '../upstream/via.js';
import { UpstreamAuth, type Credentials, type TokenAnswer } from './auth.js';
import { parseChallenge } from './challenge.js';

export interface MirrorRequest {
  method: 'GET' | 'HEAD';
  /** `/v2/<name>/manifests/<ref>`, `/v2/<name>/blobs/<digest>` …, from validated parts. */
  path: string;
  /** The repository, for the token's scope; null for `/v2/`. */
  repo: string | null;
  headers?: Record<string, string>;
  /** The client request's Via, to which this node adds itself (a loop guard). */
  via?: string | undefined;
}

export interface UpstreamOptions {
  remoteUrl: string;
  realms: readonly string[];
  credentials: Credentials | null;
  secureContext: SecureContext;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyIdleTimeoutMs: number;
  viaName: string;
  log: { warn(obj: object, msg: string): void };
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
/** Redirect targets whose anonymous tokens are kept (the oldest forgotten first). */
const MAX_REDIRECT_ORIGINS = 16;
const TOKEN_BODY_LIMIT = 64 << 10;

export class MirrorUpstream {
  readonly host: UpstreamHost;
  readonly #auth: UpstreamAuth;
  /** Realms on other origins and redirect targets (CDNs): one agent, the same trust. */
  readonly #others: Agent;
  readonly #origin: string;
  readonly #opts: UpstreamOptions;
  /** Token flows of redirect targets, anonymous, each pinned to its own origin and `realms`. */
  readonly #redirectAuth = new LRUCache<string, UpstreamAuth>({ max: MAX_REDIRECT_ORIGINS });

  constructor(opts: UpstreamOptions) {
    this.#opts = opts;
    this.host = new UpstreamHost(opts.remoteUrl, 'upstream', opts);
    this.#origin = new URL(opts.remoteUrl).origin;
    this.#others = new Agent(upstreamDispatcherOptions(opts));
    this.#auth = new UpstreamAuth({
      remote: opts.remoteUrl,
      realms: opts.realms,
      credentials: opts.credentials,
      fetchToken: (url, authorization) => this.#fetchToken(url, authorization),
      log: opts.log,
    });
  }

  get url(): string {
    return this.host.url;
  }

  /**
   * Sends the request, authenticating when challenged. Returns any 2xx, 3xx or 4xx answer but
   * 401/403 (DENIED: the mirror's credentials cannot read it) and 429 (TOOMANYREQUESTS);
   * throws UNAVAILABLE (502/503/504) when the upstream cannot be reached or answers 5xx.
   */
  async request(req: MirrorRequest): Promise<UpstreamResponse> {
    const scope = req.repo === null ? '' : `repository:${req.repo}:pull`;
    let sent = this.#auth.header(scope);
    let res = await this.#send(req, scope, sent);
    if (res.statusCode === 401) {
      const challenge = parseChallenge(res.headers['www-authenticate']);
      discardBody(res.body);
      if (challenge === null) throw denied(req, 'the upstream asked for authentication this mirror cannot give');
      if (sent !== null) this.#auth.forget(scope, sent);
      sent = await this.#auth.answer(challenge, scope);
      res = await this.#send(req, scope, sent);
      if (res.statusCode === 401) {
        discardBody(res.body);
        throw denied(req, "the mirror's upstream credentials cannot read this repository");
      }
    }
    if (res.statusCode === 403) {
      discardBody(res.body);
      throw denied(req, "the mirror's upstream credentials cannot read this repository");
    }
    if (res.statusCode === 429) {
      discardBody(res.body);
      this.host.recordFailure('status 429');
      // As in DTR mode: the upstream's Retry-After, else 1 s; which host throttled is the log's.
      const retry = res.headers['retry-after'];
      throw gatewayError(
        'throttled',
        'the upstream registry is rate-limiting this mirror',
        undefined,
        typeof retry === 'string' ? retry : undefined,
      );
    }
    if (res.statusCode >= 500) {
      discardBody(res.body);
      this.host.recordFailure(`status ${res.statusCode}`);
      throw gatewayError('status', `the upstream registry answered ${res.statusCode}`);
    }
    this.host.recordSuccess();
    return res;
  }

  /**
   * Whether the upstream answers at all (`GET /v2/`): any status below 500 but 429 counts,
   * a 401 included. Retention asks this before it lets content expire.
   */
  async reachable(): Promise<boolean> {
    try {
      const res = await this.#send({ method: 'GET', path: '/v2/', repo: null }, '', null);
      discardBody(res.body);
      const ok = res.statusCode < 500 && res.statusCode !== 429;
      if (ok) this.host.recordSuccess();
      else this.host.recordFailure(`status ${res.statusCode}`);
      return ok;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.host.close();
    await this.#others.close();
  }

  async #send(req: MirrorRequest, scope: string, authorization: string | null): Promise<UpstreamResponse> {
    let url = new URL(req.path, this.#origin);
    const via = forwardedVia(req.via, this.#opts.viaName);
    let challenged = false;
    // `hops`: redirects followed; a redirect target's token request is no hop.
    for (let hops = 0; ;) {
      const same = url.origin === this.#origin;
      const headers: Record<string, string> = {
        ...req.headers,
        via,
        'user-agent': 'dtr-cache',
        'accept-encoding': 'identity',
      };
      // Credentials only ever go to the upstream's own origin; another origin gets its own token.
      const sent = same ? authorization : (this.#redirectAuth.get(url.origin)?.header(scope) ?? null);
      if (sent !== null) headers['authorization'] = sent;
      let res;
      try {
        const options = { method: req.method, path: url.pathname + url.search, headers };
        res = same
          ? await this.host.dispatcher.request(options)
          : await this.#others.request({ ...options, origin: url.origin });
      } catch (err) {
        const kind = classifyUpstreamError(err);
        this.host.recordFailure(`${kind}: ${err instanceof Error ? err.message : String(err)}`);
        this.#opts.log.warn({ upstream: url.origin, reason: kind, err: String(err) }, 'mirror upstream failed');
        throw gatewayError(kind, `the upstream registry ${url.origin} could not be reached (${kind})`, err);
      }
      if (!same && res.statusCode === 401 && !challenged) {
        // A redirect target asks for a token of its own: once per request, then its answer stands.
        const challenge = parseChallenge(res.headers['www-authenticate']);
        if (challenge?.scheme === 'bearer') {
          discardBody(res.body);
          challenged = true;
          const auth = this.#authFor(url.origin);
          if (sent !== null) auth.forget(scope, sent);
          await auth.answer(challenge, scope);
          continue;
        }
      }
      const location = res.headers['location'];
      if (!REDIRECTS.has(res.statusCode) || typeof location !== 'string') {
        return { host: this.host, statusCode: res.statusCode, headers: res.headers, body: res.body };
      }
      discardBody(res.body);
      const next = this.#redirectTarget(url, location);
      if (hops++ >= MAX_REDIRECTS || next === null) {
        throw gatewayError('status', `the upstream registry sent a redirect this mirror does not follow`);
      }
      url = next;
    }
  }

  /** The anonymous token flow of a redirect target, its realm on its own origin or in `realms`. */
  #authFor(origin: string): UpstreamAuth {
    let auth = this.#redirectAuth.get(origin);
    if (auth === undefined) {
      auth = new UpstreamAuth({
        remote: origin,
        realms: this.#opts.realms,
        credentials: null,
        fetchToken: (url, authorization) => this.#fetchToken(url, authorization),
        log: this.#opts.log,
      });
      this.#redirectAuth.set(origin, auth);
    }
    return auth;
  }

  /** https only (http only when remoteurl itself is http), and never with user info. */
  #redirectTarget(from: URL, location: string): URL | null {
    let next: URL;
    try {
      next = new URL(location, from);
    } catch {
      return null;
    }
    const plainOk = new URL(this.#origin).protocol === 'http:';
    if (next.protocol !== 'https:' && !(plainOk && next.protocol === 'http:')) return null;
    if (next.username !== '' || next.password !== '') return null;
    return next;
  }

  async #fetchToken(url: URL, authorization: string | null): Promise<TokenAnswer> {
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'dtr-cache' };
    if (authorization !== null) headers['authorization'] = authorization;
    const options = { method: 'GET' as const, path: url.pathname + url.search, headers };
    let res;
    try {
      res =
        url.origin === this.#origin
          ? await this.host.dispatcher.request(options)
          : await this.#others.request({ ...options, origin: url.origin });
    } catch (err) {
      const kind = classifyUpstreamError(err);
      this.#opts.log.warn({ realm: url.origin, reason: kind, err: String(err) }, 'mirror token service failed');
      throw gatewayError(kind, `the upstream token service could not be reached (${kind})`, err);
    }
    let body = '';
    for await (const chunk of res.body) {
      body += String(chunk);
      if (body.length > TOKEN_BODY_LIMIT) {
        discardBody(res.body);
        throw gatewayError('status', 'the upstream token service sent an oversized answer');
      }
    }
    const retryAfter = res.headers['retry-after'];
    return { statusCode: res.statusCode, body, ...(typeof retryAfter === 'string' ? { retryAfter } : {}) };
  }
}

function denied(req: MirrorRequest, message: string): RegistryError {
  return new RegistryError('DENIED', { message, ...(req.repo === null ? {} : { detail: { name: req.repo } }) });
}
