// Mirror mode on a node of two serving processes (http.processes: 2), as `dtr-cache serve`
// runs by default on this machine: collapse holds for the node, not only for a process. 20
// pulls of one cold image, half through each process, make one upstream GET for the tag and
// one per blob; 20 revalidations of the tag, half through each, make one upstream HEAD.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import test, { type TestContext } from 'node:test';
import type { Client } from 'undici';
import { createOciImage } from '../../testkit/image.js';
import { spawnCache, writeConfig } from '../helpers/cache.js';
import { first, pair, pinConnections, servingPids } from '../helpers/node-probe.js';
import {
  ACCEPT_ALL,
  MIRROR_USER,
  REGISTRY,
  mirrorsYaml,
  startMirrorStack,
  type MirrorEntry,
  type MirrorStack,
} from '../helpers/mirror.js';

/** A node of two serving processes mirroring `entries`, spawned from a config of its own, and its serving pids. */
async function mirrorNode(t: TestContext, s: MirrorStack, entries: MirrorEntry[]) {
  const cfg = await writeConfig({
    upstreams: [],
    cas: [s.ca.certPath],
    tls: await s.ca.issue('node'),
    extraHttp: '  processes: 2\n',
    extraTop: mirrorsYaml(entries, s.upstream.url, s.ca.certPath),
  });
  t.after(() => rm(cfg.dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 }));
  const node = await spawnCache(t, cfg.path, cfg.root, { REGISTRY_HTTP_PROCESSES: '2' });
  return { node, pids: pair(await servingPids(node.lines, 2)) };
}

test('two serving processes: one upstream GET per tag and blob, one HEAD per revalidation, for the node', async (t) => {
  // The upstream and CA of a stack; its own in-process cache goes unused: the node under
  // test is the spawned one.
  const s = await startMirrorStack(t);
  const { node, pids } = await mirrorNode(t, s, [
    { registry: REGISTRY, username: MIRROR_USER.user, password: MIRROR_USER.password, default: true, tagttl: '0s' },
  ]);
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

test('two serving processes: one Via name for the node; a loop through the other process is refused (508)', async (t) => {
  const s = await startMirrorStack(t);
  // The upstream of the mirror under test: it records each request's Via and knows nothing.
  const leaf = await s.ca.issue('probe-upstream');
  const seen: Array<{ path: string; via: string }> = [];
  const upstream = createHttpsServer({ cert: leaf.cert, key: leaf.key }, (req, res) => {
    seen.push({ path: req.url ?? '', via: String(req.headers.via ?? '') });
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}');
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => upstream.close(resolve)));
  const port = (upstream.address() as AddressInfo).port;
  const { node, pids } = await mirrorNode(t, s, [
    { registry: 'probe.test', remoteurl: `https://localhost:${port}`, default: true, tagttl: '0s' },
  ]);
  const [onA, onB] = (await pinConnections(t, node.url, s.ca.cert, node.lines, pids, 1)).map(first);
  if (onA === undefined || onB === undefined) throw new Error('no connection per process');
  const manifest = async (c: Client, tag: string, via?: string) => {
    const res = await c.request({
      path: `/v2/team/app/manifests/${tag}`,
      method: 'GET',
      headers: { accept: ACCEPT_ALL, ...(via === undefined ? {} : { via }) },
    });
    await res.body.dump();
    return res.statusCode;
  };
  assert.equal(await manifest(onA, 'through-a'), 404);
  assert.equal(await manifest(onB, 'through-b'), 404);
  const hop = (tag: string) => {
    const via = seen.find((r) => r.path.endsWith(`/manifests/${tag}`))?.via ?? '';
    assert.match(via, /^1\.1 \S+$/, `one hop in the Via of ${tag}`);
    return via;
  };
  const [viaA, viaB] = [hop('through-a'), hop('through-b')];
  assert.equal(viaA, viaB, 'both processes send the same Via name');
  // A request this node forwarded, coming back to it through the other process: a loop.
  const before = seen.length;
  assert.equal(await manifest(onB, 'loop', viaA), 508);
  assert.equal(await manifest(onA, 'loop', `1.0 elsewhere, ${viaB}`), 508);
  assert.equal(seen.length, before, 'a loop is not forwarded again');
});

test('two serving processes: an upstream in back-off after failures seen by one process is in back-off for the node', async (t) => {
  // docs/mirror.md §2, stale-if-error: right after failures the stale tag is served at once,
  // without asking the upstream (and waiting on its timeouts) again, whichever process a
  // client's connection landed on; as in DTR mode, the processes tell each other (upstream/host.ts).
  const s = await startMirrorStack(t);
  const leaf = await s.ca.issue('flaky-upstream');
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'c'.repeat(64)}`, size: 2 },
      layers: [],
    }),
  );
  const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
  let down = false;
  const seen: string[] = [];
  const upstream = createHttpsServer({ cert: leaf.cert, key: leaf.key }, (req, res) => {
    seen.push(`${req.method ?? ''} ${req.url ?? ''}`);
    // Up, it knows one tag (pinConnections' probes are 404s); down, every request is a 503.
    if (down || req.url !== '/v2/team/app/manifests/v1') {
      res.writeHead(down ? 503 : 404, { 'content-type': 'application/json' });
      res.end(`{"errors":[{"code":"${down ? 'UNAVAILABLE' : 'MANIFEST_UNKNOWN'}","message":"-"}]}`);
      return;
    }
    const headers = { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': digest };
    res.writeHead(200, { ...headers, 'content-length': manifest.length });
    res.end(req.method === 'HEAD' ? undefined : manifest);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => upstream.close(resolve)));
  const port = (upstream.address() as AddressInfo).port;
  const { node, pids } = await mirrorNode(t, s, [
    { registry: 'flaky.test', remoteurl: `https://localhost:${port}`, default: true, tagttl: '0s' },
  ]);
  const [onA, onB] = (await pinConnections(t, node.url, s.ca.cert, node.lines, pids, 1)).map(first);
  if (onA === undefined || onB === undefined) throw new Error('no connection per process');
  const get = async (c: Client, tag: string) => {
    const res = await c.request({
      path: `/v2/team/app/manifests/${tag}`,
      method: 'GET',
      headers: { accept: ACCEPT_ALL },
    });
    await res.body.dump();
    return { status: res.statusCode, digest: res.headers['docker-content-digest'], warning: res.headers['warning'] };
  };
  for (const c of [onA, onB]) assert.deepEqual(await get(c, 'v1'), { status: 200, digest, warning: undefined });

  down = true;
  // Process A meets the outage: a stale tag, then cold tags (asked whatever the back-off),
  // four failures in all: a back-off of 8 s for the node.
  assert.equal((await get(onA, 'v1')).warning, '110 - "Response is Stale", 111 - "Revalidation Failed"');
  for (const tag of ['cold1', 'cold2', 'cold3']) assert.equal((await get(onA, tag)).status, 502, tag);
  const asked = seen.length;
  // The other processes hear of it by the supervisor's messages: give them a moment.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const b = await get(onB, 'v1');
  assert.deepEqual(b, { status: 200, digest, warning: '110 - "Response is Stale", 111 - "Revalidation Failed"' });
  assert.deepEqual(seen.slice(asked), [], 'process B served the stale tag at once, without asking the upstream');
  const line = node.lines.find(
    (l) => l['msg'] === 'upstream unavailable: serving the last known tag' && l['pid'] === pids[1],
  );
  assert.equal(line?.['reason'], 'the upstream is in back-off after failures');
});
