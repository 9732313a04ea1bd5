// Listen addresses and URLs, checked the way Go's net.SplitHostPort and our upstream client
// need them. Pure functions returning null on invalid input; the caller reports the key path.
import { isIP } from 'node:net';

export const ADDR_EXPECTED = 'a listen address host:port such as :5000, 0.0.0.0:443 or [::1]:5000';
export const URL_EXPECTED =
  'an absolute http:// or https:// URL with no path, query or credentials, such as https://dtr.example.org';

export interface ListenAddr {
  /** '' = all interfaces (Go reads ":5000" so). IPv6 without brackets. */
  readonly host: string;
  readonly port: number;
}

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** `:5000`, `host:5000`, `0.0.0.0:443`, `[::1]:5000`. Port 0 is allowed (any free port, for tests). */
export function parseListenAddr(addr: string): ListenAddr | null {
  let host: string;
  let portText: string;
  if (addr.startsWith('[')) {
    const close = addr.indexOf(']');
    if (close < 0 || addr[close + 1] !== ':') return null;
    host = addr.slice(1, close);
    portText = addr.slice(close + 2);
    if (isIP(host) !== 6) return null;
  } else {
    const colon = addr.lastIndexOf(':');
    if (colon < 0) return null;
    host = addr.slice(0, colon);
    portText = addr.slice(colon + 1);
    // An unbracketed IPv6 address is ambiguous; Go rejects it ("too many colons").
    if (host.includes(':')) return null;
    if (host !== '' && isIP(host) !== 4 && !HOSTNAME.test(host)) return null;
  }
  // Digits only: Go also resolves service names (":http"), which nobody should rely on here.
  if (!/^\d{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  if (port > 65535) return null;
  return { host, port };
}

/**
 * Validates an absolute http(s) URL naming a host only, and normalises it as WHATWG URL does
 * (lower-case host, default port dropped) with no trailing slash: `https://dtr.example.org`.
 */
export function normaliseBaseUrl(text: string, schemes: readonly string[] = ['http:', 'https:']): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (!schemes.includes(url.protocol) || url.hostname === '') return null;
  if (url.username !== '' || url.password !== '') return null;
  if (url.pathname !== '/' && url.pathname !== '') return null;
  // `new URL` drops an empty "?" or "#"; reject them as written.
  if (url.search !== '' || url.hash !== '' || /[?#]/.test(text)) return null;
  return `${url.protocol}//${url.host}`;
}
