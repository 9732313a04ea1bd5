// Every invalid config value is an exit-worthy, one-line ConfigError naming the key path and
// line: durations, addresses, upstream URLs and lists, CA and TLS files, log settings,
// maxsize, limits, and YAML itself.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfigFile } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { assertConfigError, checkError, fillUrls, load, seed, simple } from '../helpers/config.js';
import { dir, fillAll, useTempDir, writeConfig } from '../helpers/config-files.js';

useTempDir();

describe('every invalid value is an exit-worthy ConfigError with key path and line', () => {
  it('bad blobttl', async () => {
    const text = (await simple()).replace('blobttl: 24h', 'blobttl: 24x');
    assertConfigError(() => load(text), {
      keyPath: 'middleware.registry[0].options.blobttl',
      line: 13,
      message:
        'config error: middleware.registry[0].options.blobttl (line 13): found "24x", expected a Go duration such as 24h, 90m or 1h30m',
    });
    assertConfigError(() => load(text.replace('24x', '-24h')), {
      keyPath: 'middleware.registry[0].options.blobttl',
      line: 13,
    });
    assertConfigError(() => load(text.replace('24x', '0')), {
      keyPath: 'middleware.registry[0].options.blobttl',
      line: 13,
      message: /expected a positive Go duration/,
    });
  });

  it('blobttl without storage.delete.enabled: true', async () => {
    const off = (await simple()).replace('enabled: true', 'enabled: false');
    assertConfigError(() => load(off), {
      keyPath: 'middleware.registry[0].options.blobttl',
      line: 13,
      message:
        /found 24h with storage.delete.enabled false, expected storage.delete.enabled: true whenever blobttl is set/,
    });
    const unset = (await simple()).replace('  delete:\n    enabled: true\n', '');
    assertConfigError(() => load(unset), {
      keyPath: 'middleware.registry[0].options.blobttl',
      line: 11,
      message: /storage.delete.enabled unset/,
    });
    // Without blobttl, delete may stay off: blobs then never expire.
    const noTtl = off.replace('          blobttl: 24h\n', '');
    assert.equal(load(noTtl).config.downstream.blobTtlMs, null);
  });

  it('bad http.addr', async () => {
    const base = await simple();
    // Quoted so that YAML reads each as a string (`[::1]` unquoted is a flow list); 5000 is a number.
    for (const bad of [
      '5000',
      '"localhost"',
      '"::1:5000"',
      '"[::1]:99999"',
      '":http"',
      '"exa mple:80"',
      '"[nope]:80"',
      '" :5000"',
      '"host:"',
    ]) {
      assertConfigError(() => load(base.replace('addr: :5000', `addr: ${bad}`)), {
        keyPath: 'http.addr',
        line: 8,
        message: /expected a listen address host:port such as :5000/,
      });
    }
    const ok = (addr: string): Config['http'] => load(base.replace('addr: :5000', `addr: ${addr}`)).config.http;
    assert.deepEqual([ok('"[::1]:5001"').host, ok('"[::1]:5001"').port], ['::1', 5001]);
    assert.deepEqual([ok('localhost:80').host, ok('localhost:80').port], ['localhost', 80]);
    assert.deepEqual([ok('127.0.0.1:0').host, ok('127.0.0.1:0').port], ['127.0.0.1', 0]);
    assert.equal(load(base.replace('  addr: :5000\n', '')).config.http.port, 5000);
  });

  it('a very long value is shown shortened, so the message keeps what was expected', async () => {
    // The CLI writes the message and exits: stderr into a pipe (docker logs, systemd) kept
    // only the first 64 KiB of a message quoting a 100,000-character value, without "expected".
    const long = 'x'.repeat(100_000);
    const text = (await simple()).replace('addr: :5000', `addr: "${long}"`);
    assertConfigError(() => load(text), {
      keyPath: 'http.addr',
      message:
        /^config error: http\.addr \(line \d+\): found "x{100}…" \(100000 characters\), expected a listen address/,
    });
    assert.throws(
      () => load(text),
      (err: Error) => err.message.length < 400,
    );
  });

  it('bad URL in upstreams (both forms) and in http.host', async () => {
    const v23 = (url: string): string =>
      'version: 0.1\nmiddleware:\n  registry:\n    - name: downstream\n      options:\n        upstreams:\n' +
      `          - https://ok.example.org\n          - ${url}\n`;
    for (const bad of [
      'ftp://dtr.example.org',
      'dtr.example.org',
      'https://dtr.example.org/v2/',
      'https://dtr.example.org?x=1',
      'https://user:pw@dtr.example.org',
      'https://',
      '/abs/path',
    ]) {
      assertConfigError(() => load(v23(bad)), {
        keyPath: 'middleware.registry[0].options.upstreams[1]',
        line: 8,
        message: /expected an absolute http:\/\/ or https:\/\/ URL/,
      });
    }
    const normalised = load(v23('HTTPS://DTR.Example.org:443/')).config.downstream.upstreams;
    assert.deepEqual(normalised, { hosts: ['https://ok.example.org', 'https://dtr.example.org'], origin: null });

    const china = fillUrls(await seed('003-china.yml')).replace(
      'https://asia-cache.example.org:5000',
      'https://asia/x',
    );
    assertConfigError(() => load(china), {
      keyPath: 'middleware.registry[0].options.upstreams[0].upstreamhosts[0]',
      line: 20,
    });
    const host = fillUrls(await seed('002-swarm.yml')).replace(
      'host: https://cache.example.org',
      'host: cache.example.org',
    );
    assertConfigError(() => load(host), { keyPath: 'http.host', line: 12 });
  });

  it('missing upstreams, empty upstreams, no downstream middleware', async () => {
    const base = await simple();
    const noUpstreams = base.replace('          upstreams:\n            - originhost: https://dtr.example.org\n', '');
    assertConfigError(() => load(noUpstreams), {
      keyPath: 'middleware.registry[0].options.upstreams',
      line: 12,
      message: /found nothing, expected a non-empty list of upstreams/,
    });
    const empty = base.replace(
      '          upstreams:\n            - originhost: https://dtr.example.org\n',
      '          upstreams: []\n',
    );
    assertConfigError(() => load(empty), {
      keyPath: 'middleware.registry[0].options.upstreams',
      line: 14,
      message: /found an empty list/,
    });
    const noOrigin = base.replace('- originhost: https://dtr.example.org', '- upstreamhosts: [https://a.example.org]');
    assertConfigError(() => load(noOrigin), {
      keyPath: 'middleware.registry[0].options.upstreams[0].originhost',
      line: 15,
    });
    const other = base.replace('name: downstream', 'name: redirect');
    assertConfigError(() => load(other), {
      keyPath: 'middleware.registry',
      line: 10,
      message: /found no entry named "downstream"/,
    });
    assertConfigError(() => load('version: 0.1\n'), {
      keyPath: 'middleware.registry',
      line: null,
      message: /found nothing/,
    });
  });

  it('two DTR 2.2 upstream entries, mixed forms, two downstream entries', async () => {
    const two = (await simple()).replace(
      '            - originhost: https://dtr.example.org\n',
      '            - originhost: https://dtr.example.org\n            - originhost: https://other.example.org\n',
    );
    assertConfigError(() => load(two), {
      keyPath: 'middleware.registry[0].options.upstreams[1]',
      line: 16,
      message: /found a second entry/,
    });
    const mixed = (await simple()).replace(
      '            - originhost: https://dtr.example.org\n',
      '            - originhost: https://dtr.example.org\n            - https://other.example.org\n',
    );
    assertConfigError(() => load(mixed), { keyPath: 'middleware.registry[0].options.upstreams[1]', line: 16 });
    const dup = `${await simple()}      - name: downstream\n        options:\n          upstreams: [https://x.example.org]\n`;
    assertConfigError(() => load(dup), { keyPath: 'middleware.registry[1].name', line: 18 });
  });

  it('missing or non-PEM cas file (loadConfigFile only; loadConfig does not touch files)', async () => {
    const { text } = await fillAll(await seed('003-china.yml'));
    const missing = text.replace(join(dir, 'dtr-ca.pem'), join(dir, 'no-such-ca.pem'));
    assert.doesNotThrow(() => load(missing));
    await assert.rejects(loadConfigFile(await writeConfig('missing-ca.yml', missing), {}), (err) =>
      checkError(err, {
        keyPath: 'middleware.registry[0].options.cas[1]',
        line: 23,
        message: /found ".*no-such-ca\.pem" \(ENOENT\), expected a readable PEM file/,
      }),
    );
    const notPem = join(dir, 'not-pem.pem');
    await writeFile(notPem, 'hello\n');
    const bad = text.replace(join(dir, 'asia-cache-ca.pem'), notPem);
    await assert.rejects(loadConfigFile(await writeConfig('bad-ca.yml', bad), {}), (err) =>
      checkError(err, { keyPath: 'middleware.registry[0].options.cas[0]', line: 22, message: /without one/ }),
    );
    const relative = text.replace(join(dir, 'dtr-ca.pem'), 'certs/dtr-ca.pem');
    assertConfigError(() => load(relative), {
      keyPath: 'middleware.registry[0].options.cas[1]',
      line: 23,
      message: /absolute path/,
    });
  });

  it('missing TLS certificate file', async () => {
    const { text } = await fillAll(await seed('003-asia.yml'));
    const gone = text.replace(join(dir, 'asia-ca.pem'), join(dir, 'gone.pem'));
    await assert.rejects(loadConfigFile(await writeConfig('gone.yml', gone), {}), (err) =>
      checkError(err, { keyPath: 'http.tls.certificate', line: 10 }),
    );
  });

  it('a missing config file', async () => {
    await assert.rejects(loadConfigFile(join(dir, 'nope.yml'), {}), (err) =>
      checkError(err, { keyPath: '(document)', line: null, message: /\(ENOENT\), expected a readable config file/ }),
    );
  });

  it('TLS certificate without key, and key without certificate', async () => {
    const asia = fillUrls(await seed('003-asia.yml'));
    assertConfigError(() => load(asia.replace('    key: /certs/asia-key.pem\n', '')), {
      keyPath: 'http.tls.certificate',
      line: 10,
      message: /found a certificate without a key, expected http.tls.key to be set too/,
    });
    assertConfigError(() => load(asia.replace('    certificate: /certs/asia-ca.pem\n', '')), {
      keyPath: 'http.tls.key',
      line: 10,
    });
  });

  it('bad log level and formatter', async () => {
    const base = (await simple()).replace('version: 0.1\n', 'version: 0.1\nlog:\n  level: loud\n');
    assertConfigError(() => load(base), {
      keyPath: 'log.level',
      line: 3,
      message:
        'config error: log.level (line 3): found "loud", expected a log level: trace, debug, info, warn, error, fatal or panic',
    });
    assert.equal(load(base.replace('loud', 'panic')).config.log.level, 'fatal');
    assert.equal(load(base.replace('loud', 'warning')).config.log.level, 'warn');
    assert.equal(load(base.replace('loud', 'DEBUG')).config.log.level, 'debug');
    const fmt = base.replace('level: loud', 'formatter: xml');
    assertConfigError(() => load(fmt), { keyPath: 'log.formatter', line: 3 });
    const logstash = load(base.replace('level: loud', 'formatter: logstash'));
    assert.equal(logstash.config.log.formatter, 'json');
    assert.match(logstash.warnings.join('\n'), /log.formatter \(line 3\): logstash is not supported/);
    // distribution takes an empty formatter for its default, as if unset; an empty level it refuses.
    assert.equal(load(base.replace('level: loud', 'formatter: ""')).config.log.formatter, 'json');
    assertConfigError(() => load(base.replace('loud', '""')), { keyPath: 'log.level', line: 3 });
  });

  it("log.accesslog.disabled, distribution's key: on by default, a boolean", async () => {
    const base = await simple();
    assert.equal(load(base).config.log.accessLog, true);
    const off = base.replace('version: 0.1\n', 'version: 0.1\nlog:\n  accesslog:\n    disabled: true\n');
    assert.equal(load(off).config.log.accessLog, false);
    assert.equal(load(off.replace('disabled: true', 'disabled: false')).config.log.accessLog, true);
    assertConfigError(() => load(off.replace('disabled: true', 'disabled: sometimes')), {
      keyPath: 'log.accesslog.disabled',
      line: 4,
    });
  });

  it('bad maxsize, and maxsize without delete.enabled', async () => {
    const base = await simple();
    const withSize = (s: string): string =>
      base.replace('          blobttl: 24h\n', `          blobttl: 24h\n          maxsize: ${s}\n`);
    for (const bad of ['lots', '10G', '-5', '1.5', '0', '10XB']) {
      assertConfigError(() => load(withSize(bad)), { keyPath: 'middleware.registry[0].options.maxsize', line: 14 });
    }
    assert.equal(load(withSize('200GiB')).config.downstream.maxSize, 200 * 2 ** 30);
    assert.equal(load(withSize('500MB')).config.downstream.maxSize, 500e6);
    const noDelete = withSize('1GB').replace('enabled: true', 'enabled: false').replace('          blobttl: 24h\n', '');
    assertConfigError(() => load(noDelete), {
      keyPath: 'middleware.registry[0].options.maxsize',
      message: /whenever maxsize is set/,
    });
  });

  it('other invalid values: version, storage driver, limits, workerqueue, jwks, YAML syntax', async () => {
    const base = await simple();
    assertConfigError(() => load(base.replace('version: 0.1', 'version: 0.2')), { keyPath: 'version', line: 1 });
    assertConfigError(() => load(base.replace('  filesystem:', '  s3:')), {
      keyPath: 'storage.s3',
      line: 5,
      message: /found the s3 storage driver, expected the filesystem storage driver/,
    });
    const limits = (body: string): string => base.replace('  addr: :5000\n', `  addr: :5000\n  limits:\n${body}`);
    assertConfigError(() => load(limits('    headerstimeout: 40s\n')), {
      keyPath: 'http.limits.headerstimeout',
      line: 10,
    });
    assertConfigError(() => load(limits('    maxconcurrentstreams: 0\n')), {
      keyPath: 'http.limits.maxconcurrentstreams',
      line: 10,
    });
    assertConfigError(() => load(limits('    idletimeout: soon\n')), { keyPath: 'http.limits.idletimeout', line: 10 });
    const opts = (line: string): string =>
      base.replace('          blobttl: 24h\n', `          blobttl: 24h\n          ${line}\n`);
    assertConfigError(() => load(opts('workerqueue: 0')), {
      keyPath: 'middleware.registry[0].options.workerqueue',
      line: 14,
    });
    assertConfigError(() => load(opts('directwrites: sometimes')), {
      keyPath: 'middleware.registry[0].options.directwrites',
      line: 14,
    });
    assert.equal(load(opts('directwrites: false')).config.downstream.directWrites, false);
    assertConfigError(() => load(opts('jwks: http://dtr.example.org/.well-known/jwks.json')), {
      keyPath: 'middleware.registry[0].options.jwks',
      line: 14,
    });
    assertConfigError(() => load(opts('timeouts: {connect: 0s}')), {
      keyPath: 'middleware.registry[0].options.timeouts.connect',
      line: 14,
    });
    assertConfigError(() => load(`${base}bad: a: b\n`), {
      keyPath: '(document)',
      line: 18,
      message: /found invalid YAML/,
    });
    // A duplicate key names its path, as every other error does (architecture §8).
    assertConfigError(() => load('version: 0.1\nhttp: {}\nhttp: {}\n'), {
      keyPath: 'http',
      line: 3,
      message: /found the key "http" given twice/,
    });
    assertConfigError(() => load('version: 0.1\nhttp: {addr: ":1", "addr" : ":2"}\n'), {
      keyPath: 'http.addr',
      line: 2,
      message: /found the key "addr" given twice/,
    });
    // Under a key no path can name (none of our schema's), the document is named.
    assertConfigError(() => load('version: 0.1\n:http:\n  addr: ":1"\n  addr: ":2"\n'), {
      keyPath: '(document)',
      line: 4,
      message: /found the key "addr" given twice/,
    });
    assertConfigError(() => load(opts('blobttl: 1h')), {
      keyPath: 'middleware.registry[0].options.blobttl',
      line: 14,
      message:
        /^config error: middleware\.registry\[0\]\.options\.blobttl \(line 14\): found the key "blobttl" given twice/,
    });
    assertConfigError(() => load(base.replace('  addr: :5000\n', '  addr:\n    - :5000\n')), {
      keyPath: 'http.addr',
      line: 8,
      message: /found a list/,
    });
  });
});
