// What the front door must answer, written from docs/protocol.md §2/§5 and the README's routes,
// independently of src/server/router.ts: the path is matched raw (never decoded), the
// name and digest grammars come first, then the method, the Via loop guard, the token.
import type { RegistryCode } from '../../src/errors/registry.js';

/** docs/protocol.md §5, the distribution name grammar, at most 255 characters. */
const NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const DIGEST = /^(?:sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$/;

export type Expected =
  | { kind: 'base' }
  | { kind: 'jwks' }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'error'; code: RegistryCode };

export interface World {
  /** Digests the origin holds. */
  known: ReadonlySet<string>;
  /**
   * What each minted token grants: its repository and digest (all are within their
   * lifetime); `pull: false` for one whose entry for the repository lacks pull.
   */
  grants: ReadonlyMap<string, { name: string; digest: string; pull?: boolean }>;
  /** This cache's name in Via. */
  viaName: string;
}

export interface Probe {
  method: string;
  target: string;
  /** Lower-case names; a repeated field is joined with ", " as Node does. */
  authorization?: string | undefined;
  via?: string | undefined;
}

/** RFC 6750 §2.1: `Bearer` (any case), spaces, a b64token. */
export function bearer(authorization: string | undefined): string | null {
  const m = /^bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(authorization?.trim() ?? '');
  return m?.[1] ?? null;
}

export function expectedAnswer(p: Probe, w: World): Expected {
  // RFC 9112 §3.2.2: the absolute-form's path and query are the route.
  const target = p.target.replace(/^https?:\/\/[^/?]*/i, '') || '/';
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const pull = p.method === 'GET' || p.method === 'HEAD';
  if (path === '/v2/' || path === '/v2') return pull ? { kind: 'base' } : { kind: 'error', code: 'UNSUPPORTED' };
  if (path === '/.well-known/jwks.json') return pull ? { kind: 'jwks' } : { kind: 'error', code: 'UNSUPPORTED' };
  const at = path.lastIndexOf('/blobs/');
  if (!path.startsWith('/v2/') || at < 4) return { kind: 'error', code: 'NOT_FOUND' };
  // The method first: a push step (`POST …/blobs/uploads/`) is refused as a method.
  if (!pull) return { kind: 'error', code: 'UNSUPPORTED' };
  const name = path.slice(4, at);
  const digest = path.slice(at + '/blobs/'.length);
  if (name.length > 255 || !NAME.test(name)) return { kind: 'error', code: 'NAME_INVALID' };
  if (!DIGEST.test(digest)) return { kind: 'error', code: 'DIGEST_INVALID' };
  const self = (p.via ?? '').split(',').some((hop) => hop.trim().split(/\s+/)[1] === w.viaName);
  if (self) return { kind: 'error', code: 'UNAVAILABLE' };
  const fromQuery = new URLSearchParams(q < 0 ? '' : target.slice(q + 1)).get('token');
  const token = fromQuery !== null && fromQuery !== '' ? fromQuery : bearer(p.authorization);
  const grant = token === null ? undefined : w.grants.get(token);
  if (grant === undefined || grant.digest !== digest) return { kind: 'error', code: 'UNAUTHORIZED' };
  // A token minted for another repository is not this URL's.
  if (grant.name !== name) return { kind: 'error', code: 'UNAUTHORIZED' };
  if (grant.pull === false) return { kind: 'error', code: 'DENIED' };
  return w.known.has(digest) ? { kind: 'blob', name, digest } : { kind: 'error', code: 'BLOB_UNKNOWN' };
}
