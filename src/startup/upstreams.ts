// The upstream side of a process: the CA trust, the chain of upstream hosts, and the key
// set that verifies redirect tokens (fetched from the upstreams unless `jwks` says where).
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import { realmFor } from '../auth/challenge.js';
import { defaultJwksUrl, fileJwksLoader, urlJwksLoader, type JwksHttpGet } from '../auth/jwks-source.js';
import { KeySet, type JwksLoader, type KeySetOptions } from '../auth/keyset.js';
import { TokenVerifier } from '../auth/token.js';
import type { Config } from '../config/types.js';
import { UpstreamChain } from '../upstream/chain.js';
import { upstreamDispatcherOptions } from '../upstream/host.js';
import { loadUpstreamTrust } from '../upstream/trust.js';
import { keysUnavailable } from './errors.js';

export interface Upstreams {
  readonly chain: UpstreamChain;
  readonly keys: KeySet;
  readonly verifier: TokenVerifier;
  close(): Promise<void>;
}

/**
 * `via`: this node's name in `Via` (via.ts), the same in every process of the node;
 * `keyTimings`: tests shorten them; `nodeKeys`: for a process replacing one that died, the
 * key set the node's other processes trust, taken when the first load fails.
 */
export async function connectUpstreams(
  config: Config,
  log: Logger,
  via: string,
  keyTimings: Omit<KeySetOptions, 'log' | 'now'>,
  nodeKeys: unknown = null,
): Promise<Upstreams> {
  const secureContext = await loadUpstreamTrust(config.downstream.cas);
  const t = config.downstream.timeouts;
  const hostOptions = {
    secureContext,
    connectTimeoutMs: t.connectMs,
    headersTimeoutMs: t.headersMs,
    bodyIdleTimeoutMs: t.bodyIdleMs,
  };
  const chain = new UpstreamChain(config.downstream.upstreams, { ...hostOptions, viaName: via, log });
  // The key set comes from the same hosts, over the same kind of connection.
  const jwksAgent = new Agent(upstreamDispatcherOptions(hostOptions));
  const keys = new KeySet(jwksLoader(config, chain, jwksAgent), { ...keyTimings, log });
  // A pure mirror (no downstream upstreams) verifies no redirect tokens: no keys to load,
  // and the verifier, never asked, names no origin.
  if (chain.all.length > 0) {
    try {
      await keys.start().catch(async (err: unknown) => {
        // A replacement while the origin is down: the node's other processes verify tokens
        // with these keys, so this one may too; its refreshes go on asking the upstreams.
        if (nodeKeys === null) throw err;
        await keys.startFrom(nodeKeys);
        log.warn({ err, kids: keys.size }, 'trusted keys could not be loaded: using the keys the node trusts');
      });
    } catch (err) {
      // The dispatcher keeps sockets open; the process is about to exit with the cause.
      await Promise.allSettled([chain.close(), jwksAgent.close()]);
      throw keysUnavailable(config, err);
    }
  }
  const originBase = config.downstream.upstreams.origin ?? chain.hosts[0]?.url ?? 'https://dtr-mode-off.invalid';
  const verifier = new TokenVerifier({
    keySet: keys,
    realm: realmFor(originBase),
    service: new URL(originBase).host,
    issuer: config.downstream.issuer,
  });
  return {
    chain,
    keys,
    verifier,
    async close() {
      keys.close();
      await chain.close();
      await jwksAgent.close();
    },
  };
}

/**
 * Where trusted keys come from: `jwks` (a file or URL), or else the upstreams' own
 * /.well-known/jwks.json, first answer wins: a tier with no route to the origin takes the
 * keys its upstream cache trusts (docs/protocol.md §2).
 */
function jwksLoader(config: Config, chain: UpstreamChain, agent: Agent): JwksLoader {
  const get: JwksHttpGet = async (url) => {
    const res = await request(url, { dispatcher: agent, headers: { accept: 'application/json' } });
    return { statusCode: res.statusCode, body: await res.body.text() };
  };
  const source = config.downstream.jwks;
  if (source !== null) return source.startsWith('/') ? fileJwksLoader(source) : urlJwksLoader(source, get);
  const loaders = chain.all.map((h) => urlJwksLoader(defaultJwksUrl(h.url), get));
  return async () => {
    let lastErr: unknown = new Error('no upstream configured');
    for (const load of loaders) {
      try {
        return await load();
      } catch (err) {
        lastErr = err;
      }
    }
    throw lastErr;
  };
}
