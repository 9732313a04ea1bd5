// The key set a cache serves at /.well-known/jwks.json (docs/protocol.md §3), against a real
// cache process over TLS: anyone may ask for it, so what a request there makes the cache
// send to its upstream must stay bounded, whatever the upstream answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnCache } from '../helpers/cache.js';
import { originConfig } from '../helpers/stack.js';
import { agentFor, fetchBlob } from '../helpers/http.js';

/** The served copy is refreshed when older than this (keyset.ts DEFAULT_SERVED_MAX_AGE_MS). */
const SERVED_MAX_AGE_MS = 10_000;

test('a flood of key-set requests while the origin fails its JWK Set asks the origin at most once per 10 s', async (t) => {
  const { ca, origin, cfg } = await originConfig(t, { extraHttp: '  processes: 1\n' });
  const cache = await spawnCache(t, cfg.path, cfg.root);
  const h2 = agentFor(ca.cert, true);
  t.after(() => h2.destroy());
  const loads = (): number => origin.seen.filter((r) => r.path === '/.well-known/jwks.json').length;
  const kids = origin.jwks().keys.map((k) => k.kid);

  // Let the keys loaded at start grow stale, then make the origin fail the set.
  await sleep(SERVED_MAX_AGE_MS + 500);
  origin.jwksStatus = 503;
  const before = loads();
  for (let i = 0; i < 40; i++) {
    const r = await fetchBlob(h2, `${cache.url}/.well-known/jwks.json`);
    assert.equal(r.status, 200, 'the keys held are served');
    const served = JSON.parse(r.body.toString()) as { keys: Array<{ kid: string }> };
    assert.deepEqual(
      served.keys.map((k) => k.kid),
      kids,
    );
  }
  const asked = loads() - before;
  assert.ok(asked >= 1, 'the stale copy was refreshed once');
  assert.ok(asked <= 2, `40 requests to the served key set made the cache ask the origin ${asked} times`);

  // Once the origin answers again, a stale copy is refreshed as before.
  origin.jwksStatus = null;
  await sleep(SERVED_MAX_AGE_MS + 500);
  const rotated = await origin.rotate('EdDSA');
  const r = await fetchBlob(h2, `${cache.url}/.well-known/jwks.json`);
  const served = JSON.parse(r.body.toString()) as { keys: Array<{ kid: string }> };
  assert.ok(
    served.keys.some((k) => k.kid === rotated.kid),
    'the rotated key is served',
  );
});
