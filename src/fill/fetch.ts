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
   * One GET of the blob from the first host that answers with anything but a 5xx; the
   * response is returned whatever its status, for the fill to check. Throws a RegistryError
   * (UNAVAILABLE, 502/503/504) when no host answers.
   */
  get(attempt: FetchAttempt): Promise<UpstreamResponse>;
}

/** DTR mode: the upstream chain, with the client's redirect token forwarded and Via appended. */
export function chainFetch(chain: UpstreamChain, name: string, digest: Digest, via: string | undefined): BlobFetch {
  return {
    name,
    digest,
    get: ({ offset, token, avoid, exclude }) =>
      chain.request({ method: 'GET', name, digest: digest.value, token, via, offset, avoid, exclude }),
  };
}
