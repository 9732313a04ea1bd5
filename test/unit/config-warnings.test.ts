// What a config may hold that is warned about rather than refused: unknown keys, Docker
// Registry settings a cache does not use, bare-number durations; and YAML anchors and merge
// keys, which resolve as in Go's yaml.v2.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DAY_MS, load, simple } from '../helpers/config.js';

describe('warnings', () => {
  it('unknown keys name the key path and line', async () => {
    const text = (await simple())
      .replace('  addr: :5000\n', '  addr: :5000\n  adr: :6000\n')
      .replace('          blobttl: 24h\n', '          blobttl: 24h\n          blobtll: 1h\n');
    const { config, warnings } = load(text);
    assert.equal(config.downstream.blobTtlMs, DAY_MS);
    assert.deepEqual(warnings, [
      'config warning: http.adr (line 9): unknown key, ignored',
      'config warning: middleware.registry[0].options.blobtll (line 15): unknown key, ignored',
    ]);
  });

  it('distribution keys a cache does not use: silent or warned, never fatal', async () => {
    const text = (await simple())
      .replace(
        'storage:\n',
        'storage:\n  cache:\n    blobdescriptor: inmemory\n  maintenance:\n    uploadpurging:\n      enabled: false\n',
      )
      .replace(
        'version: 0.1\n',
        'version: 0.1\nlog:\n  fields:\n    service: registry\nhealth:\n  storagedriver:\n    enabled: true\n',
      )
      .replace('  addr: :5000\n', '  addr: :5000\n  headers:\n    X-Content-Type-Options: [nosniff]\n')
      .replace(
        'middleware:\n  registry:\n',
        'middleware:\n  repository:\n      - name: foo\n  registry:\n      - name: redirect\n',
      );
    const { warnings } = load(text);
    assert.equal(warnings.length, 3, warnings.join('\n'));
    assert.match(
      warnings[0] ?? '',
      /^config warning: health \(line 5\): a Docker Registry setting that dtr-cache does not use, ignored$/,
    );
    assert.match(warnings.join('\n'), /middleware.repository \(line \d+\): middleware other than/);
    assert.match(
      warnings.join('\n'),
      /middleware.registry\[0\].name \(line \d+\): middleware "redirect" is not supported/,
    );
  });

  it('trusted keys that would come over plain http are warned about (an explicit http jwks is refused)', async () => {
    // DTR's "simple cache" listens on plain http: a cache chained to it would take the keys
    // that authorize every pull from http://…/.well-known/jwks.json, open to a swap in transit.
    const base = await simple();
    const origin = /originhost: (\S+)/.exec(base)?.[1] ?? '';
    const chained = base.replace(
      `originhost: ${origin}`,
      `originhost: ${origin}\n              upstreamhosts:\n                - http://asia-cache.example.org:5000`,
    );
    const { warnings } = load(chained);
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(
      warnings[0] ?? '',
      /^config warning: middleware\.registry\[0\]\.options\.upstreams \(line \d+\): the trusted keys would be fetched over plain http from http:\/\/asia-cache\.example\.org:5000\/\.well-known\/jwks\.json, where they can be swapped in transit; set middleware\.registry\[0\]\.options\.jwks to an https:\/\/ URL or a JWK Set file$/,
    );
    // An explicit jwks, as the warning says, is taken as the source: no warning.
    const pinned = chained.replace(
      '          blobttl: 24h\n',
      '          blobttl: 24h\n          jwks: /certs/jwks.json\n',
    );
    assert.deepEqual(load(pinned).warnings, []);
    // All-https upstreams: no warning.
    assert.deepEqual(load(base).warnings, []);
  });

  it('a tiny bare-number duration (nanoseconds, Go style) is warned about', async () => {
    const text = (await simple()).replace('  addr: :5000\n', '  addr: :5000\n  draintimeout: 30\n');
    const { config, warnings } = load(text);
    assert.equal(config.http.drainTimeoutMs, 0.00003);
    assert.deepEqual(warnings, [
      'config warning: http.draintimeout (line 9): a bare number is nanoseconds (Go duration syntax), so this is 30ns; write a unit such as 30s if that is not meant',
    ]);
  });

  it('YAML anchors and merge keys resolve as in Go yaml.v2', () => {
    const text = [
      'version: 0.1',
      'x-ttl: &ttl 12h',
      'x-limits: &limits {idletimeout: 5m}',
      'storage: {delete: {enabled: yes}}',
      'http:',
      '  limits:',
      '    <<: *limits',
      '    maxheadersize: 32KiB',
      'middleware:',
      '  registry:',
      '    - name: downstream',
      '      options: {blobttl: *ttl, upstreams: [https://dtr.example.org]}',
    ].join('\n');
    const { config, warnings } = load(text);
    assert.equal(config.downstream.blobTtlMs, 12 * 3_600_000);
    assert.equal(config.http.limits.idleTimeoutMs, 300_000);
    assert.equal(config.http.limits.maxHeaderSize, 32 * 1024);
    assert.equal(config.storage.deleteEnabled, true);
    assert.equal(warnings.length, 2); // x-ttl and x-limits are unknown top-level keys
  });
});
