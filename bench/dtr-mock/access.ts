// Authorization of registry (/v2/) requests at the mock origin: registry bearer
// tokens for clients, redirect tokens (docs/protocol.md §2, §4 last point) for caches.
import type { IncomingMessage } from 'node:http';
import { allows, parseBearer } from './auth.js';
import type { MockContext, RequestState } from './context.js';
import { MockError } from './errors.js';

export type Principal =
  /** A client with a registry token (the redirect decision looks at `sub`). */
  | { kind: 'registry'; sub: string }
  /** A cache (or redirected client) with a redirect token for this blob. */
  | { kind: 'redirect'; sub: string }
  /** `tokens: false` mode: anyone may pull. */
  | { kind: 'open' };

/** The 401 challenge (distribution token auth spec, "How to authenticate"). */
export function challenge(ctx: MockContext, scope?: string, error?: string): Record<string, string> {
  let v = `Bearer realm="${ctx.baseUrl}/auth/token",service="${ctx.service}"`;
  if (scope !== undefined) v += `,scope="${scope}"`;
  if (error !== undefined) v += `,error="${error}"`;
  return { 'WWW-Authenticate': v };
}

export interface AuthorizeOptions {
  /** Accept redirect tokens (`?token=` or Bearer): blob GET/HEAD only. */
  redirectDigest?: string;
  /** Gets the token's user as soon as it is known, so denied requests are logged with it. */
  rq?: RequestState;
}

/**
 * Resolves who may do `action` on repository `name`, or throws the 401/403.
 * A registry token that lacks the right gets 403 when the user truly lacks it,
 * else 401 + `insufficient_scope` so the client fetches a token for this scope.
 */
export async function authorize(
  ctx: MockContext,
  req: IncomingMessage,
  url: URL,
  name: string,
  action: 'pull' | 'push',
  o: AuthorizeOptions = {},
): Promise<Principal> {
  const scope = `repository:${name}:${action === 'push' ? 'pull,push' : 'pull'}`;
  const queryToken = o.redirectDigest !== undefined ? url.searchParams.get('token') : null;
  if (queryToken !== null && o.redirectDigest !== undefined) {
    return redirectPrincipal(ctx, queryToken, name, o.redirectDigest, scope);
  }
  if (!ctx.knobs.tokens && action === 'pull') return { kind: 'open' };
  const bearer = parseBearer(req);
  if (bearer === undefined) {
    throw new MockError('UNAUTHORIZED', { headers: challenge(ctx, scope) });
  }
  const p = await ctx.tokens.verify(bearer);
  if (p === undefined) {
    if (o.redirectDigest !== undefined) return redirectPrincipal(ctx, bearer, name, o.redirectDigest, scope);
    throw new MockError('UNAUTHORIZED', { message: 'invalid token', headers: challenge(ctx, scope, 'invalid_token') });
  }
  if (o.rq !== undefined) o.rq.user = p.sub === '' ? null : p.sub;
  if (allows(p.access, name, action)) return { kind: 'registry', sub: p.sub };
  if (p.sub !== '' && !ctx.users.rights(p.sub, name).has(action)) {
    throw new MockError('DENIED', { detail: [{ Type: 'repository', Name: name, Action: action }] });
  }
  throw new MockError('UNAUTHORIZED', {
    message: 'insufficient scope',
    headers: challenge(ctx, scope, 'insufficient_scope'),
    detail: [{ Type: 'repository', Name: name, Action: action }],
  });
}

async function redirectPrincipal(
  ctx: MockContext,
  token: string,
  name: string,
  digest: string,
  scope: string,
): Promise<Principal> {
  const r = await ctx.keys.verify(token, name, digest);
  if (r.ok) return { kind: 'redirect', sub: r.sub };
  if (r.status === 403) throw new MockError('DENIED', { message: r.reason });
  throw new MockError('UNAUTHORIZED', {
    message: `invalid redirect token: ${r.reason}`,
    headers: challenge(ctx, scope, 'invalid_token'),
  });
}

/** The user a principal stands for, for the request log. */
export function principalUser(p: Principal): string | null {
  return p.kind === 'open' ? null : p.sub === '' ? null : p.sub;
}
