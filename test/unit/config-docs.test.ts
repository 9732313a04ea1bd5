// The configs published with the DTR documentation load unchanged (placeholders filled in,
// paths pointed at real PEM files), the result is deeply frozen, and config.example.yml loads
// cleanly and stays in step with DEFAULTS.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseDocument } from 'yaml';
import { DEFAULTS } from '../../src/config/defaults.js';
import { loadConfigFile } from '../../src/config/load.js';
import { DAY_MS, ROOT, assertConfigError, fillUrls, load, seed, simple } from '../helpers/config.js';
import { fillAll, useTempDir, writeConfig } from '../helpers/config-files.js';

useTempDir();

describe('DTR documentation configs load unchanged', () => {
  it('002 Deploy a DTR cache with Swarm (DTR 2.3+ list form, TLS, host, secret)', async () => {
    const { text, paths } = await fillAll(await seed('002-swarm.yml'));
    const { config, warnings } = await loadConfigFile(await writeConfig('002.yml', text), {});
    assert.deepEqual(warnings, []);
    assert.equal(config.version, '0.1');
    assert.equal(config.log.level, 'info');
    assert.deepEqual(config.storage, { deleteEnabled: true, rootDirectory: '/var/lib/registry' });
    assert.equal(config.http.host, '0.0.0.0');
    assert.equal(config.http.port, 443);
    assert.equal(config.http.publicUrl, 'https://cache.example.org');
    assert.equal(config.http.secret, 'generate-random-secret');
    assert.deepEqual(config.http.tls, {
      certificate: paths.get('/run/secrets/cache.cert.pem'),
      key: paths.get('/run/secrets/cache.key.pem'),
      clientCas: [],
    });
    assert.equal(config.downstream.blobTtlMs, DAY_MS);
    assert.deepEqual(config.downstream.upstreams, { hosts: ['https://dtr.example.org:4443'], origin: null });
    assert.deepEqual(config.downstream.cas, [paths.get('/run/secrets/dtr.cert.pem')]);
  });

  it('003 Chain multiple caches: the Asia cache pulls from DTR (2.2 originhost only)', async () => {
    const { text, paths } = await fillAll(await seed('003-asia.yml'));
    const { config, warnings } = await loadConfigFile(await writeConfig('003-asia.yml', text), {});
    assert.deepEqual(warnings, []);
    assert.equal(config.http.host, '');
    assert.equal(config.http.port, 5000);
    assert.deepEqual(config.http.tls, {
      certificate: paths.get('/certs/asia-ca.pem'),
      key: paths.get('/certs/asia-key.pem'),
      clientCas: [],
    });
    assert.deepEqual(config.downstream.upstreams, { hosts: [], origin: 'https://dtr.example.org' });
    assert.deepEqual(config.downstream.cas, [paths.get('/certs/dtr-ca.pem')]);
  });

  it('003 Chain multiple caches: the China cache pulls from the Asia cache, origin DTR', async () => {
    const { text, paths } = await fillAll(await seed('003-china.yml'));
    const { config, warnings } = await loadConfigFile(await writeConfig('003-china.yml', text), {});
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.downstream.upstreams, {
      hosts: ['https://asia-cache.example.org:5000'],
      origin: 'https://dtr.example.org',
    });
    assert.deepEqual(config.downstream.cas, [paths.get('/certs/asia-cache-ca.pem'), paths.get('/certs/dtr-ca.pem')]);
    assert.equal(config.downstream.blobTtlMs, DAY_MS);
  });

  it('004 Deploy a simple cache (no TLS, port 5000)', async () => {
    const { text, paths } = await fillAll(await seed('004-simple.yml'));
    const { config, warnings } = await loadConfigFile(await writeConfig('004-simple.yml', text), {});
    assert.deepEqual(warnings, []);
    assert.equal(config.http.tls, null);
    assert.equal(config.http.port, 5000);
    assert.deepEqual(config.downstream.upstreams, { hosts: [], origin: 'https://dtr.example.org' });
    assert.deepEqual(config.downstream.cas, [paths.get('/certs/dtr-ca.pem')]);
    // Everything not in the file takes its default.
    assert.equal(config.log.level, 'info');
    assert.equal(config.log.formatter, 'json');
    assert.equal(config.http.drainTimeoutMs, 30_000);
    assert.equal(config.http.debug, null);
    assert.deepEqual(config.http.limits, {
      maxHeaderSize: 16384,
      headersTimeoutMs: 10_000,
      requestTimeoutMs: 30_000,
      idleTimeoutMs: 60_000,
      maxConcurrentStreams: 100,
      maxConnectionsPerIp: 256,
      maxResetsPerSecond: 100,
    });
    assert.deepEqual(config.downstream.timeouts, { connectMs: 10_000, headersMs: 30_000, bodyIdleMs: 30_000 });
    assert.equal(config.downstream.workerQueue, 256);
    assert.equal(config.downstream.directWrites, false);
    assert.equal(config.downstream.jwks, null);
    assert.equal(config.downstream.issuer, null);
    assert.equal(config.downstream.maxSize, null);
  });

  it('004 configuration reference fragment, following a registry config as the docs say', async () => {
    // "Settings that you would include in a Docker Registry configuration file followed by":
    const base = 'version: 0.1\nstorage:\n  delete:\n    enabled: true\n';
    const { text, paths } = await fillAll(base + (await seed('004-reference.yml')));
    const { config, warnings } = await loadConfigFile(await writeConfig('004-reference.yml', text), {});
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.downstream.upstreams, {
      hosts: ['https://cache-a.example.org', 'https://cache-b.example.org:8443'],
      origin: 'https://dtr.example.org',
    });
    assert.deepEqual(config.downstream.cas, [paths.get('/certs/cache-a-ca.pem'), paths.get('/certs/cache-b-ca.pem')]);
  });

  it('the reference fragment alone is not a complete config', async () => {
    const fragment = fillUrls(await seed('004-reference.yml'));
    assertConfigError(() => load(fragment), { keyPath: 'version', line: null });
  });

  it('the docs configs with their <placeholders> still in place are refused, with a hint', async () => {
    const raw = await seed('004-simple.yml');
    assertConfigError(() => load(raw), {
      keyPath: 'middleware.registry[0].options.upstreams[0].originhost',
      line: 15,
      message:
        /found "https:\/\/<dtr-url>", expected an absolute .* \(replace the <placeholder> from the documentation\)$/,
    });
  });

  it('the result is deeply frozen', async () => {
    const { config } = load(await simple());
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.http.limits));
    assert.ok(Object.isFrozen(config.downstream.upstreams.hosts));
    assert.ok(Object.isFrozen(config.downstream.cas));
    assert.throws(() => {
      (config.http as { port: number }).port = 1;
    }, TypeError);
  });
});

describe('config.example.yml', () => {
  const examplePath = join(ROOT, 'config.example.yml');

  it('loads with no warnings', async () => {
    const { config, warnings } = load(await readFile(examplePath, 'utf8'));
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.downstream.upstreams, { hosts: ['https://dtr.example.org'], origin: null });
  });

  it("says what becomes of the registry's keys a cache does not use, as the loader does", async () => {
    const text = await readFile(examplePath, 'utf8');
    const comment = text
      .split('\n')
      .filter((l) => l.startsWith('#'))
      .map((l) => l.replace(/^# ?/, ''))
      .join(' ');
    const warned = /ignored with a warning, so that a registry's config\.yml loads: (.*?);/.exec(comment)?.[1];
    assert.ok(warned !== undefined, 'config.example.yml lists the keys it ignores with a warning');
    const names = warned
      .replace(/[(),]|\band\b/g, ' ')
      .split(/\s+/)
      .filter((n) => /^[a-z][a-z0-9.]*$/.test(n));
    // Every Docker Registry section and key the loader warns about rather than reads.
    const expected = ['auth', 'notifications', 'redis', 'health', 'reporting', 'validation', 'compatibility'];
    for (const n of [...expected, 'log.hooks', 'http.http2', 'http.h2c']) assert.ok(names.includes(n), n);
    const base = await simple();
    for (const name of names) {
      const doc = parseDocument(base);
      doc.setIn(name.split('.'), doc.createNode({ x: 1 }));
      const { warnings } = load(doc.toString());
      assert.ok(
        warnings.some((w) => w.startsWith(`config warning: ${name} (line `)),
        `${name}: ${warnings.join(' | ')}`,
      );
    }
    // Refused instead, with the key path: the docs name each, and the loader refuses each.
    const refused: Array<[string, string[], unknown]> = [
      ['storage drivers other than filesystem', ['storage', 's3'], { bucket: 'b' }],
      ['http.prefix other than "/"', ['http', 'prefix'], '/registry/'],
      ['http.net other than tcp', ['http', 'net'], 'unix'],
      ['http.tls.letsencrypt', ['http', 'tls', 'letsencrypt'], { cachefile: '/x' }],
    ];
    for (const [words, path, value] of refused) {
      assert.ok(comment.includes(words), `config.example.yml says: ${words}`);
      const doc = parseDocument(base);
      doc.setIn(path, doc.createNode(value));
      assertConfigError(() => load(doc.toString()), { keyPath: path.join('.') });
    }
  });

  it('sets every key of DEFAULTS, to its default', async () => {
    const text = await readFile(examplePath, 'utf8');
    const doc = parseDocument(text);
    // Where the example deliberately differs from the default, with a comment saying so.
    const differs = new Set(['storage.delete.enabled']);
    const leaves: Array<[string[], unknown]> = [];
    const walk = (obj: object, path: string[]): void => {
      for (const [k, v] of Object.entries(obj)) {
        if (typeof v === 'object' && v !== null) walk(v, [...path, k]);
        else leaves.push([[...path, k], v]);
      }
    };
    walk(DEFAULTS, []);
    assert.ok(leaves.length >= 18, `found ${leaves.length} defaults`);
    for (const [path, value] of leaves) {
      // Mirror mode is off in the example: its defaults are written in the commented proxy section.
      if (path[0] === 'proxy') {
        const section = text.slice(text.indexOf('\n# proxy:'));
        assert.match(
          section,
          new RegExp(`^#   ${String(path[1])}: ${String(value)}$`, 'm'),
          `proxy.${String(path[1])}`,
        );
        continue;
      }
      const yamlPath = path[0] === 'downstream' ? ['middleware', 'registry', 0, 'options', ...path.slice(1)] : path;
      const name = path.join('.');
      assert.ok(doc.hasIn(yamlPath), `${name} is missing from config.example.yml`);
      if (!differs.has(name))
        assert.equal(doc.getIn(yamlPath), value, `${name} in config.example.yml is not its default`);
    }
  });
});
