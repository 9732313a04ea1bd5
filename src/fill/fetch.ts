// What a fill downloads from. A fill knows one blob and asks for byte ranges of it; where they
// come from (the DTR chain with redirect tokens, or a mirrored registry with its own
// credentials) is the fetch's business, so one fill serves both modes.
import type { Digest } from '../store/digest.js';
import type { UpstreamChain, UpstreamResponse } from '../upstream/chain.js';
import type { UpstreamHost } from '../upstream/host.js';

export interface FetchAttempt {
  /** The first byte wanted: a resume sends `Range: bytes=<offset>-`. */
  offset: number;
  /** The newest credential among the clients waiting (a DTR redirect token); a mirror ignores it. */
  token: string;
  /** The repository that token is for: the request's path names it (a mirror uses its own). */
  name: string;
  /** Hosts that failed this fill: asked only after every other host. */
  avoid: ReadonlySet<UpstreamHost>;
  /** Hosts that failed this fill for good: not asked. */
  exclude: ReadonlySet<UpstreamHost>;
}

export interface BlobFetch {
  /** The repository the blob was asked under (logs, upstream paths). */
  readonly name: string;
  readonly digest: Digest;
  /**
   * One GET of the blob from the first host that gives an answer (DTR mode: a 200, a 206, or
   * a 401, 403, 404 or 416 about the blob; upstream/chain.ts), returned for the fill to check.
   * Throws a RegistryError (UNAVAILABLE, 502/503/504) when no host answers.
   */
  get(attempt: FetchAttempt): Promise<UpstreamResponse>;
}

/**
 * DTR mode: the upstream chain, with a waiting client's redirect token forwarded and Via
 * appended. The path names that client's repository: clients of one blob may have asked
 * under different ones, and a token is only good for its own.
 */
export function chainFetch(chain: UpstreamChain, name: string, digest: Digest, via: string | undefined): BlobFetch {
  return {
    name,
    digest,
    get: ({ offset, token, name: tokenName, avoid, exclude }) =>
      chain.request({ method: 'GET', name: tokenName, digest: digest.value, token, via, offset, avoid, exclude }),
  };
}
