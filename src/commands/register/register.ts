// `dtr-cache register`: tells the origin about this cache through its content-cache API
// (docs/protocol.md §7) and, optionally, selects it for some users. Idempotent: a cache already
// registered under the same name and host is reported, not an error; the same name with
// another host is refused (the API has no update, and deleting would clear every user's
// selection).
import type { SecureContext } from 'node:tls';
import { RegisterError } from './errors.js';
import { OriginApi, unexpectedAnswer, type Credentials } from './origin-api.js';

export { readCredentials } from './credentials.js';
export { RegisterError } from './errors.js';

export interface RegisterOptions {
  /** The origin's base URL (DTR). */
  origin: string;
  name: string;
  /** This cache's URL as clients reach it (http.host). */
  host: string;
  users: readonly string[];
  credentials: Credentials;
  /** Trust for the origin's TLS: the system roots plus `cas` (upstream/trust.ts). */
  secureContext: SecureContext;
  say(line: string): void;
}

interface ContentCache {
  id: string;
  name: string;
  host: string;
}

export async function register(opts: RegisterOptions): Promise<void> {
  const api = new OriginApi(opts.origin, opts.credentials, opts.secureContext);
  try {
    opts.say(`origin: ${api.base}`);
    await ensureRegistered(api, opts);
    for (const user of opts.users) await selectFor(api, user, opts);
  } finally {
    await api.close();
  }
}

/** Registers the cache, or finds it registered already under the same name and host. */
async function ensureRegistered(api: OriginApi, opts: RegisterOptions): Promise<void> {
  const created = await api.call('POST', '/api/v0/content_caches', { name: opts.name, host: opts.host });
  if (created.status === 201) {
    const c = created.json as ContentCache;
    opts.say(`registered content cache "${c.name}" at ${c.host} (id ${c.id})`);
    return;
  }
  if (created.status !== 409) throw unexpectedAnswer(`registering "${opts.name}"`, created);
  const list = await api.call('GET', '/api/v0/content_caches');
  if (list.status !== 200 || !Array.isArray(list.json)) throw unexpectedAnswer('listing content caches', list);
  const existing = (list.json as ContentCache[]).find((c) => c.name === opts.name);
  if (existing === undefined) throw unexpectedAnswer(`registering "${opts.name}"`, created);
  if (!sameHost(existing.host, opts.host)) {
    throw new RegisterError(
      'HOST_MISMATCH',
      `content cache "${opts.name}" is already registered with host ${existing.host}, not ${opts.host}; ` +
        `choose another --name, or delete it first (DELETE /api/v0/content_caches/${existing.id}; users who selected it lose that setting)`,
    );
  }
  opts.say(`content cache "${existing.name}" already registered at ${existing.host} (id ${existing.id})`);
}

/** Selects the cache in one user's settings, unless it is selected already. */
async function selectFor(api: OriginApi, user: string, opts: RegisterOptions): Promise<void> {
  const path = `/api/v0/accounts/${encodeURIComponent(user)}/settings`;
  const current = await api.call('GET', path);
  if (current.status !== 200) throw unexpectedAnswer(`reading the settings of user ${user}`, current);
  const before = (current.json as { contentCache?: string | null } | null)?.contentCache ?? null;
  if (before === opts.name) {
    opts.say(`user ${user}: already uses content cache "${opts.name}"`);
    return;
  }
  const set = await api.call('PATCH', path, { contentCache: opts.name });
  if (set.status !== 200) throw unexpectedAnswer(`selecting the cache for user ${user}`, set);
  opts.say(`user ${user}: content cache set to "${opts.name}" (was ${before === null ? 'none' : `"${before}"`})`);
}

/** Same URL once parsed: `https://c:443/` and `https://c` are one host. */
function sameHost(a: string, b: string): boolean {
  try {
    return new URL(a).href === new URL(b).href;
  } catch {
    return a === b;
  }
}
