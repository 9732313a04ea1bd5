// Mirror mode on a node of two serving processes (http.processes: 2), as `dtr-cache serve`
// runs by default on this machine: collapse holds for the node, not only for a process. 20
// pulls of one cold image, half through each process, make one upstream GET for the tag and
// one per blob; 20 revalidations of the tag, half through each, make one upstream HEAD.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'node:test';
import type { Client } from 'undici';
import { createOciImage } from '../../testkit/image.js';
import { spawnCache, writeConfig } from '../helpers/cache.js';
import { pair, pinConnections, servingPids } from '../helpers/node-probe.js';
import { ACCEPT_ALL, MIRROR_USER, REGISTRY, mirrorsYaml, startMirrorStack } from '../helpers/mirror.js';

test('two serving processes: one upstream GET per tag and blob, one HEAD per revalidation, for the node', async (t) => {
  // The upstream and CA of a stack; its own in-process cache goes unused: the node under
  // test is the spawned one.
  const s = await startMirrorStack(t);
  const cfg = await writeConfig({
    upstreams: [],
    cas: [s.ca.certPath],
    tls: await s.ca.issue('node'),
    extraHttp: '  processes: 2\n',
    extraTop: mirrorsYaml(
      [{ registry: REGISTRY, username: MIRROR_USER.user, password: MIRROR_USER.password, default: true, tagttl: '0s' }],
      s.upstream.url,
      s.ca.certPath,
    ),
  });
  t.after(() => rm(cfg.dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 }));
  const node = await spawnCache(t, cfg.path, cfg.root, { REGISTRY_HTTP_PROCESSES: '2' });
  const pids = pair(await servingPids(node.lines, 2));
  const [onA, onB] = await pinConnections(t, node.url, s.ca.cert, node.lines, pids, 10);
  const clients: Client[] = [...(onA ?? []), ...(onB ?? [])];
  assert.equal(clients.length, 20);

  const img = await createOciImage(join(s.dir, 'img'), { layers: [400_000, 100_000], seed: 'procs', tag: 'v1' });
  await s.upstream.putOciLayout(img.dir, 'team/app', 'v1');
  const blobs = [img.configDigest, ...img.layerDigests];
  s.upstream.setLatency(300);
  const get = async (c: Client, path: string, accept?: string) => {
    const res = await c.request({ path, method: 'GET', headers: accept === undefined ? {} : { accept } });
    const body = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, digest: res.headers['docker-content-digest'], size: body.length };
  };
  const wave = () =>
    Promise.all(
      clients.map(async (c) => {
        const m = await get(c, '/v2/team/app/manifests/v1', ACCEPT_ALL);
        assert.equal(m.status, 200);
        assert.equal(m.digest, img.manifestDigest);
        for (const [i, d] of blobs.entries()) {
          const b = await get(c, `/v2/team/app/blobs/${d}`);
          assert.equal(b.status, 200, d);
          assert.equal(b.size, i === 0 ? img.configSize : img.sizes[i - 1]);
        }
      }),
    );
  const answered = (pattern: RegExp) =>
    s.upstreamLog(pattern).filter((e) => e.status !== 401 && e.path.startsWith('/v2/team/app/'));

  await wave();
  assert.deepEqual(
    answered(/\/manifests\//).map((e) => e.method),
    ['GET'],
    'one manifest GET for the node',
  );
  for (const d of blobs) {
    assert.equal(answered(new RegExp(`/blobs/${d}$`)).filter((e) => e.method === 'GET').length, 1, `one GET of ${d}`);
  }
  await wave();
  assert.deepEqual(
    answered(/\/manifests\//).map((e) => e.method),
    ['GET', 'HEAD'],
    'tagttl 0: one HEAD for twenty revalidations on two processes',
  );
  const served = node.lines.filter((l) => l['msg'] === 'request' && l['route'] === 'manifest');
  assert.deepEqual(new Set(served.map((l) => Number(l['pid']))), new Set(pids), 'both processes answered manifests');
});
