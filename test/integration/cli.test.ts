// As a user meets it: `dtr-cache check-config` exits 0 for the DTR doc configs
// (placeholders filled) and 2 for each bad value, naming the key path and line; usage
// errors exit 2 too. `dtr-cache health` answers for the node serving a config.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createTestCa } from '../../testkit/pki.js';
import { cliNodeFlags, spawnCache, writeConfig } from '../helpers/cache.js';
import { TestOrigin } from '../helpers/origin.js';
import { removeAtExit } from '../../testkit/tmp.js';

const run = promisify(execFile);
const CLI = new URL('../../src/cli.js', import.meta.url).pathname;
const SEEDS = new URL('../../../test/fixtures/seeds/', import.meta.url).pathname;

async function cli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 60_000,
): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await run(process.execPath, [...(await cliNodeFlags()), CLI, ...args], {
      env: { ...process.env, ...env },
      timeout: timeoutMs,
      killSignal: 'SIGKILL',
    });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, out: x.stdout, err: x.stderr };
  }
}

/** A `node` on PATH of another major than the one running the tests (the system's), if any. */
async function otherNode(): Promise<string | null> {
  const mine = process.versions.node.split('.')[0];
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    const candidate = join(dir, 'node');
    const v = await run(candidate, ['-p', 'process.versions.node']).catch(() => null);
    if (v !== null && v.stdout.trim().split('.')[0] !== mine) return candidate;
  }
  return null;
}

test('run on another Node.js major, the CLI exits 1 saying which one it needs', async (t) => {
  const node = await otherNode();
  if (node === null) {
    t.skip('no other Node.js major on PATH');
    return;
  }
  const r = await run(node, [CLI, 'check-config', '--config', '/nonexistent.yml']).catch(
    (e: unknown) => e as { code: number; stderr: string },
  );
  assert.equal('code' in r ? r.code : 0, 1);
  assert.match(r.stderr, /^dtr-cache: runs on Node\.js \d+, and this is v\d+\./);
});

test('check-config: the DTR doc configs load; bad values exit 2 naming key path and line', async () => {
  const dir = removeAtExit(await mkdtemp(join(tmpdir(), 'dtr-cache-cli-')));
  const ca = await createTestCa();
  const leaf = await ca.issue('cache');
  const fill = (text: string) =>
    text
      .replace(/<dtr-url>:<dtr-port>/g, 'dtr.example.org:443')
      .replace(/<[a-z-]+>/g, 'host.example.org')
      // The TLS pair gets the cache's certificate and key (they must match); `cas` the CA.
      .replace(/certificate: \/\S+\.pem/g, `certificate: ${leaf.certPath}`)
      .replace(/\/(run\/secrets|certs)\/[a-z.-]+\.pem/g, (m) => (m.includes('key') ? leaf.keyPath : ca.certPath));
  for (const file of ['002-swarm.yml', '003-asia.yml', '003-china.yml', '004-simple.yml']) {
    const path = join(dir, file);
    await writeFile(path, fill(await readFile(join(SEEDS, file), 'utf8')));
    const r = await cli(['check-config', '--config', path]);
    assert.equal(r.code, 0, `${file}: ${r.err}`);
    assert.match(r.out, /configuration ok/);
  }
  const base = fill(await readFile(join(SEEDS, '004-simple.yml'), 'utf8'));
  const cases: Array<[string, string, RegExp]> = [
    ['blobttl: 24h', 'blobttl: 24x', /middleware\.registry\[0\]\.options\.blobttl \(line \d+\): found "24x"/],
    ['enabled: true', 'enabled: false', /blobttl.*storage\.delete\.enabled/],
    ['addr: :5000', 'addr: nowhere', /http\.addr \(line \d+\): found "nowhere"/],
  ];
  for (const [from, to, expect] of cases) {
    const path = join(dir, 'bad.yml');
    assert.ok(base.includes(from));
    await writeFile(path, base.replace(from, to));
    const r = await cli(['check-config', '--config', path]);
    assert.equal(r.code, 2, `${to}: ${r.out}`);
    assert.match(r.err, expect);
    assert.equal(r.err.trim().split('\n').length, 1, 'one message');
  }
  // A storage root that cannot be one, and a TLS key that is not the certificate's: refused
  // here, not when the node starts (or at its first miss).
  const rootFile = join(dir, 'not-a-directory');
  await writeFile(rootFile, 'x');
  const files: Array<[string, string, RegExp]> = [
    [
      '004-simple.yml',
      base.replace('rootdirectory: /var/lib/registry', `rootdirectory: ${rootFile}/registry`),
      /storage\.filesystem\.rootdirectory \(line \d+\): found ".*not-a-directory\/registry" \(ENOTDIR\)/,
    ],
    [
      '003-asia.yml',
      fill(await readFile(join(SEEDS, '003-asia.yml'), 'utf8')).replace(
        leaf.keyPath,
        (await ca.issue('other')).keyPath,
      ),
      /http\.tls\.key \(line \d+\): found ".*" \(.*key values mismatch\).*expected the private key of/,
    ],
  ];
  for (const [name, text, expect] of files) {
    const path = join(dir, `refused-${name}`);
    await writeFile(path, text);
    const r = await cli(['check-config', '--config', path]);
    assert.equal(r.code, 2, `${name}: ${r.out}`);
    assert.match(r.err, expect);
  }
  // Environment overrides, distribution style; a bad one names the variable.
  const good = join(dir, 'good.yml');
  await writeFile(good, base);
  assert.equal((await cli(['check-config', '--config', good], { REGISTRY_HTTP_ADDR: '127.0.0.1:5999' })).code, 0);
  const badEnv = await cli(['check-config', '--config', good], { REGISTRY_LOG_LEVEL: 'loud' });
  assert.equal(badEnv.code, 2);
  assert.match(badEnv.err, /REGISTRY_LOG_LEVEL/);
  // An unknown key is a warning, not an error.
  await writeFile(good, base.replace('http:\n', 'http:\n  adr: :5000\n'));
  const warned = await cli(['check-config', '--config', good]);
  assert.equal(warned.code, 0);
  assert.match(warned.err, /^config warning: http\.adr \(line \d+\): unknown key, ignored$/m);
  // Usage errors.
  assert.equal((await cli(['serve'])).code, 2);
  assert.equal((await cli(['serve', '--bogus'])).code, 2);
  assert.equal((await cli(['nonsense', '--config', good])).code, 2);
});

test("the config file as distribution takes it: the command's argument (`serve config.yml`)", async () => {
  const dir = removeAtExit(await mkdtemp(join(tmpdir(), 'dtr-cache-cli-')));
  const good = join(dir, 'good.yml');
  await writeFile(
    good,
    'version: 0.1\nmiddleware:\n  registry:\n    - name: downstream\n      options:\n        upstreams: [https://dtr.example.org]\n',
  );
  const bad = join(dir, 'bad.yml');
  await writeFile(bad, 'version: 0.1\nhttp:\n  addr: nope\n');

  const ok = await cli(['check-config', good]);
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /configuration ok/);
  // `serve` reads the file it is given, as `registry serve config.yml` does: here, a bad one.
  const served = await cli(['serve', bad], {}, 20_000);
  assert.equal(served.code, 2, served.err);
  assert.match(served.err, /^config error: http\.addr \(line 3\): found "nope"/);
  // The same file both ways is one file; two different ones, or an extra argument, are refused.
  assert.equal((await cli(['check-config', '--config', good, good])).code, 0);
  const two = await cli(['check-config', '--config', good, bad]);
  assert.equal(two.code, 2);
  assert.match(two.err, /^dtr-cache: two config files given: .*good\.yml and .*bad\.yml/);
  const extra = await cli(['check-config', good, 'extra']);
  assert.equal(extra.code, 2);
  assert.match(extra.err, /^dtr-cache: unexpected argument "extra"/);
  const extraAfterOption = await cli(['check-config', '--config', good, good, 'extra']);
  assert.equal(extraAfterOption.code, 2);

  // With no file on the command line, REGISTRY_CONFIGURATION_PATH names it, as in distribution
  // (and it is not an unknown setting to warn about); the command line wins over it.
  const fromEnv = await cli(['check-config'], { REGISTRY_CONFIGURATION_PATH: good });
  assert.equal(fromEnv.code, 0, fromEnv.err);
  assert.equal(fromEnv.err, '');
  const argWins = await cli(['check-config', bad], { REGISTRY_CONFIGURATION_PATH: good });
  assert.equal(argWins.code, 2);
  assert.match(argWins.err, /^config error: http\.addr/);
  assert.equal((await cli(['health'], { REGISTRY_CONFIGURATION_PATH: bad })).code, 1);
});

/** A port free on loopback now (the cache's config names it: the health check reads it there). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A test CA, an origin that uses it (closed after the test) and a leaf for the cache. */
async function originAndLeaf(t: TestContext) {
  const ca = await createTestCa();
  const origin = await TestOrigin.start(await ca.issue('origin'));
  t.after(() => origin.close());
  return { ca, origin, tls: await ca.issue('cache') };
}

/** A cache config that serves on 127.0.0.1:`port` (the health check and a second node read it there). */
async function configOnPort(port: number, spec: Parameters<typeof writeConfig>[0]) {
  const cfg = await writeConfig(spec);
  await writeFile(cfg.path, (await readFile(cfg.path, 'utf8')).replace('addr: 127.0.0.1:0', `addr: 127.0.0.1:${port}`));
  return cfg;
}

test('health: asks the node of this config, on its debug server or else its serving port; 1 once it stops', async (t) => {
  const { ca, origin, tls } = await originAndLeaf(t);
  // As DTR's own configs are: no debug server. The check asks /v2/ on the serving port.
  const port = await freePort();
  const plain = await configOnPort(port, { upstreams: [origin.url], cas: [ca.certPath], tls });
  const down = await cli(['health', '--config', plain.path]);
  assert.equal(down.code, 1, 'nothing serves this config yet');
  assert.match(down.err, new RegExp(`https://127\\.0\\.0\\.1:${port}/v2/: .*ECONNREFUSED`));
  const node = await spawnCache(t, plain.path, plain.root);
  const up = await cli(['health', '--config', plain.path]);
  assert.equal(up.code, 0, up.err);
  assert.equal(up.out.trim(), `https://127.0.0.1:${port}/v2/: status 200`);
  assert.equal(await node.stop('SIGTERM'), 0);
  assert.equal((await cli(['health', '--config', plain.path])).code, 1, 'stopped: unhealthy');

  // With a debug server, its /debug/health (which also reports the store, the keys, draining).
  const debugPort = await freePort();
  const withDebug = await writeConfig({
    upstreams: [origin.url],
    cas: [ca.certPath],
    tls,
    extraHttp: `  debug:\n    addr: 127.0.0.1:${debugPort}\n`,
  });
  await spawnCache(t, withDebug.path, withDebug.root);
  const debug = await cli(['health', '--config', withDebug.path]);
  assert.equal(debug.code, 0, debug.err);
  assert.equal(debug.out.trim(), `http://127.0.0.1:${debugPort}/debug/health: status 200`);
});

test('health of a node that wants client certificates (clientcas) and has no debug server: its TLS handshake is its answer', async (t) => {
  const { ca, origin, tls } = await originAndLeaf(t);
  const port = await freePort();
  const cfg = await configOnPort(port, {
    upstreams: [origin.url],
    cas: [ca.certPath],
    tls,
    extraTls: `    clientcas:\n      - ${ca.certPath}\n`,
  });
  const node = await spawnCache(t, cfg.path, cfg.root);
  const up = await cli(['health', '--config', cfg.path]);
  assert.equal(up.code, 0, up.err);
  assert.equal(
    up.out.trim(),
    `https://127.0.0.1:${port}/v2/: TLS handshake answered (a client certificate is required)`,
  );
  assert.equal(await node.stop('SIGTERM'), 0);
  const down = await cli(['health', '--config', cfg.path]);
  assert.equal(down.code, 1, 'stopped: unhealthy');
  assert.match(down.err, /ECONNREFUSED/);
});

test('health: a config it cannot read is "not healthy", exit 1 (Docker reserves 2 in a HEALTHCHECK)', async () => {
  const dir = removeAtExit(await mkdtemp(join(tmpdir(), 'dtr-cache-cli-')));
  const bad = join(dir, 'bad.yml');
  await writeFile(bad, 'version: 0.1\nhttp:\n  addr: nope\n');
  const r = await cli(['health', '--config', bad]);
  assert.equal(r.code, 1);
  assert.match(r.err, /^config error: http\.addr \(line 3\): found "nope"/);
  assert.equal((await cli(['health', '--config', join(dir, 'missing.yml')])).code, 1);
});

test('health without a config file: asks the running node, with the file and REGISTRY_* overrides it serves with', async (t) => {
  const { ca, origin, tls } = await originAndLeaf(t);
  // The file says port 0; only the node's environment names the port it serves on, as with
  // `docker run -e REGISTRY_HTTP_ADDR=…`: a check reading the file alone could not find it.
  const port = await freePort();
  const cfg = await writeConfig({ upstreams: [origin.url], cas: [ca.certPath], tls });
  // Two serving processes: the check must count the node once, not each of its processes.
  const node = await spawnCache(t, cfg.path, cfg.root, {
    REGISTRY_HTTP_ADDR: `127.0.0.1:${port}`,
    REGISTRY_HTTP_PROCESSES: '2',
  });
  const pid = String(node.child.pid);
  const answer = `https://127.0.0.1:${port}/v2/: status 200 (the node of pid ${pid}, ${cfg.path})`;
  const named = await cli(['health', '--pid', pid]);
  assert.equal(named.code, 0, named.err);
  assert.equal(named.out.trim(), answer);
  // As in a container: no argument, the node is found among the processes. A file named by
  // the check's own environment does not turn it to another node's config.
  const found = await cli(['health'], { REGISTRY_CONFIGURATION_PATH: join(cfg.dir, 'elsewhere.yml') });
  assert.equal(found.code, 0, found.err);
  assert.equal(found.out.trim(), answer);

  assert.equal(await node.stop('SIGTERM'), 0);
  const gone = await cli(['health', '--pid', pid]);
  assert.equal(gone.code, 1, 'stopped: unhealthy');
  assert.match(gone.err, new RegExp(`^dtr-cache health: process ${pid} is not a dtr-cache serve`));
  const none = await cli(['health']);
  assert.equal(none.code, 1);
  assert.match(none.err, /^dtr-cache health: no running dtr-cache serve of .* found/);
});

test('serve: a second node on the port of a running one fails with EADDRINUSE, not joins it', async (t) => {
  const { ca, origin, tls } = await originAndLeaf(t);
  const port = await freePort();
  const onPort = () =>
    configOnPort(port, { upstreams: [origin.url], cas: [ca.certPath], tls, extraHttp: '  processes: 2\n' });
  const running = await onPort();
  await spawnCache(t, running.path, running.root, { REGISTRY_HTTP_PROCESSES: '2' });
  const second = await onPort();
  // Joined, it would serve until killed (code null): bounded by the timeout.
  const r = await cli(['serve', '--config', second.path], { REGISTRY_HTTP_PROCESSES: '2' }, 20_000);
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /EADDRINUSE/);
});

test('serve: a key set that cannot be loaded exits 1 with its cause and the config keys to check', async (t) => {
  const { ca, origin, tls } = await originAndLeaf(t);
  // No `cas`: the origin's certificate, from the test CA, is not trusted.
  const untrusted = await writeConfig({ upstreams: [origin.url], cas: [], tls });
  const r = await cli(['serve', '--config', untrusted.path]);
  assert.equal(r.code, 1, r.err);
  const at = 'middleware\\.registry\\[0\\]\\.options';
  assert.match(
    r.err,
    /^dtr-cache: the trusted keys \(JWK Set\) could not be loaded: fetching JWK Set from https:\/\/.*\/\.well-known\/jwks\.json failed: unable to verify the first certificate.* \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)$/m,
  );
  assert.match(r.err, new RegExp(`^dtr-cache: check ${at}\\.upstreams .*, ${at}\\.cas .*, or set ${at}\\.jwks`, 'm'));

  // The origin down: the refused connection is the cause.
  const port = await freePort();
  const down = await writeConfig({ upstreams: [`https://127.0.0.1:${port}`], cas: [ca.certPath], tls });
  const r2 = await cli(['serve', '--config', down.path]);
  assert.equal(r2.code, 1, r2.err);
  assert.match(r2.err, new RegExp(`failed: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}$`, 'm'));
  assert.match(r2.err, new RegExp(`check ${at}\\.upstreams`));
});

test('serve: a port that cannot be bound exits 1 naming http.addr or http.debug.addr', async (t) => {
  const { ca, origin, tls } = await originAndLeaf(t);
  const held = createServer();
  await new Promise<void>((resolve) => held.listen(0, '127.0.0.1', resolve));
  t.after(() => held.close());
  const { port } = held.address() as AddressInfo;
  const inUse = (processes: number, extraHttp: string) =>
    configOnPort(extraHttp === '' ? port : 0, {
      upstreams: [origin.url],
      cas: [ca.certPath],
      tls,
      extraHttp: `  processes: ${processes}\n${extraHttp}`,
    });
  const cases: Array<[number, string, string]> = [
    [1, '', 'http.addr'],
    // A node of several processes: the supervisor binds the port first, then the debug server.
    [2, '', 'http.addr'],
    [1, `  debug:\n    addr: 127.0.0.1:${port}\n`, 'http.debug.addr'],
    [2, `  debug:\n    addr: 127.0.0.1:${port}\n`, 'http.debug.addr'],
  ];
  for (const [processes, extraHttp, key] of cases) {
    const cfg = await inUse(processes, extraHttp);
    const r = await cli(['serve', '--config', cfg.path], {}, 20_000);
    assert.equal(r.code, 1, r.err);
    const k = key.replace(/\./g, '\\.');
    assert.match(
      r.err,
      new RegExp(`^dtr-cache: cannot listen on 127\\.0\\.0\\.1:${port} \\(${k}\\): .*EADDRINUSE`, 'm'),
    );
    assert.match(r.err, new RegExp(`^dtr-cache: check ${k}: another process .* listens on that port$`, 'm'));
  }
});
