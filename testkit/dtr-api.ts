// A client for the origin's HTTP API as an operator uses it (docs/protocol.md §7): register
// a content cache and select it in a user's settings, with Basic credentials. Plus the
// DTR mock's own /_mock/ endpoints (stats, knobs), for the demo and tests.
import { Agent, request, type Dispatcher } from 'undici';
import type { MockConfigPatch, StatsSnapshot } from '../bench/dtr-mock/index.js';

export interface Credentials {
  user: string;
  password: string;
}

export class DtrApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'DtrApiError';
  }
}

export interface ContentCacheRecord {
  id: string;
  name: string;
  host: string;
}

export class DtrApi {
  private readonly agent: Agent;

  /** `ca`: PEM trusted for the origin's TLS. */
  constructor(
    readonly baseUrl: string,
    ca?: string,
  ) {
    this.agent = new Agent(ca === undefined ? {} : { connect: { ca } });
  }

  close(): Promise<void> {
    return this.agent.close();
  }

  private async call<T>(
    method: Dispatcher.HttpMethod,
    path: string,
    creds: Credentials | undefined,
    body?: unknown,
  ): Promise<T> {
    const headers: Record<string, string> = {};
    if (creds !== undefined)
      headers['authorization'] = `Basic ${Buffer.from(`${creds.user}:${creds.password}`).toString('base64')}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await request(`${this.baseUrl}${path}`, {
      method,
      headers,
      dispatcher: this.agent,
      body: body === undefined ? null : JSON.stringify(body),
    });
    const text = await res.body.text();
    if (res.statusCode >= 300)
      throw new DtrApiError(res.statusCode, `${method} ${path} answered ${res.statusCode}: ${text.slice(0, 300)}`);
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  /** `POST /api/v0/content_caches` (admin). */
  registerContentCache(admin: Credentials, name: string, host: string): Promise<ContentCacheRecord> {
    return this.call('POST', '/api/v0/content_caches', admin, { name, host });
  }

  /** `PATCH /api/v0/accounts/{user}/settings` (the user or an admin); null clears it. */
  async selectContentCache(as: Credentials, user: string, cacheName: string | null): Promise<string | null> {
    const r = await this.call<{ contentCache: string | null }>(
      'PATCH',
      `/api/v0/accounts/${encodeURIComponent(user)}/settings`,
      as,
      { contentCache: cacheName },
    );
    return r.contentCache;
  }

  /** `GET /_mock/stats` (the mock only). */
  mockStats(): Promise<StatsSnapshot> {
    return this.call('GET', '/_mock/stats', undefined);
  }

  /** `POST /_mock/config` (the mock only, admin): latency, bandwidth, faults. */
  configureMock(admin: Credentials, patch: MockConfigPatch): Promise<unknown> {
    return this.call('POST', '/_mock/config', admin, patch);
  }
}
