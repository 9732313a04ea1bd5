// `dtr-cache register`: tells the origin about this cache through its content-cache API
// (PROTOCOL.md §6) and, optionally, selects it for some users. Idempotent: a cache already
// registered under the same name and host is reported, not an error; the same name with
// another host is refused (the API has no update, and deleting would clear every user's
// selection). Admin credentials come from the environment or stdin, never from argv, so
// they stay out of `ps` and shell history.
import type { SecureContext } from 'node:tls';
import { Agent, request } from 'undici';
import { DtrCacheError } from '../errors/base.js';
import { messageOf } from '../errors/inspect.js';

export interface Credentials {
  username: string;
  password: string;
}

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

export type RegisterErrorCode = 'CREDENTIALS' | 'HOST_MISMATCH' | 'REFUSED' | 'ORIGIN';

export class RegisterError extends DtrCacheError<RegisterErrorCode> {}

interface ContentCache {
  id: string;
  name: string;
  host: string;
}

/** Same URL once parsed: `https://c:443/` and `https://c` are one host. */
function sameHost(a: string, b: string): boolean {
  try {
    return new URL(a).href === new URL(b).href;
  } catch {
    return a === b;
  }
}

export async function register(opts: RegisterOptions): Promise<void> {
  const agent = new Agent({
    connect: { secureContext: opts.secureContext, timeout: 10_000 },
    headersTimeout: 30_000,
    bodyTimeout: 30_000,
  });
  const base = opts.origin.replace(/\/+$/, '');
  const auth = `Basic ${Buffer.from(`${opts.credentials.username}:${opts.credentials.password}`).toString('base64')}`;
  const call = async (
    method: 'GET' | 'POST' | 'PATCH',
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: unknown; text: string }> => {
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(`${base}${path}`, {
        method,
        dispatcher: agent,
        headers: {
          authorization: auth,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? null : JSON.stringify(body),
      });
    } catch (err) {
      throw new RegisterError('ORIGIN', `cannot reach the origin at ${base}: ${messageOf(err)}`, { cause: err });
    }
    const text = await res.body.text();
    let json: unknown = null;
    try {
      json = text === '' ? null : JSON.parse(text);
    } catch {
      // not JSON: reported through `text`
    }
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new RegisterError(
        'CREDENTIALS',
        `the origin refused the credentials of ${opts.credentials.username} for ${method} ${path} (${res.statusCode}): admin credentials are required`,
      );
    }
    return { status: res.statusCode, json, text };
  };
  const unexpected = (what: string, r: { status: number; text: string }): RegisterError =>
    new RegisterError(
      r.status === 400 ? 'REFUSED' : 'ORIGIN',
      `${what}: the origin answered ${r.status} ${originMessage(r.text)}`,
    );

  try {
    opts.say(`origin: ${base}`);
    const created = await call('POST', '/api/v0/content_caches', { name: opts.name, host: opts.host });
    if (created.status === 201) {
      const c = created.json as ContentCache;
      opts.say(`registered content cache "${c.name}" at ${c.host} (id ${c.id})`);
    } else if (created.status === 409) {
      const list = await call('GET', '/api/v0/content_caches');
      if (list.status !== 200 || !Array.isArray(list.json)) throw unexpected('listing content caches', list);
      const existing = (list.json as ContentCache[]).find((c) => c.name === opts.name);
      if (existing === undefined) throw unexpected(`registering "${opts.name}"`, created);
      if (!sameHost(existing.host, opts.host)) {
        throw new RegisterError(
          'HOST_MISMATCH',
          `content cache "${opts.name}" is already registered with host ${existing.host}, not ${opts.host}; ` +
            `choose another --name, or delete it first (DELETE /api/v0/content_caches/${existing.id}; users who selected it lose that setting)`,
        );
      }
      opts.say(`content cache "${existing.name}" already registered at ${existing.host} (id ${existing.id})`);
    } else {
      throw unexpected(`registering "${opts.name}"`, created);
    }

    for (const user of opts.users) {
      const path = `/api/v0/accounts/${encodeURIComponent(user)}/settings`;
      const current = await call('GET', path);
      if (current.status !== 200) throw unexpected(`reading the settings of user ${user}`, current);
      const before = (current.json as { contentCache?: string | null } | null)?.contentCache ?? null;
      if (before === opts.name) {
        opts.say(`user ${user}: already uses content cache "${opts.name}"`);
        continue;
      }
      const set = await call('PATCH', path, { contentCache: opts.name });
      if (set.status !== 200) throw unexpected(`selecting the cache for user ${user}`, set);
      opts.say(`user ${user}: content cache set to "${opts.name}" (was ${before === null ? 'none' : `"${before}"`})`);
    }
  } finally {
    await agent.close();
  }
}

/** The registry-style error message in an origin's answer, or the start of its body. */
function originMessage(text: string): string {
  try {
    const parsed = JSON.parse(text) as { errors?: Array<{ message?: string; detail?: unknown }> };
    const first = parsed.errors?.[0];
    if (first !== undefined)
      return `(${[first.message, first.detail === undefined ? undefined : JSON.stringify(first.detail)].filter(Boolean).join(': ')})`;
  } catch {
    // not JSON
  }
  return text === '' ? '' : `(${text.slice(0, 200)})`;
}

/**
 * Admin credentials: DTR_USERNAME / DTR_PASSWORD from the environment, and whatever is
 * missing from stdin, one per line (username, then password), e.g.
 * `printf '%s\n%s\n' admin "$PW" | dtr-cache register …`. Never from argv.
 */
export async function readCredentials(env: NodeJS.ProcessEnv, stdin: NodeJS.ReadStream): Promise<Credentials> {
  let username = env['DTR_USERNAME'];
  let password = env['DTR_PASSWORD'];
  if (username === undefined || password === undefined) {
    if (stdin.isTTY) {
      throw new RegisterError(
        'CREDENTIALS',
        'admin credentials are read from DTR_USERNAME/DTR_PASSWORD or from stdin (username and password, one per line), not from a terminal prompt',
      );
    }
    let text = '';
    for await (const chunk of stdin) {
      text += String(chunk);
      if (text.length > 64 << 10) break;
    }
    const lines = text.split(/\r?\n/);
    username ??= lines.shift();
    password ??= lines.shift();
  }
  if (!username || !password) {
    throw new RegisterError(
      'CREDENTIALS',
      'admin credentials missing: set DTR_USERNAME and DTR_PASSWORD, or pipe the username and password, one per line, on stdin',
    );
  }
  return { username, password };
}
