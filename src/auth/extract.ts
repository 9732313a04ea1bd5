// Where a redirect token travels (docs/protocol.md §2): `?token=` on the client's redirected
// request, because clients drop Authorization on a cross-host redirect; `Authorization:
// Bearer` when a cache forwards the request to its upstream. Caches accept both.

/** RFC 6750 §2.1 b64token: the characters a Bearer credential may hold. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
/** RFC 9110 §11.1: the auth-scheme is case-insensitive; one or more spaces follow it. */
const BEARER = /^bearer +(\S+)\s*$/i;

/**
 * The token of a request, or null when it carries none. The query wins when both are
 * present: it is what the origin minted for exactly this redirected URL.
 */
export function tokenFromRequest(searchParams: URLSearchParams, authorization: string | undefined): string | null {
  const fromQuery = searchParams.get('token');
  if (fromQuery !== null && fromQuery !== '') return fromQuery;
  if (authorization === undefined) return null;
  const match = BEARER.exec(authorization.trim());
  const credential = match?.[1];
  // Anything else (Basic, a malformed Bearer) is no redirect token: the verifier answers
  // with the challenge that sends the client to the origin's token service.
  if (credential === undefined || !B64TOKEN.test(credential)) return null;
  return credential;
}
