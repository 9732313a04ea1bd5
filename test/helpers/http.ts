// Test clients over real TLS: undici for HTTP/1.1 and HTTP/2 (allowH2), hashing what arrives.
import { createHash } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { Agent, request } from 'undici';

export interface Fetched {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  sha256: string;
  /** Set when the body stream broke (reset or truncated) instead of ending cleanly. */
  error: Error | null;
}

export function agentFor(ca: string, h2: boolean): Agent {
  // For HTTP/2, undici's `pipelining` is the number of concurrent streams per connection
  // (with the default of 1 it runs one request at a time on each).
  return new Agent({
    connect: { ca, rejectUnauthorized: true },
    allowH2: h2,
    connections: 64,
    pipelining: h2 ? 100 : 0,
  });
}

export async function fetchBlob(
  agent: Agent,
  url: string,
  opts: {
    method?: 'GET' | 'HEAD';
    headers?: Record<string, string>;
    /** Called with the body bytes received so far, after each chunk. */
    received?: (bytes: number) => void;
  } = {},
): Promise<Fetched> {
  let res: Awaited<ReturnType<typeof request>>;
  try {
    res = await request(url, { dispatcher: agent, method: opts.method ?? 'GET', headers: opts.headers ?? {} });
  } catch (err) {
    // No response at all (connection closed before headers): status 0.
    return {
      status: 0,
      headers: {},
      body: Buffer.alloc(0),
      sha256: '',
      error: err instanceof Error ? err : new Error(String(err)),
    };
  }
  const chunks: Buffer[] = [];
  let error: Error | null = null;
  let received = 0;
  try {
    for await (const chunk of res.body) {
      chunks.push(chunk as Buffer);
      received += (chunk as Buffer).length;
      opts.received?.(received);
    }
  } catch (err) {
    error = err instanceof Error ? err : new Error(String(err));
  }
  const body = Buffer.concat(chunks);
  return {
    status: res.statusCode,
    headers: res.headers,
    body,
    sha256: createHash('sha256').update(body).digest('hex'),
    error,
  };
}

export function sha256(buf: Buffer | string): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** The parts of a `multipart/byteranges` body (RFC 9110 §14.6): each part's Content-Range and bytes. */
export function byteranges(contentType: string, body: Buffer): { contentRange: string; bytes: Buffer }[] {
  const m = /^multipart\/byteranges; boundary=(\S+)$/.exec(contentType);
  if (m === null) throw new Error(`not multipart/byteranges: ${contentType}`);
  const text = body.toString('latin1');
  if (!text.endsWith(`--${m[1]}--\r\n`)) throw new Error('no closing boundary');
  return text
    .split(`--${m[1]}`)
    .slice(1, -1)
    .map((part) => {
      const [head = '', ...rest] = part.split('\r\n\r\n');
      const contentRange = /Content-Range: (.*)/.exec(head)?.[1]?.trim() ?? '';
      return { contentRange, bytes: Buffer.from(rest.join('\r\n\r\n').slice(0, -2), 'latin1') };
    });
}

/**
 * One HTTP/1.1 request through node:https, for what undici will not send (an absolute-form
 * target, an Expect field): `target` is written as the request target, as given.
 */
export function http1Raw(
  origin: string,
  target: string,
  ca: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Buffer }> {
  const { hostname, port } = new URL(origin);
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: hostname, port, path: target, ca, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
