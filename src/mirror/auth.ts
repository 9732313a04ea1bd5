// The mirror as a client of its upstream's authentication (distribution spec, "Token
// Authentication Specification"): a 401 with a Bearer challenge sends us to the realm for a
// token, anonymous or with the configured credentials; the token is kept per scope until
// shortly before it expires. A Basic challenge is answered with the credentials. The realm's
// host is pinned to the upstream's own origin and the configured `realms`, so an upstream
// can never make the node send its credentials, or any request, to a host of its choosing.
import { LRUCache } from 'lru-cache';
import { RegistryError } from '../errors/registry.js';
import { gatewayError } from '../errors/upstream.js';
import type { Challenge } from './challenge.js';

export interface Credentials {
  readonly username: string;
  readonly password: string;
}

/** What a token request returned: its status, (bounded) body text and any Retry-After. */
export interface TokenAnswer {
  statusCode: number;
  body: string;
  retryAfter?: string;
}

export interface AuthOptions {
  /** The upstream's base URL (remoteurl). */
  remote: string;
  /** Other origins allowed to be a realm (config `realms`). */
  realms: readonly string[];
  credentials: Credentials | null;
  /** GETs a realm URL with an optional Authorization header; throws a RegistryError when it cannot. */
  fetchToken(url: URL, authorization: string | null): Promise<TokenAnswer>;
  log: { warn(obj: object, msg: string): void };
  now?: () => number;
}

/** The spec's default lifetime, and its floor ("a token should never be returned with less than 60 seconds"). */
const DEFAULT_EXPIRES_SEC = 60;
/** A token is used for this share of its life, so it never reaches the upstream expired. */
const USE_SHARE = 0.9;
const MAX_SCOPES = 10_000;
const BASIC = '\0basic';

export class UpstreamAuth {
  readonly #opts: AuthOptions;
  readonly #now: () => number;
  readonly #allowed: ReadonlySet<string>;
  readonly #remoteProtocol: string;
  readonly #tokens = new LRUCache<string, { header: string; until: number }>({ max: MAX_SCOPES });
  readonly #pending = new Map<string, Promise<string>>();

  constructor(opts: AuthOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    const remote = new URL(opts.remote);
    this.#remoteProtocol = remote.protocol;
    this.#allowed = new Set([remote.origin, ...opts.realms.map((r) => new URL(r).origin)]);
  }

  /** The Authorization header to send for `scope`, when one is known and still fresh. */
  header(scope: string): string | null {
    const basic = this.#tokens.get(BASIC);
    if (basic !== undefined) return basic.header;
    const t = this.#tokens.get(scope);
    if (t === undefined) return null;
    if (this.#now() < t.until) return t.header;
    this.#tokens.delete(scope);
    return null;
  }

  /** Drops what was sent with a request the upstream refused, so the next one asks again. */
  forget(scope: string, sent: string): void {
    if (this.#tokens.get(scope)?.header === sent) this.#tokens.delete(scope);
    if (this.#tokens.get(BASIC)?.header === sent) this.#tokens.delete(BASIC);
  }

  /** Answers a challenge with a new Authorization header; concurrent callers for one scope share the fetch. */
  answer(challenge: Challenge, scope: string): Promise<string> {
    if (challenge.scheme === 'basic') return Promise.resolve(this.#basic());
    const key = scope;
    const running = this.#pending.get(key);
    if (running !== undefined) return running;
    const p = this.#bearer(challenge, scope).finally(() => this.#pending.delete(key));
    this.#pending.set(key, p);
    return p;
  }

  #basic(): string {
    const c = this.#opts.credentials;
    if (c === null) {
      throw new RegistryError('DENIED', {
        message: 'the upstream asks for a user name and password, and this mirror has none configured',
      });
    }
    const header = `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
    this.#tokens.set(BASIC, { header, until: Number.POSITIVE_INFINITY });
    return header;
  }

  async #bearer(challenge: Challenge, scope: string): Promise<string> {
    const url = this.#realm(challenge.params['realm']);
    const service = challenge.params['service'];
    if (service !== undefined) url.searchParams.set('service', service);
    const wanted = scope !== '' ? scope : challenge.params['scope'];
    if (wanted !== undefined && wanted !== '') url.searchParams.set('scope', wanted);
    const c = this.#opts.credentials;
    const authorization = c === null ? null : `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
    const answer = await this.#opts.fetchToken(url, authorization);
    if (answer.statusCode === 401 || answer.statusCode === 403) {
      this.#opts.log.warn(
        { realm: url.origin + url.pathname, status: answer.statusCode, user: c?.username ?? null },
        'the upstream token service refused the mirror',
      );
      throw new RegistryError('DENIED', { message: "the upstream refused this mirror's credentials" });
    }
    // A throttling token service throttles the pull: 429 with its Retry-After, as the registry's.
    if (answer.statusCode === 429)
      throw gatewayError(
        'throttled',
        'the upstream token service is rate-limiting this mirror',
        undefined,
        answer.retryAfter,
      );
    if (answer.statusCode !== 200)
      throw gatewayError('status', `the upstream token service answered ${answer.statusCode}`);
    const parsed = parseTokenBody(answer.body);
    if (parsed === null) throw gatewayError('status', 'the upstream token service sent no token');
    const life = Math.max(DEFAULT_EXPIRES_SEC, parsed.expiresIn ?? DEFAULT_EXPIRES_SEC) * 1000;
    const header = `Bearer ${parsed.token}`;
    this.#tokens.set(scope, { header, until: this.#now() + life * USE_SHARE });
    return header;
  }

  /** The challenge's realm, if it is one this upstream may use; a 502 otherwise (the upstream misbehaves). */
  #realm(realm: string | undefined): URL {
    let url: URL;
    try {
      url = new URL(realm ?? '');
    } catch {
      throw gatewayError('status', 'the upstream sent a Bearer challenge without a valid realm');
    }
    const secure = url.protocol === 'https:' || (url.protocol === 'http:' && this.#remoteProtocol === 'http:');
    if (!secure || url.username !== '' || url.password !== '' || !this.#allowed.has(url.origin)) {
      this.#opts.log.warn(
        { realm: url.origin, allowed: [...this.#allowed] },
        'upstream token realm is not allowed for this mirror; add its origin to realms',
      );
      throw gatewayError('status', `the upstream's token realm ${url.origin} is not allowed for this mirror`);
    }
    return url;
  }
}

/** `{"token": …}` or `{"access_token": …}` (OAuth2 form), with an optional `expires_in`. */
function parseTokenBody(text: string): { token: string; expiresIn: number | null } | null {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof body !== 'object' || body === null) return null;
  const b = body as { token?: unknown; access_token?: unknown; expires_in?: unknown };
  const token = typeof b.token === 'string' && b.token !== '' ? b.token : b.access_token;
  // A token goes into a header: anything outside visible ASCII would break it.
  if (typeof token !== 'string' || token === '' || !/^[\x21-\x7e]+$/.test(token)) return null;
  const expiresIn = typeof b.expires_in === 'number' && Number.isFinite(b.expires_in) ? b.expires_in : null;
  return { token, expiresIn };
}
