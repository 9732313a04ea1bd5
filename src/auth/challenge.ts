// The Bearer challenge sent with a 401 (RFC 6750 §3, RFC 9110 §11.6.1). It points the client
// at the origin's token service (docs/protocol.md §2), as distribution's token auth does.

/** RFC 6750 §3.1 error codes; a cache uses invalid_token for tokens it refused. */
export type BearerError = 'invalid_request' | 'invalid_token' | 'insufficient_scope';

export interface ChallengeParams {
  /** The origin's token endpoint: see realmFor. */
  realm: string;
  /** The service name clients ask the realm for (the origin's name). */
  service: string;
  error?: BearerError;
}

/** `<originhost>/auth/token`, the origin's token endpoint. */
export function realmFor(originHost: string): string {
  return `${originHost.replace(/\/+$/, '')}/auth/token`;
}

/**
 * A quoted-string (RFC 9110 §5.6.4): `"` and `\` become quoted-pairs. Characters a header
 * value cannot carry (controls such as CR/LF, and non-ASCII) are dropped, so a configured
 * value can neither break the header nor make Node refuse to send it.
 */
function quote(value: string): string {
  const visible = value.replace(/[^\x20-\x7e]/g, '');
  return `"${visible.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** `Bearer realm="…",service="…"[,error="…"]`, the form docker and containerd parse. */
export function bearerChallenge(params: ChallengeParams): string {
  let value = `Bearer realm=${quote(params.realm)},service=${quote(params.service)}`;
  if (params.error !== undefined) value += `,error=${quote(params.error)}`;
  return value;
}
