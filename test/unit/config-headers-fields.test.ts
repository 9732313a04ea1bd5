// distribution's http.headers (name → list of values) and log.fields (name → value), read
// with their key paths: types checked, names the cache manages refused or warned.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertConfigError, load, simple } from '../helpers/config.js';

describe('http.headers', () => {
  const withHeaders = async (lines: string): Promise<string> =>
    (await simple()).replace('  addr: :5000\n', `  addr: :5000\n  headers:\n${lines}`);

  it('a mapping of header names to lists of values, kept in order', async () => {
    const { config, warnings } = load(
      await withHeaders('    X-Content-Type-Options: [nosniff]\n    X-Multi:\n      - a\n      - 2\n    X-None:\n'),
    );
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.http.headers, [
      ['X-Content-Type-Options', ['nosniff']],
      ['X-Multi', ['a', '2']],
    ]);
    assert.deepEqual(load(await simple()).config.http.headers, []);
  });

  it('wrong types, bad names and values, and headers the cache sets itself name the key path', async () => {
    const cases: Array<[string, string, RegExp]> = [
      ['    X-Scalar: nosniff\n', 'http.headers.X-Scalar', /found "nosniff", expected a list of header values/],
      ['    X-Map: {a: b}\n', 'http.headers.X-Map', /found a mapping, expected a list of header values/],
      ['    X-Nested: [[a]]\n', 'http.headers.X-Nested[0]', /found a list, expected a header value/],
      ['    "Bad Name": [x]\n', 'http.headers.Bad Name', /found "Bad Name", expected a header name/],
      ['    X-Ctl: ["a\\nb"]\n', 'http.headers.X-Ctl[0]', /expected a header value without control characters/],
      ['    Content-Length: ["0"]\n', 'http.headers.Content-Length', /expected a header the cache does not set itself/],
      ['    connection: [close]\n', 'http.headers.connection', /found the header connection/],
    ];
    for (const [lines, keyPath, message] of cases) {
      const text = await withHeaders(lines);
      assertConfigError(() => load(text), { keyPath, line: 10, message });
    }
    const list = (await simple()).replace('  addr: :5000\n', '  addr: :5000\n  headers: [a]\n');
    assertConfigError(() => load(list), { keyPath: 'http.headers', line: 9, message: /expected a mapping/ });
  });
});

describe('log.fields', () => {
  const withFields = async (lines: string): Promise<string> =>
    (await simple()).replace('version: 0.1\n', `version: 0.1\nlog:\n  fields:\n${lines}`);

  it('a mapping of names to scalar values; names every line already has are warned and ignored', async () => {
    const { config, warnings } = load(
      await withFields('    service: registry\n    zone: 7\n    canary: true\n    pid: 1\n    status: x\n'),
    );
    assert.deepEqual(config.log.fields, { service: 'registry', zone: 7, canary: true });
    assert.deepEqual(warnings, [
      'config warning: log.fields.pid (line 7): a field every log line already has, ignored',
      'config warning: log.fields.status (line 8): a field every log line already has, ignored',
    ]);
    assert.deepEqual(load(await simple()).config.log.fields, {});
  });

  it('values may be mappings and lists, as distribution reads them into interface{}; the fields themselves must be a mapping', async () => {
    const nested = await withFields('    labels: {team: infra, tier: [edge, 2]}\n    owners: [a, b]\n    empty: ~\n');
    assert.deepEqual(load(nested).config.log.fields, {
      labels: { team: 'infra', tier: ['edge', 2] },
      owners: ['a', 'b'],
    });
    const list = (await simple()).replace('version: 0.1\n', 'version: 0.1\nlog:\n  fields: [a]\n');
    assertConfigError(() => load(list), { keyPath: 'log.fields', line: 3, message: /expected a mapping/ });
  });
});
