// The front door under fuzz (issue: "a fuzzed front door"): request paths and queries,
// headers, and tokens, against the cache as its own process with a real origin. Every
// answer must be what the route model and the oracle call for, and the process must stay
// up with no unexpected error in its log. Seeds and replay: budget.ts.
import { test } from 'node:test';
import fc from 'fast-check';
import { budget, runProperty } from './budget.js';
import { check, type Example } from './front-door.js';
import { blobHeaders } from './header-arb.js';
import { requestTarget } from './request-arb.js';
import { buildToken, tokenRecipe, tokenVerdict } from './token-arb.js';
import { bearer } from './route-model.js';
import { NAMES, startTarget } from './target.js';
import { H2Client } from './wire.js';

const SECONDS = 4;

test('fuzz: the front door', async (t) => {
  const target = await startTarget(t);
  const h2 = new H2Client(target.url, target.ca.cert);
  t.after(() => h2.close());
  const digests = [...target.blobs.map((b) => b.digest), ...target.unknown];
  const world = target.world;
  const pools = {
    names: NAMES,
    digests,
    token: (name: string, digest: string) => target.tokens.get(`${name}@${digest}`),
    anyToken: [...target.tokens.values()],
  };
  const transport = fc.constantFrom('h1', 'h2') as fc.Arbitrary<'h1' | 'h2'>;
  const method = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom('GET', 'HEAD') },
    { weight: 1, arbitrary: fc.constantFrom('POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'FOO') },
  );

  await t.test('paths and queries', async (tt) => {
    const property = fc.asyncProperty(requestTarget(pools), method, transport, async (p, m, tr) => {
      const x: Example = { transport: tr, method: m, target: p.target, headers: [] };
      await check(target, h2, world, x);
    });
    await runProperty(tt, 'paths', property, budget(SECONDS));
  });

  await t.test('headers', async (tt) => {
    // A stored blob, or a new one (its first pull is a miss: the fill, the upstream request).
    const blobChoice = fc.oneof(
      { weight: 4, arbitrary: fc.nat({ max: target.blobs.length - 1 }).map((i) => ({ stored: i, size: 0 })) },
      { weight: 1, arbitrary: fc.nat({ max: 70_000 }).map((size) => ({ stored: -1, size })) },
    );
    const where = fc.constantFrom('query', 'header', 'both');
    const method = fc.constantFrom('GET', 'GET', 'HEAD');
    const property = fc.asyncProperty(
      blobChoice,
      fc.constantFrom(...NAMES),
      where,
      method,
      transport,
      fc.gen(),
      async (b, name, w, m, tr, g) => {
        const blob = b.stored >= 0 ? target.blobs[b.stored]! : await target.fresh(b.size);
        const token = target.tokenFor(name, blob.digest);
        const otherToken = target.tokenFor(name, target.unknown[0]!);
        const fields = g(blobHeaders, {
          digest: blob.digest,
          size: blob.bytes.length,
          token,
          otherToken,
          viaName: target.viaName,
        });
        const auth: Example['headers'] = w === 'query' ? [] : [['authorization', `Bearer ${token}`]];
        const path = `/v2/${name}/blobs/${blob.digest}${w === 'header' ? '' : `?token=${token}`}`;
        await check(target, h2, world, { transport: tr, method: m, target: path, headers: [...auth, ...fields] });
      },
    );
    await runProperty(tt, 'headers', property, budget(SECONDS));
  });

  await t.test('tokens', async (tt) => {
    const keys = target.origin.keys;
    const tokenCase = fc
      .tuple(fc.nat({ max: target.blobs.length - 1 }), fc.constantFrom(...NAMES))
      .chain(([blob, name]) =>
        fc.record({
          blob: fc.constant(blob),
          name: fc.constant(name),
          recipe: tokenRecipe(keys.length, name, target.blobs[blob]!.digest, target.unknown[0]!),
          where: fc.constantFrom('query', 'query', 'raw-query', 'bearer'),
        }),
      );
    const property = fc.asyncProperty(tokenCase, fc.constantFrom('GET', 'HEAD'), transport, async (tc, m, tr) => {
      const c = { ...tc, blob: target.blobs[tc.blob]! };
      const built = await buildToken(c.recipe, keys, c.name, c.blob.digest);
      const path = `/v2/${c.name}/blobs/${c.blob.digest}`;
      const rawOk = /^[\x21-\x7e]*$/.test(built.token);
      const x: Example =
        c.where === 'bearer'
          ? { transport: tr, method: m, target: path, headers: [['authorization', `Bearer ${built.token}`]] }
          : {
              transport: tr,
              method: m,
              target: `${path}?token=${c.where === 'raw-query' && rawOk ? built.token : encodeURIComponent(built.token)}`,
              headers: [],
            };
      // The token as the server reads it: from the query (percent-decoded), or the Bearer credential.
      // (RFC 6750 §2.1 allows several spaces after "Bearer": a token mutated to start with one is still read.)
      const seen =
        c.where === 'bearer'
          ? (bearer(`Bearer ${built.token}`) ?? '')
          : (new URLSearchParams(x.target.slice(x.target.indexOf('?') + 1)).get('token') ?? '');
      const verdict = tokenVerdict(seen, built, keys, c.name, c.blob.digest);
      const grants = new Map(world.grants);
      if (verdict !== 'UNAUTHORIZED') grants.set(seen, { name: c.name, digest: c.blob.digest, pull: verdict === 'ok' });
      await check(target, h2, { ...world, grants }, x);
    });
    await runProperty(tt, 'tokens', property, budget(SECONDS));
  });
  target.healthy();
});
