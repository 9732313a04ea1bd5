// Loaders for KeySet: where the trusted JWK Set comes from (docs/protocol.md §3).
// The HTTP client is injected, so the composition root owns TLS (custom CAs, timeouts) and
// auth stays free of network code.

import { readFile } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { JwksError } from './errors.js';
import type { JwksLoader } from './keyset.js';

/** What urlJwksLoader needs from an HTTP client: a GET returning status and body text. */
export type JwksHttpGet = (url: string) => Promise<{ statusCode: number; body: string }>;

/** A JWK Set is a few KB; anything this large is not one, and parsing it would only waste memory. */
const MAX_JWKS_CHARS = 1024 * 1024;

function parseJson(text: string, where: string): unknown {
  if (text.length > MAX_JWKS_CHARS) {
    throw new JwksError('JWKS_LOAD_FAILED', `JWK Set from ${where} is longer than ${MAX_JWKS_CHARS} characters`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new JwksError('JWKS_LOAD_FAILED', `JWK Set from ${where} is not valid JSON`, { cause: err });
  }
}

/** Reads a JWK Set file on every load, so replacing the file rotates keys (air-gapped sites). */
export function fileJwksLoader(absPath: string): JwksLoader {
  if (!isAbsolute(absPath)) throw new TypeError(`JWK Set path must be absolute: ${absPath}`);
  return async () => {
    let text: string;
    try {
      text = await readFile(absPath, 'utf8');
    } catch (err) {
      throw new JwksError('JWKS_LOAD_FAILED', `reading JWK Set file ${absPath} failed`, { cause: err });
    }
    return parseJson(text, absPath);
  };
}

/** Fetches a JWK Set with the injected GET; anything but 200 is a failed load. */
export function urlJwksLoader(url: string | URL, request: JwksHttpGet): JwksLoader {
  const href = typeof url === 'string' ? new URL(url).href : url.href;
  return async () => {
    let res: { statusCode: number; body: string };
    try {
      res = await request(href);
    } catch (err) {
      throw new JwksError('JWKS_LOAD_FAILED', `fetching JWK Set from ${href} failed`, { cause: err });
    }
    if (res.statusCode !== 200) {
      throw new JwksError('JWKS_LOAD_FAILED', `fetching JWK Set from ${href} answered HTTP ${res.statusCode}`);
    }
    return parseJson(res.body, href);
  };
}

/**
 * `<upstreamBase>/.well-known/jwks.json`: where the origin, and every cache, publishes the
 * keys it trusts (docs/protocol.md §2). The base is an absolute http(s) URL, as config validates.
 */
export function defaultJwksUrl(upstreamBase: string): string {
  const base = new URL(upstreamBase);
  if (base.protocol !== 'https:' && base.protocol !== 'http:') {
    throw new TypeError(`upstream must be an http(s) URL: ${upstreamBase}`);
  }
  base.search = '';
  base.hash = '';
  base.pathname = `${base.pathname.replace(/\/+$/, '')}/.well-known/jwks.json`;
  return base.href;
}
