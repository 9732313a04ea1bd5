// The origin's content-cache API (docs/protocol.md §7): registered caches, and each
// account's selected cache. Admin Basic credentials for the registry of caches;
// self or admin for account settings.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseBasic, type UserDb } from './auth.js';
import { MockError } from './errors.js';

export interface ContentCache {
  id: string;
  name: string;
  host: string;
}

export class ContentCaches {
  private readonly byId = new Map<string, ContentCache>();
  /** user → selected cache name */
  private readonly selected = new Map<string, string>();

  add(name: string, host: string): ContentCache {
    if (typeof name !== 'string' || name.trim() === '')
      throw new MockError('INVALID_REQUEST', { detail: 'name is required' });
    let url: URL;
    try {
      url = new URL(host);
    } catch {
      throw new MockError('INVALID_REQUEST', { detail: 'host must be an absolute http(s) URL' });
    }
    if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.hostname === '') {
      throw new MockError('INVALID_REQUEST', { detail: 'host must be an absolute http(s) URL' });
    }
    if (this.byName(name) !== undefined) throw new MockError('CONFLICT', { message: `content cache ${name} exists` });
    const c = { id: randomUUID(), name, host: host.replace(/\/+$/, '') };
    this.byId.set(c.id, c);
    return { ...c };
  }

  list(): ContentCache[] {
    return [...this.byId.values()].map((c) => ({ ...c }));
  }

  get(id: string): ContentCache | undefined {
    const c = this.byId.get(id);
    return c === undefined ? undefined : { ...c };
  }

  byName(name: string): ContentCache | undefined {
    return [...this.byId.values()].find((c) => c.name === name);
  }

  remove(id: string): boolean {
    const c = this.byId.get(id);
    if (c === undefined) return false;
    this.byId.delete(id);
    for (const [user, name] of this.selected) if (name === c.name) this.selected.delete(user);
    return true;
  }

  /** Selects `name` (or none) for `user`; an unregistered cache is a 400. */
  select(user: string, name: string | null): void {
    if (name === null) {
      this.selected.delete(user);
      return;
    }
    if (this.byName(name) === undefined)
      throw new MockError('INVALID_REQUEST', { detail: `no content cache named ${name}` });
    this.selected.set(user, name);
  }

  selectedName(user: string): string | null {
    return this.selected.get(user) ?? null;
  }

  /** The cache a user's blob pulls are redirected to, if any. */
  cacheFor(user: string): ContentCache | undefined {
    const name = this.selected.get(user);
    return name === undefined ? undefined : this.byName(name);
  }
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = value === undefined ? '' : JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** The authenticated user of a Basic request, or a 401. */
export function basicUser(req: IncomingMessage, users: UserDb): string {
  const creds = parseBasic(req);
  if (creds === undefined || !users.check(creds[0], creds[1])) {
    throw new MockError('UNAUTHORIZED', { headers: { 'WWW-Authenticate': 'Basic realm="dtr-mock"' } });
  }
  return creds[0];
}

export function requireAdmin(req: IncomingMessage, users: UserDb): string {
  const user = basicUser(req, users);
  if (!users.isAdmin(user)) throw new MockError('DENIED', { message: 'admin rights required' });
  return user;
}

function parseJson(body: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(body);
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through to the 400 below
  }
  throw new MockError('INVALID_REQUEST', { detail: 'body must be a JSON object' });
}

function decodeSegment(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new MockError('INVALID_REQUEST', { detail: 'malformed percent-encoding' });
  }
}

/** Routes `/api/v0/...`; returns false when the path is not part of this API. */
export function handleCachesApi(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  body: string,
  caches: ContentCaches,
  users: UserDb,
): boolean {
  const method = req.method ?? 'GET';
  if (path === '/api/v0/content_caches') {
    requireAdmin(req, users);
    if (method === 'GET') {
      json(res, 200, caches.list());
    } else if (method === 'POST') {
      const b = parseJson(body);
      if (typeof b['name'] !== 'string' || typeof b['host'] !== 'string') {
        throw new MockError('INVALID_REQUEST', { detail: 'name and host are required strings' });
      }
      json(res, 201, caches.add(b['name'], b['host']));
    } else {
      throw new MockError('UNSUPPORTED');
    }
    return true;
  }
  let m = /^\/api\/v0\/content_caches\/([^/]+)$/.exec(path);
  if (m !== null) {
    requireAdmin(req, users);
    const id = decodeSegment(m[1] ?? '');
    if (method === 'GET') {
      const c = caches.get(id);
      if (c === undefined) throw new MockError('NOT_FOUND', { message: 'no such content cache' });
      json(res, 200, c);
    } else if (method === 'DELETE') {
      if (!caches.remove(id)) throw new MockError('NOT_FOUND', { message: 'no such content cache' });
      res.writeHead(204).end();
    } else {
      throw new MockError('UNSUPPORTED');
    }
    return true;
  }
  m = /^\/api\/v0\/accounts\/([^/]+)\/settings$/.exec(path);
  if (m !== null) {
    const who = basicUser(req, users);
    const account = decodeSegment(m[1] ?? '');
    if (who !== account && !users.isAdmin(who)) throw new MockError('DENIED', { message: 'not your account' });
    if (!users.has(account)) throw new MockError('NOT_FOUND', { message: 'no such account' });
    if (method === 'PATCH' || method === 'PUT') {
      const b = parseJson(body);
      const v = b['contentCache'];
      if (v !== null && typeof v !== 'string')
        throw new MockError('INVALID_REQUEST', { detail: 'contentCache: string or null' });
      caches.select(account, v === '' ? null : v);
    } else if (method !== 'GET') {
      throw new MockError('UNSUPPORTED');
    }
    json(res, 200, { contentCache: caches.selectedName(account) });
    return true;
  }
  return false;
}
