// distribution's http.headers and log.fields as a client and an operator meet them: the
// headers on every answer of the main listener (HTTP/1.1 and HTTP/2, errors included, the
// cache's own blob headers kept), the fields on every log line (the access log's too).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { request } from 'undici';
import { spawnCache } from '../helpers/cache.js';
import { waitFor } from '../helpers/deadline.js';
import { agentFor, fetchBlob } from '../helpers/http.js';
import { originConfig, startStack } from '../helpers/stack.js';

test('http.headers: on every answer, HTTP/1.1 and HTTP/2, errors included; a blob keeps its own', async (t) => {
  const s = await startStack(t, {
    extraHttp:
      '  headers:\n' +
      '    X-Content-Type-Options: [nosniff]\n' +
      '    X-Frame: [a, b]\n' +
      '    Cache-Control: [no-store]\n',
  });
  const blob = s.origin.add(randomBytes(64 << 10));
  const token = await s.origin.mint('library/app', blob.digest);
  for (const agent of [s.h1, s.h2]) {
    const base = await fetchBlob(agent, `${s.cache.url}/v2/`);
    assert.equal(base.status, 200);
    assert.equal(base.headers['x-content-type-options'], 'nosniff');
    assert.deepEqual([base.headers['x-frame']].flat().join(', '), 'a, b');
    assert.equal(base.headers['cache-control'], 'no-store');

    const hit = await fetchBlob(agent, s.blobUrl('library/app', blob.digest, token));
    assert.equal(hit.status, 200);
    assert.equal(hit.headers['x-content-type-options'], 'nosniff');
    assert.equal(hit.headers['cache-control'], 'max-age=31536000', "the blob's own Cache-Control");
    assert.equal(hit.headers['docker-content-digest'], blob.digest);

    const missing = await fetchBlob(agent, `${s.cache.url}/nowhere`);
    assert.equal(missing.status, 404);
    assert.equal(missing.headers['x-content-type-options'], 'nosniff');
    assert.equal(missing.headers['content-type'], 'application/json; charset=utf-8');
    const noToken = await fetchBlob(agent, s.blobUrl('library/app', blob.digest));
    assert.equal(noToken.status, 401);
    assert.equal(noToken.headers['x-content-type-options'], 'nosniff');
  }
});

test('log.fields: on every line of the node, its serving processes and the access log included', async (t) => {
  const { ca, cfg } = await originConfig(t);
  const text = await readFile(cfg.path, 'utf8');
  await writeFile(cfg.path, text.replace('log:\n', 'log:\n  fields:\n    service: registry\n    zone: 7\n'));
  // Two whatever REGISTRY_HTTP_PROCESSES the suite runs with (npm run test:one-process).
  const node = await spawnCache(t, cfg.path, cfg.root, { REGISTRY_HTTP_PROCESSES: '2' });
  const agent = agentFor(ca.cert, false);
  t.after(() => agent.close());
  const res = await request(`${node.url}/v2/`, { dispatcher: agent });
  await res.body.dump();
  assert.equal(res.statusCode, 200);
  await waitFor(10_000, 'the access log line', () => node.lines.some((l) => l['msg'] === 'request'));
  assert.ok(
    node.lines.some((l) => l['proc'] !== undefined),
    'lines of a serving process',
  );
  for (const line of node.lines) {
    assert.equal(line['service'], 'registry', JSON.stringify(line));
    assert.equal(line['zone'], 7, JSON.stringify(line));
  }
});
