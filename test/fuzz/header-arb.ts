// Request headers on a valid blob path: Range (every malformed form, repeated),
// If-None-Match, Authorization (the Bearer form and its near misses), Via (our own name
// for the loop guard, others, garbage), and huge, repeated and unknown fields.
import fc from 'fast-check';
import { rangeHeader } from './range-arb.js';

/** Field-value characters both protocols carry (visible ASCII, space, tab). */
const valueChar = fc.constantFrom(...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)), '\t');
const tokenChar = fc.constantFrom(..."!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz".split(''));

export interface HeaderPools {
  digest: string;
  size: number;
  token: string;
  otherToken: string;
  viaName: string;
}

function authorization(p: HeaderPools): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom(
      `Bearer ${p.token}`,
      `bearer ${p.token}`,
      `BEARER   ${p.token}`,
      `Bearer ${p.token} `,
      `Bearer\t${p.token}`,
      `Bearer ${p.otherToken}`,
      `Bearer ${p.token}=`,
      `Bearer ${p.token}==x`,
      `Bearer "${p.token}"`,
      `Bearer ${p.token},realm="x"`,
      'Bearer',
      'Bearer ',
      'Basic YWxpY2U6cGFzcw==',
      `Basic ${p.token}`,
      `Token ${p.token}`,
      p.token,
    ),
    fc.string({ unit: valueChar, maxLength: 80 }).map((s) => `Bearer ${s}`),
  );
}

function via(p: HeaderPools): fc.Arbitrary<string> {
  const hop = fc.oneof(
    fc.constantFrom(
      `1.1 ${p.viaName}`,
      `HTTP/1.1 ${p.viaName}`,
      '1.1 other-cache~abcd',
      '2 edge',
      '1.0 fred, 1.1 p.example.net',
    ),
    fc.string({ unit: valueChar, maxLength: 40 }),
  );
  // A long chain of hops, up to the header limit: forwarded upstream with one hop more.
  const long = fc
    .integer({ min: 100, max: 1_500 })
    .map((n) => Array.from({ length: n }, (_, i) => `1.1 hop${i}`).join(', '));
  return fc.oneof(
    { weight: 5, arbitrary: fc.array(hop, { minLength: 1, maxLength: 5 }).map((hops) => hops.join(', ')) },
    { weight: 1, arbitrary: long },
  );
}

function ifNoneMatch(p: HeaderPools): fc.Arbitrary<string> {
  return fc.constantFrom(
    `"${p.digest}"`,
    `W/"${p.digest}"`,
    p.digest,
    '*',
    '"other"',
    `"x", "${p.digest}"`,
    `"${p.digest.toUpperCase()}"`,
    '',
  );
}

const junk = fc.oneof(
  fc.tuple(fc.string({ unit: tokenChar, minLength: 1, maxLength: 20 }), fc.string({ unit: valueChar, maxLength: 60 })),
  fc.tuple(
    fc.constantFrom('x-big', 'accept', 'user-agent', 'cookie', 'x-forwarded-for'),
    fc.integer({ min: 1000, max: 20_000 }).map((n) => 'a'.repeat(n)),
  ),
  fc.constantFrom<[string, string]>(
    ['accept-encoding', 'gzip, br'],
    ['content-length', '0'],
    ['expect', '100-continue'],
    ['if-match', '"x"'],
    ['if-range', '"x"'],
    ['if-modified-since', 'Thu, 01 Jan 1970 00:00:00 GMT'],
    ['cache-control', 'no-cache'],
    ['forwarded', 'for=1.2.3.4'],
  ),
);

/** Header fields for a GET/HEAD of one blob; the token may ride in the query instead. */
export function blobHeaders(p: HeaderPools): fc.Arbitrary<Array<[string, string]>> {
  const one = fc.oneof(
    { weight: 6, arbitrary: rangeHeader(p.size).map((v): [string, string] => ['range', v]) },
    { weight: 2, arbitrary: ifNoneMatch(p).map((v): [string, string] => ['if-none-match', v]) },
    { weight: 2, arbitrary: authorization(p).map((v): [string, string] => ['authorization', v]) },
    { weight: 2, arbitrary: via(p).map((v): [string, string] => ['via', v]) },
    { weight: 2, arbitrary: junk },
  );
  return fc.array(one, { maxLength: 5 });
}
