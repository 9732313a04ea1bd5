// Redirect tokens (docs/protocol.md §2) minted with the test origin's real keys, then mutated: the
// JOSE header (alg, kid, typ, crit), the claims (each one removed, retyped, moved in time),
// the signature (another key, bit flips, truncation), and the compact encoding (padding,
// whitespace, extra or missing segments). tokenVerdict says what the cache must answer,
// from the RFCs and docs/protocol.md §2 alone.
import { webcrypto } from 'node:crypto';
import fc from 'fast-check';
import type { CryptoKey } from 'jose';

export interface SigningKey {
  kid: string;
  alg: 'ES256' | 'RS256' | 'EdDSA';
  priv: CryptoKey;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A claim or header value replaced by this marker is removed. */
const DROP = Symbol('drop');
type Edit = [key: string, value: Json | typeof DROP];

export interface TokenRecipe {
  key: number;
  /** Sign with this key's private key instead (the header still names `key`'s kid). */
  signWith: number;
  headerEdits: Edit[];
  claimEdits: Edit[];
  /** Replace the header or payload object by a non-object JSON value. */
  notObject: { part: 0 | 1; value: Json } | null;
  encoding: ReadonlyArray<{ part: 0 | 1 | 2; op: EncodingOp; at: number }>;
  segments: 'three' | 'two' | 'four';
}

type EncodingOp = 'flip' | 'truncate' | 'append' | 'space' | 'newline' | 'tab' | 'pad' | 'plus' | 'slash' | 'empty';

const jsonValue: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(null, true, false, 0, -1, 1.5, 1e308, '', 'x', [], {}, ['pull'], { a: 1 }),
  fc.integer().map((n): Json => n),
  fc.string({ maxLength: 20 }),
);

export function tokenRecipe(
  keys: number,
  name: string,
  digest: string,
  otherDigest: string,
): fc.Arbitrary<TokenRecipe> {
  const now = Math.floor(Date.now() / 1000);
  // Offsets stay clear of the 60 s leeway's edges, so a verdict never depends on timing.
  const time = fc.constantFrom(-7200, -600, -25, 25, 600, 7200).map((d): Json => now + d);
  const headerEdit: fc.Arbitrary<Edit> = fc.oneof(
    fc.tuple(
      fc.constant('alg'),
      fc.constantFrom<Json | typeof DROP>(
        'none',
        'HS256',
        'RS256',
        'ES256',
        'EdDSA',
        'ES384',
        'PS256',
        'es256',
        '',
        7,
        null,
        DROP,
      ),
    ),
    fc.tuple(
      fc.constant('kid'),
      fc.constantFrom<Json | typeof DROP>('k1', 'k2', 'k3', 'k9', '', 1, null, ['k1'], 'k'.repeat(5000), DROP),
    ),
    fc.tuple(
      fc.constant('typ'),
      fc.constantFrom<Json | typeof DROP>('JWT', 'jwt', 'application/jwt', 'at+jwt', 'JOSE', 1, null, DROP),
    ),
    fc.tuple(fc.constant('crit'), fc.constantFrom<Json>(['exp'], ['x-ext'], [], 'b64', null)),
    fc.tuple(fc.constantFrom('jku', 'x5u', 'cty', 'b64', 'zip', 'x'), jsonValue),
  );
  const claimEdit: fc.Arbitrary<Edit> = fc.oneof(
    fc.tuple(fc.constantFrom('exp', 'nbf', 'iat'), fc.oneof(time, jsonValue, fc.constant<typeof DROP>(DROP))),
    fc.tuple(fc.constantFrom('iss', 'sub'), fc.oneof(jsonValue, fc.constant<typeof DROP>(DROP))),
    fc.tuple(
      fc.constant('digest'),
      fc.constantFrom<Json | typeof DROP>(otherDigest, digest.toUpperCase(), `${digest} `, '', 1, null, DROP),
    ),
    fc.tuple(
      fc.constant('access'),
      fc.oneof(
        fc.constantFrom<Json | typeof DROP>(
          [],
          [{ type: 'repository', name, actions: ['push'] }],
          [{ type: 'repository', name, actions: ['PULL'] }],
          [{ type: 'repository', name, actions: 'pull' }],
          [{ type: 'registry', name, actions: ['pull'] }],
          [{ type: 'repository', name: `${name}/x`, actions: ['pull'] }],
          [{ type: 'repository', name: name.toUpperCase(), actions: ['pull'] }],
          [
            { type: 'repository', name: 'other', actions: ['pull'] },
            { type: 'repository', name, actions: ['push', 'pull'] },
          ],
          [null, 1, { type: 'repository', name, actions: ['pull'] }],
          { type: 'repository', name, actions: ['pull'] },
          'pull',
          DROP,
        ),
        jsonValue,
      ),
    ),
    fc.tuple(fc.constant('x-extra'), jsonValue),
  );
  const encodingOp = fc.constantFrom<EncodingOp>(
    'flip',
    'truncate',
    'append',
    'space',
    'newline',
    'tab',
    'pad',
    'plus',
    'slash',
    'empty',
  );
  const idx = fc.nat({ max: keys - 1 });
  return fc.record({
    key: idx,
    signWith: fc.oneof({ weight: 5, arbitrary: fc.constant(-1) }, { weight: 1, arbitrary: idx }),
    headerEdits: fc.array(headerEdit, { maxLength: 2 }),
    claimEdits: fc.array(claimEdit, { maxLength: 2 }),
    notObject: fc.oneof(
      { weight: 12, arbitrary: fc.constant(null) },
      { weight: 1, arbitrary: fc.record({ part: fc.constantFrom<0 | 1>(0, 1), value: jsonValue }) },
    ),
    encoding: fc.oneof(
      { weight: 3, arbitrary: fc.constant([] as TokenRecipe['encoding']) },
      {
        weight: 2,
        arbitrary: fc.array(fc.record({ part: fc.constantFrom<0 | 1 | 2>(0, 1, 2, 2), op: encodingOp, at: fc.nat() }), {
          minLength: 1,
          maxLength: 2,
        }),
      },
    ),
    segments: fc.constantFrom<TokenRecipe['segments']>('three', 'three', 'three', 'three', 'two', 'four'),
  });
}

function b64url(data: string | Uint8Array): string {
  return Buffer.from(data).toString('base64url');
}

async function sign(key: SigningKey, input: string): Promise<Uint8Array> {
  const data = new TextEncoder().encode(input);
  const algorithm =
    key.alg === 'ES256'
      ? { name: 'ECDSA', hash: 'SHA-256' }
      : key.alg === 'RS256'
        ? { name: 'RSASSA-PKCS1-v1_5' }
        : { name: 'Ed25519' };
  return new Uint8Array(await webcrypto.subtle.sign(algorithm, key.priv, data));
}

function applyEdits(base: Record<string, Json>, edits: Edit[]): Record<string, Json> {
  const out = { ...base };
  for (const [k, v] of edits) {
    if (v === DROP) delete out[k];
    else out[k] = v;
  }
  return out;
}

function mutate(segment: string, op: EncodingOp, at: number): string {
  const i = segment.length === 0 ? 0 : at % segment.length;
  const c = segment[i] ?? 'A';
  switch (op) {
    case 'flip':
      return segment.slice(0, i) + (c === 'A' ? 'B' : 'A') + segment.slice(i + 1);
    case 'truncate':
      return segment.slice(0, i);
    case 'append':
      return `${segment}A`;
    case 'space':
      return `${segment.slice(0, i)} ${segment.slice(i)}`;
    case 'newline':
      return `${segment.slice(0, i)}\n${segment.slice(i)}`;
    case 'tab':
      return `${segment.slice(0, i)}\t${segment.slice(i)}`;
    case 'pad':
      return `${segment}=`;
    case 'plus':
      return segment.replaceAll('-', '+');
    case 'slash':
      return segment.replaceAll('_', '/');
    case 'empty':
      return '';
  }
}

export interface BuiltToken {
  token: string;
  /** The three segments as signed, and the signature's bytes. */
  signed: { header: string; payload: string; signature: Uint8Array };
  headerObj: Json;
  payloadObj: Json;
  /** The kid of the key that really signed it. */
  signerKid: string;
}

export async function buildToken(
  r: TokenRecipe,
  keys: SigningKey[],
  name: string,
  digest: string,
): Promise<BuiltToken> {
  const key = keys[r.key]!;
  const now = Math.floor(Date.now() / 1000);
  const header: Json =
    r.notObject?.part === 0 ? r.notObject.value : applyEdits({ alg: key.alg, kid: key.kid, typ: 'JWT' }, r.headerEdits);
  const claims = {
    access: [{ type: 'repository', name, actions: ['pull'] }],
    digest,
    iss: 'test-origin',
    sub: 'alice',
    iat: now,
    nbf: now - 1,
    exp: now + 600,
  };
  const payload: Json = r.notObject?.part === 1 ? r.notObject.value : applyEdits(claims, r.claimEdits);
  const h = b64url(JSON.stringify(header));
  const p = b64url(JSON.stringify(payload));
  const signer = r.signWith < 0 ? key : keys[r.signWith]!;
  const signature = await sign(signer, `${h}.${p}`);
  const segments = [h, p, b64url(signature)];
  for (const e of r.encoding) segments[e.part] = mutate(segments[e.part]!, e.op, e.at);
  const token =
    r.segments === 'two'
      ? `${segments[0]}.${segments[1]}`
      : r.segments === 'four'
        ? `${segments.join('.')}.AAAA`
        : segments.join('.');
  return {
    token,
    signed: { header: h, payload: p, signature },
    headerObj: header,
    payloadObj: payload,
    signerKid: signer.kid,
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * What the cache must answer for `seen` (the token as the server reads it) on a pull of
 * (name, digest): 'ok', 401 UNAUTHORIZED (another repository's included), or 403 DENIED (a
 * valid token whose entry for the repository lacks pull).
 */
export function tokenVerdict(
  seen: string,
  built: BuiltToken,
  keys: SigningKey[],
  name: string,
  digest: string,
): 'ok' | 'UNAUTHORIZED' | 'DENIED' {
  // RFC 7515 §7.1 and §2: three base64url segments, no padding, no whitespace or other characters.
  const parts = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)$/.exec(seen);
  if (parts === null) return 'UNAUTHORIZED';
  // The signing input is the text of the first two segments; the signature is compared as
  // bytes (a last character differing only in unused bits decodes to the same bytes).
  if (parts[1] !== built.signed.header || parts[2] !== built.signed.payload) return 'UNAUTHORIZED';
  if (!Buffer.from(parts[3]!, 'base64url').equals(Buffer.from(built.signed.signature))) return 'UNAUTHORIZED';
  const h = built.headerObj;
  if (!isObject(h)) return 'UNAUTHORIZED';
  // The key the header names must be the one that signed, and be for the header's alg.
  const key = keys.find((k) => k.kid === h['kid']);
  if (key === undefined || key.kid !== built.signerKid || h['alg'] !== key.alg) return 'UNAUTHORIZED';
  const typ = h['typ'];
  if (typ !== undefined && (typeof typ !== 'string' || !['jwt', 'application/jwt'].includes(typ.toLowerCase())))
    return 'UNAUTHORIZED';
  if (h['crit'] !== undefined) return 'UNAUTHORIZED';
  const c = built.payloadObj;
  if (!isObject(c)) return 'UNAUTHORIZED';
  const now = Date.now() / 1000;
  if (typeof c['exp'] !== 'number' || c['exp'] <= now - 60) return 'UNAUTHORIZED';
  for (const k of ['nbf', 'iat']) if (c[k] !== undefined && typeof c[k] !== 'number') return 'UNAUTHORIZED';
  if (typeof c['nbf'] === 'number' && c['nbf'] > now + 60) return 'UNAUTHORIZED';
  if (typeof c['sub'] !== 'string' || typeof c['iss'] !== 'string' || typeof c['digest'] !== 'string')
    return 'UNAUTHORIZED';
  const access = c['access'];
  if (!Array.isArray(access)) return 'UNAUTHORIZED';
  if (c['digest'] !== digest) return 'UNAUTHORIZED';
  // No entry names the repository: a token for another one. An entry without pull: refused.
  let named = false;
  let pull = false;
  for (const e of access as unknown[]) {
    if (!isObject(e) || e['type'] !== 'repository' || e['name'] !== name) continue;
    named = true;
    const actions = e['actions'];
    if (Array.isArray(actions) && actions.includes('pull')) pull = true;
  }
  if (!named) return 'UNAUTHORIZED';
  return pull ? 'ok' : 'DENIED';
}
