// The mock's own control endpoints under /_mock/ (not part of DTR): runtime
// knobs, stats, key rotation and minting redirect tokens. Everything but
// `GET /_mock/stats` needs admin Basic credentials.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { requireAdmin } from './caches-api.js';
import { sendJson, type MockContext } from './context.js';
import { MockError } from './errors.js';
import { parseFault, type Fault } from './faults.js';
import { isSigningAlg, type MintOptions } from './keys.js';
import type { StatsSnapshot } from './stats.js';

export interface MockConfigPatch {
  latencyMs?: number;
  bandwidth?: number | null;
  tokens?: boolean;
  redirectTtlSec?: number;
  /** 5xx or 429: every manifest GET/HEAD answers it; null: manifests served again. */
  manifestStatus?: number | null;
  /** digest → fault, or null to clear it. */
  faults?: Record<string, Fault | null>;
  /** Drops every fault first. */
  clearFaults?: boolean;
}

export interface MockControl {
  configure(patch: MockConfigPatch): void;
  stats(): StatsSnapshot;
  resetStats(): void;
  rotateKey(opts?: { dropOld?: boolean }): Promise<string>;
  mintRedirectToken(o: MintOptions): Promise<string>;
}

function object(body: string): Record<string, unknown> {
  if (body.trim() === '') return {};
  try {
    const v: unknown = JSON.parse(body);
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // the 400 below
  }
  throw new MockError('INVALID_REQUEST', { detail: 'body must be a JSON object' });
}

function num(v: unknown, what: string, min: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min)
    throw new MockError('INVALID_REQUEST', { detail: `${what}: number >= ${min}` });
  return v;
}

/** Validates a `POST /_mock/config` body. */
export function parseConfigPatch(b: Record<string, unknown>): MockConfigPatch {
  const p: MockConfigPatch = {};
  for (const k of Object.keys(b)) {
    if (
      !['latencyMs', 'bandwidth', 'tokens', 'redirectTtlSec', 'manifestStatus', 'faults', 'clearFaults'].includes(k)
    ) {
      throw new MockError('INVALID_REQUEST', { detail: `unknown setting ${k}` });
    }
  }
  if (b['latencyMs'] !== undefined) p.latencyMs = num(b['latencyMs'], 'latencyMs', 0);
  if (b['bandwidth'] !== undefined) p.bandwidth = b['bandwidth'] === null ? null : num(b['bandwidth'], 'bandwidth', 1);
  if (b['redirectTtlSec'] !== undefined) p.redirectTtlSec = num(b['redirectTtlSec'], 'redirectTtlSec', 1);
  if (b['tokens'] !== undefined) {
    if (typeof b['tokens'] !== 'boolean') throw new MockError('INVALID_REQUEST', { detail: 'tokens: boolean' });
    p.tokens = b['tokens'];
  }
  const ms = b['manifestStatus'];
  if (ms !== undefined) {
    if (ms !== null && ms !== 429 && !(typeof ms === 'number' && Number.isInteger(ms) && ms >= 500 && ms <= 599))
      throw new MockError('INVALID_REQUEST', { detail: 'manifestStatus: 429, 5xx or null' });
    p.manifestStatus = ms;
  }
  if (b['clearFaults'] !== undefined) p.clearFaults = b['clearFaults'] === true;
  const f = b['faults'];
  if (f !== undefined) {
    if (typeof f !== 'object' || f === null || Array.isArray(f))
      throw new MockError('INVALID_REQUEST', { detail: 'faults: object' });
    p.faults = {};
    for (const [d, v] of Object.entries(f)) p.faults[d] = parseFault(v);
  }
  return p;
}

/** Routes `/_mock/...`; returns false for other paths. */
export async function handleMockApi(
  ctx: MockContext,
  control: MockControl,
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  body: string,
): Promise<boolean> {
  const method = req.method ?? 'GET';
  if (path === '/_mock/stats' && (method === 'GET' || method === 'HEAD')) {
    sendJson(res, 200, control.stats());
    return true;
  }
  if (!path.startsWith('/_mock/')) return false;
  requireAdmin(req, ctx.users);
  if (method !== 'POST') throw new MockError('UNSUPPORTED');
  switch (path) {
    case '/_mock/stats/reset':
      control.resetStats();
      sendJson(res, 200, {});
      return true;
    case '/_mock/config': {
      control.configure(parseConfigPatch(object(body)));
      sendJson(res, 200, { ...ctx.knobs, faults: ctx.faults.snapshot() });
      return true;
    }
    case '/_mock/rotate-key': {
      const b = object(body);
      const kid = await control.rotateKey({ dropOld: b['dropOld'] === true });
      sendJson(res, 200, { kid });
      return true;
    }
    case '/_mock/token': {
      const b = object(body);
      const { sub, name, digest } = b;
      if (typeof sub !== 'string' || typeof name !== 'string' || typeof digest !== 'string') {
        throw new MockError('INVALID_REQUEST', { detail: 'sub, name and digest are required strings' });
      }
      const o: MintOptions = { sub, name, digest };
      if (b['ttlSec'] !== undefined) o.ttlSec = num(b['ttlSec'], 'ttlSec', -1e9);
      if (b['alg'] !== undefined) {
        if (!isSigningAlg(b['alg'])) throw new MockError('INVALID_REQUEST', { detail: 'alg: ES256, RS256 or EdDSA' });
        o.alg = b['alg'];
      }
      if (Array.isArray(b['actions'])) o.actions = b['actions'].filter((a): a is string => typeof a === 'string');
      sendJson(res, 200, { token: await control.mintRedirectToken(o) });
      return true;
    }
    default:
      throw new MockError('NOT_FOUND', { message: 'unknown mock endpoint' });
  }
}
