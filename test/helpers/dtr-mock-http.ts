// Requests to a DTR mock for the test/integration/dtr-mock-*.test.ts files: one request with a
// deadline over the shared agent, its headers and registry error code, Basic credentials,
// tokens from the mock's token service, its JWK Set, and a content cache selected for a user
// through its API.
import assert from 'node:assert/strict';
import type { JSONWebKeySet } from 'jose';
import { request, type Dispatcher } from 'undici';
import type { DtrMock } from '../../bench/dtr-mock/index.js';
import { DEADLINE, agent } from './dtr-mock.js';

export function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

export interface Res {
  status: number;
  headers: Dispatcher.ResponseData['headers'];
  body: Buffer;
}

/** One request with a deadline; the body is always read to the end. */
export async function http(
  url: string,
  opts: { method?: Dispatcher.HttpMethod; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Res> {
  const res = await request(url, {
    dispatcher: agent,
    method: opts.method ?? 'GET',
    headers: opts.headers ?? {},
    body: opts.body ?? null,
    signal: AbortSignal.timeout(DEADLINE),
  });
  return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
}

export function h(r: Res, name: string): string | undefined {
  const v = r.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export function errorCode(r: Res): string | undefined {
  return (JSON.parse(r.body.toString()) as { errors: { code: string }[] }).errors[0]?.code;
}

export async function token(m: DtrMock, user: string | undefined, pass: string, scope: string): Promise<string> {
  const r = await http(`${m.url}/auth/token?service=${m.service}&scope=${encodeURIComponent(scope)}`, {
    headers: user === undefined ? {} : { authorization: basic(user, pass) },
  });
  assert.equal(r.status, 200, r.body.toString());
  return (JSON.parse(r.body.toString()) as { token: string }).token;
}

export async function pullToken(m: DtrMock, user: string, name = 'library/app'): Promise<string> {
  return token(m, user, `${user}-pw`, `repository:${name}:pull`);
}

export async function jwksOf(m: DtrMock): Promise<JSONWebKeySet> {
  const r = await http(`${m.url}/.well-known/jwks.json`);
  assert.equal(r.status, 200);
  return JSON.parse(r.body.toString()) as JSONWebKeySet;
}

export async function selectCache(m: DtrMock, user: string, cacheName: string, host: string): Promise<void> {
  const c = await http(`${m.url}/api/v0/content_caches`, {
    method: 'POST',
    headers: { authorization: basic('boss', 'boss-pw'), 'content-type': 'application/json' },
    body: JSON.stringify({ name: cacheName, host }),
  });
  assert.equal(c.status, 201, c.body.toString());
  const s = await http(`${m.url}/api/v0/accounts/${user}/settings`, {
    method: 'PATCH',
    headers: { authorization: basic(user, `${user}-pw`), 'content-type': 'application/json' },
    body: JSON.stringify({ contentCache: cacheName }),
  });
  assert.equal(s.status, 200, s.body.toString());
}
