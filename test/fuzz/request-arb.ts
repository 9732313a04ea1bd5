// Request paths and queries: repository names and digests, valid and broken every way the
// distribution grammar can be broken; `?token=` and other parameters; percent encodings;
// overlong segments. Each value is the raw request target, sent as is.
import fc from 'fast-check';

export interface PathPools {
  names: readonly string[];
  digests: readonly string[];
  /** A token for (name, digest), or undefined when none was minted. */
  token(name: string, digest: string): string | undefined;
  anyToken: readonly string[];
}

const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789';
const component = fc
  .tuple(
    fc.string({ unit: fc.constantFrom(...ALNUM), minLength: 1, maxLength: 6 }),
    fc.array(
      fc.tuple(
        fc.constantFrom('.', '_', '__', '-', '--'),
        fc.string({ unit: fc.constantFrom(...ALNUM), minLength: 1, maxLength: 4 }),
      ),
      { maxLength: 2 },
    ),
  )
  .map(([head, rest]) => head + rest.map(([sep, s]) => sep + s).join(''));
const validName = fc.array(component, { minLength: 1, maxLength: 4 }).map((c) => c.join('/'));

/** Printable ASCII without space: what both HTTP/1.1 and node:http2 will carry in a target. */
const targetChar = fc.constantFrom(...Array.from({ length: 94 }, (_, i) => String.fromCharCode(33 + i)));

function brokenName(names: readonly string[]): fc.Arbitrary<string> {
  const base = fc.oneof(fc.constantFrom(...names), validName);
  return fc.oneof(
    base.map((n) => n.toUpperCase()),
    base.map((n) => `/${n}`),
    base.map((n) => `${n}/`),
    base.map((n) => n.replace('/', '//')),
    base.map((n) => `${n}/..`),
    base.map((n) => `../${n}`),
    base.map((n) => n.replace('/', '%2f')),
    base.map((n) => `${n}.`),
    base.map((n) => `${n}-`),
    base.map((n) => `${n}___x`),
    fc.constantFrom('', '.', '..', '-', '_', 'a..b', 'a/./b', '%00', 'a%00', '%20'),
    fc.integer({ min: 250, max: 20_000 }).map((n) => 'a'.repeat(n)),
    fc.string({ unit: targetChar, minLength: 1, maxLength: 40 }),
  );
}

function brokenDigest(digests: readonly string[]): fc.Arbitrary<string> {
  const base = fc.constantFrom(...digests);
  return fc.oneof(
    base.map((d) => d.toUpperCase()),
    base.map((d) => d.replace(/^sha256:/, 'SHA256:')),
    base.map((d) => d.slice(0, -1)),
    base.map((d) => `${d}0`),
    base.map((d) => `${d}/`),
    base.map((d) => d.replace(':', '%3A')),
    base.map((d) => d.replace(':', '')),
    base.map((d) => d.replace(/^sha256/, 'sha384')),
    base.map((d) => d.replace(/^sha256/, 'sha512')),
    base.map((d) => `${d.replace(/^sha256/, 'sha512')}${d.slice(7)}`),
    base.map((d) => `${d.slice(0, 20)}g${d.slice(21)}`),
    fc.constantFrom('', ':', 'sha256:', 'sha256', ':abc', 'sha256::'),
    fc.integer({ min: 100, max: 20_000 }).map((n) => `sha256:${'a'.repeat(n)}`),
    fc.string({ unit: targetChar, maxLength: 80 }),
  );
}

/** RFC 3986 percent-encodings of some characters, and broken ones (`%G1`, a lone `%`). */
function percentMangle(s: string): fc.Arbitrary<string> {
  if (s.length === 0) return fc.constant(s);
  return fc
    .array(fc.tuple(fc.nat({ max: s.length - 1 }), fc.constantFrom('upper', 'lower', 'broken', 'lone')), {
      maxLength: 3,
    })
    .map((edits) => {
      const chars = [...s];
      for (const [i, how] of edits) {
        const c = chars[i];
        if (c === undefined) continue;
        const hex = c.charCodeAt(0).toString(16).padStart(2, '0');
        chars[i] =
          how === 'upper' ? `%${hex.toUpperCase()}` : how === 'lower' ? `%${hex}` : how === 'broken' ? '%G1' : '%';
      }
      return chars.join('');
    });
}

function query(pools: PathPools, name: string, digest: string): fc.Arbitrary<string> {
  const own = pools.token(name, digest);
  const tokenValue = fc.oneof(
    ...(own === undefined ? [] : [{ weight: 6, arbitrary: fc.constant(own) }]),
    { weight: 2, arbitrary: fc.constantFrom(...pools.anyToken) },
    { weight: 1, arbitrary: fc.constantFrom('', 'x', 'a.b.c', '..', 'null') },
    { weight: 1, arbitrary: fc.string({ unit: targetChar, maxLength: 60 }) },
  );
  const param = fc.oneof(
    { weight: 5, arbitrary: tokenValue.map((v) => `token=${encodeURIComponent(v)}`) },
    { weight: 1, arbitrary: tokenValue.map((v) => `token=${v}`) },
    { weight: 1, arbitrary: tokenValue.chain((v) => percentMangle(`token=${v}`)) },
    {
      weight: 2,
      arbitrary: fc.constantFrom('ns=docker.io', 'a=b', 'token', '=', '&', 'Token=x', '%zz=1', 'x=%E0%A4%A'),
    },
    { weight: 1, arbitrary: fc.string({ unit: targetChar, maxLength: 30 }) },
  );
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant('') },
    {
      weight: 8,
      arbitrary: fc
        .tuple(fc.array(param, { minLength: 1, maxLength: 4 }), fc.constantFrom('', '#frag', '?again'))
        .map(([ps, tail]) => `?${ps.join('&')}${tail}`),
    },
  );
}

export interface PathCase {
  target: string;
  /** The name and digest the generator meant (the target may have been mangled since). */
  name: string;
  digest: string;
}

/** A request target: mostly a blob path with a plausible query, sometimes another route or noise. */
export function requestTarget(pools: PathPools): fc.Arbitrary<PathCase> {
  const name = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...pools.names) },
    { weight: 1, arbitrary: validName },
    {
      weight: 2,
      arbitrary: brokenName(pools.names),
    },
  );
  const digest = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...pools.digests) },
    {
      weight: 2,
      arbitrary: brokenDigest(pools.digests),
    },
  );
  const blobs = fc.oneof(
    { weight: 10, arbitrary: fc.constant('/blobs/') },
    {
      weight: 1,
      arbitrary: fc.constantFrom('/blob/', '/BLOBS/', '/blobs//', '/blobs/blobs/', '/blobs', '/manifests/'),
    },
  );
  const prefix = fc.oneof(
    { weight: 10, arbitrary: fc.constant('/v2/') },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '/v2',
        '/V2/',
        '//v2/',
        '/v2//',
        '/v1/',
        '',
        '/',
        '*',
        'https://localhost/v2/',
        '/./v2/',
      ),
    },
  );
  const blobPath = fc.tuple(prefix, name, blobs, digest).chain(([p, n, b, d]) =>
    fc
      .tuple(fc.constant(`${p}${n}${b}${d}`), fc.boolean(), query(pools, n, d))
      .chain(([path, mangle, q]) => (mangle ? percentMangle(path) : fc.constant(path)).map((t) => t + q))
      .map((target) => ({ target, name: n, digest: d })),
  );
  const other = fc
    .oneof(
      fc.constantFrom('/v2/', '/v2', '/.well-known/jwks.json', '/', '/metrics', '/v2/_catalog', '/debug/health'),
      fc.string({ unit: targetChar, maxLength: 100 }).map((s) => `/${s}`),
    )
    .map((target) => ({ target, name: '', digest: '' }));
  return fc.oneof({ weight: 9, arbitrary: blobPath }, { weight: 1, arbitrary: other });
}
