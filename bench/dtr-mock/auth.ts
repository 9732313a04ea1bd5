// Users, Basic credentials and the registry token flow of the mock origin
// (distribution "Token Authentication Specification"; docs/protocol.md §1 step 1).
// Registry tokens are HS256 with a per-process secret: only the mock reads them,
// and a cache must never accept them as redirect tokens (docs/protocol.md §2 rejects HS*).
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { jwtVerify, SignJWT } from 'jose';
import { MockError } from './errors.js';

export type Action = 'pull' | 'push';
const ACTIONS: readonly Action[] = ['pull', 'push'];

export interface UserSpec {
  password: string;
  admin?: boolean;
  /** Repository pattern → rights. Patterns: an exact name, `*`, or `prefix/*`. */
  repos?: Record<string, Action[]>;
}

export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

export interface RegistryPrincipal {
  /** User name; '' for an anonymous token. */
  sub: string;
  access: AccessEntry[];
}

export class UserDb {
  private readonly users = new Map<string, UserSpec>();

  constructor(users: Record<string, UserSpec> = {}) {
    for (const [name, spec] of Object.entries(users)) this.set(name, spec);
  }

  set(name: string, spec: UserSpec): void {
    if (name === '' || name.includes(':')) throw new Error(`invalid user name ${JSON.stringify(name)}`);
    this.users.set(name, { ...spec, repos: { ...(spec.repos ?? {}) } });
  }

  has(name: string): boolean {
    return this.users.has(name);
  }

  isAdmin(name: string): boolean {
    return this.users.get(name)?.admin === true;
  }

  /** Checks a password in constant time per candidate. */
  check(name: string, password: string): boolean {
    const u = this.users.get(name);
    if (u === undefined) return false;
    const a = Buffer.from(u.password);
    const b = Buffer.from(password);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** The rights of `user` on repository `repo`; admins have all. */
  rights(user: string, repo: string): Set<Action> {
    const u = this.users.get(user);
    const out = new Set<Action>();
    if (u === undefined) return out;
    if (u.admin === true) return new Set(ACTIONS);
    for (const [pattern, actions] of Object.entries(u.repos ?? {})) {
      const hit =
        pattern === '*' || pattern === repo || (pattern.endsWith('/*') && repo.startsWith(pattern.slice(0, -1)));
      if (hit) for (const a of actions) if (ACTIONS.includes(a)) out.add(a);
    }
    return out;
  }
}

/** `Authorization: Basic …` → [user, password], or undefined. */
export function parseBasic(req: IncomingMessage): [string, string] | undefined {
  const h = req.headers.authorization;
  if (h === undefined || !/^basic /i.test(h)) return undefined;
  const raw = Buffer.from(h.slice(6).trim(), 'base64').toString('utf8');
  const i = raw.indexOf(':');
  if (i <= 0) return undefined;
  return [raw.slice(0, i), raw.slice(i + 1)];
}

/** `Authorization: Bearer …` → the token, or undefined. */
export function parseBearer(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (h === undefined || !/^bearer /i.test(h)) return undefined;
  const t = h.slice(7).trim();
  return t === '' ? undefined : t;
}

/** Parses `type:name:actions` scopes; the name may itself contain ':'. */
export function parseScopes(values: string[]): { type: string; name: string; actions: string[] }[] {
  const out: { type: string; name: string; actions: string[] }[] = [];
  for (const v of values) {
    for (const s of v.split(' ')) {
      const first = s.indexOf(':');
      const last = s.lastIndexOf(':');
      if (first <= 0 || last <= first) continue;
      // `repository(plugin)` is a repository with a class annotation.
      const type = s.slice(0, first).replace(/\(.*\)$/, '');
      out.push({
        type,
        name: s.slice(first + 1, last),
        actions: s
          .slice(last + 1)
          .split(',')
          .filter(Boolean),
      });
    }
  }
  return out;
}

export interface TokenIssuerOptions {
  service: string;
  issuer: string;
  ttlSec: number;
}

export class RegistryTokens {
  private readonly secret = new Uint8Array(randomBytes(32));

  constructor(
    private readonly users: UserDb,
    private readonly opts: TokenIssuerOptions,
  ) {}

  get service(): string {
    return this.opts.service;
  }

  /** Grants each requested action the user holds; anonymous users hold none. */
  grant(user: string | undefined, scopes: { type: string; name: string; actions: string[] }[]): AccessEntry[] {
    const access: AccessEntry[] = [];
    if (user === undefined) return access;
    for (const s of scopes) {
      if (s.type !== 'repository') continue;
      const rights = this.users.rights(user, s.name);
      const wanted = s.actions.includes('*') ? [...ACTIONS] : s.actions;
      const actions = [...new Set(wanted)].filter((a): a is Action => rights.has(a as Action));
      if (actions.length > 0) access.push({ type: 'repository', name: s.name, actions });
    }
    return access;
  }

  async issue(sub: string, access: AccessEntry[]): Promise<{ token: string; expiresIn: number; issuedAt: Date }> {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ access })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(this.opts.issuer)
      .setSubject(sub)
      .setAudience(this.opts.service)
      .setIssuedAt(now)
      .setNotBefore(now - 1)
      .setExpirationTime(now + this.opts.ttlSec)
      .setJti(randomUUID())
      .sign(this.secret);
    return { token, expiresIn: this.opts.ttlSec, issuedAt: new Date(now * 1000) };
  }

  /** The principal of a registry token, or undefined when it is not one of ours or expired. */
  async verify(token: string): Promise<RegistryPrincipal | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.secret, {
        algorithms: ['HS256'],
        issuer: this.opts.issuer,
        audience: this.opts.service,
      });
      const access = Array.isArray(payload['access']) ? (payload['access'] as AccessEntry[]) : [];
      return { sub: typeof payload.sub === 'string' ? payload.sub : '', access };
    } catch {
      return undefined;
    }
  }

  /**
   * `GET /auth/token?service=…&scope=…` with optional Basic credentials, and the
   * OAuth2 password grant (`POST` form) some clients use.
   */
  async handle(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    body: string | undefined,
  ): Promise<string | undefined> {
    let user: string | undefined;
    let scopes = url.searchParams.getAll('scope');
    let creds = parseBasic(req);
    if (req.method === 'POST' && body !== undefined) {
      const form = new URLSearchParams(body);
      if (form.get('grant_type') === 'password') {
        creds = [form.get('username') ?? '', form.get('password') ?? ''];
      }
      scopes = scopes.concat(form.getAll('scope'));
    }
    if (creds !== undefined) {
      if (!this.users.check(creds[0], creds[1])) {
        throw new MockError('UNAUTHORIZED', {
          message: 'invalid username or password',
          headers: { 'WWW-Authenticate': `Basic realm="${this.opts.service}"` },
        });
      }
      user = creds[0];
    }
    const access = this.grant(user, parseScopes(scopes));
    const t = await this.issue(user ?? '', access);
    const json = JSON.stringify({
      token: t.token,
      access_token: t.token,
      expires_in: t.expiresIn,
      issued_at: t.issuedAt.toISOString(),
    });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(json) });
    res.end(json);
    return user;
  }
}

/** Whether `access` grants `action` on repository `name`. */
export function allows(access: readonly AccessEntry[], name: string, action: string): boolean {
  return access.some((a) => a.type === 'repository' && a.name === name && a.actions.includes(action));
}
