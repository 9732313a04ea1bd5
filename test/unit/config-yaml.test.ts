// The YAML itself, read as Go's yaml.v2 (Docker Registry's parser) reads it: an alias to no
// anchor is an error, not an unset key; a UTF-16 file (with its BOM) is read.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfigFile } from '../../src/config/load.js';
import { assertConfigError, checkError, load, simple } from '../helpers/config.js';
import { dir, fillAll, useTempDir } from '../helpers/config-files.js';

describe('YAML documents as Go yaml.v2 reads them', () => {
  it('an alias with no anchor before it is refused, naming its line', async () => {
    const base = await simple();
    const undefinedAlias = base.replace('    enabled: true\n', '    enabled: *on\n');
    assertConfigError(() => load(undefinedAlias), {
      keyPath: '(document)',
      line: 4,
      message:
        'config error: (document) (line 4): found the alias *on with no &on anchor before it, expected an alias to an anchor defined above it (Docker Registry refuses it too: unknown anchor)',
    });
    // An anchor defined after its alias does not count, as in yaml.v2.
    assertConfigError(() => load(`${undefinedAlias}x-on: &on true\n`), { keyPath: '(document)', line: 4 });
    // Defined above: it resolves.
    const defined = `x-on: &on true\n${undefinedAlias}`;
    assert.equal(load(defined).config.storage.deleteEnabled, true);
  });
});

describe('a stream of several YAML documents', () => {
  it('the first is read, and the rest ignored with a warning naming where they start', async () => {
    const base = await simple();
    const { config, warnings } = load(`${base}---\nversion: 0.2\nhttp: {addr: ":6000"}\n`);
    assert.equal(config.http.port, 5000);
    assert.deepEqual(warnings, [
      'config warning: (document) (line 18): a second YAML document (after ---), ignored as Docker Registry ignores it: only the first is read',
    ]);
    // A trailing --- with nothing after it is no document to warn about.
    assert.deepEqual(load(`${base}---\n`).warnings, []);
    // Leading --- (an explicit start) is one document.
    assert.deepEqual(load(`---\n${base}`).warnings, []);
  });
});

describe('a file without a document', () => {
  it('empty or comments only: no settings; directives alone: an error on their own line count', () => {
    const nothing = {
      keyPath: '(document)',
      line: null,
      message:
        'config error: (document): found nothing, expected a mapping of settings, as in a Docker Registry config.yml',
    };
    assertConfigError(() => load(''), nothing);
    assertConfigError(() => load('# settings to come\n# later\n'), nothing);
    // Four lines, the error at the end of the text: line 5 (the text was once parsed twice
    // into one line counter, whose doubled line starts gave line 10).
    assertConfigError(() => load('# a\n# b\n\n%YAML 1.2\n'), {
      keyPath: '(document)',
      line: 5,
      message: /found invalid YAML \(Missing directives-end indicator line\)/,
    });
  });
});

describe('line breaks', () => {
  it('LF, CRLF and CR alone (YAML line breaks all, which yaml.v2 reads) give one config, and one line count', async () => {
    const base = await simple();
    for (const eol of ['\n', '\r\n', '\r']) {
      const { config } = load(base.replaceAll('\n', eol));
      assert.equal(config.downstream.upstreams.origin, 'https://dtr.example.org', JSON.stringify(eol));
      assert.equal(config.http.port, 5000);
      assertConfigError(() => load(base.replace('24h', '24x').replaceAll('\n', eol)), {
        keyPath: 'middleware.registry[0].options.blobttl',
        line: 13,
      });
    }
  });
});

describe("a file's encoding, as yaml.v2 reads it from the byte order mark", () => {
  useTempDir();

  it('UTF-16 (little or big endian, with its BOM) loads as the UTF-8 text does', async () => {
    const { text } = await fillAll((await simple()).replace('24h', '36h'));
    const utf16le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
    // Big endian: the little-endian code units swapped.
    const utf16be = Buffer.from(utf16le).swap16();
    for (const [name, bytes] of [
      ['le', utf16le],
      ['be', utf16be],
    ] as const) {
      const path = join(dir, `utf16${name}.yml`);
      await writeFile(path, bytes);
      const { config } = await loadConfigFile(path, {});
      assert.equal(config.downstream.blobTtlMs, 36 * 3_600_000, name);
    }
    // Errors name the line, as for UTF-8.
    const bad = join(dir, 'utf16-bad.yml');
    await writeFile(
      bad,
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text.replace('36h', '36x'), 'utf16le')]),
    );
    await assert.rejects(loadConfigFile(bad, {}), (err) =>
      checkError(err, { keyPath: 'middleware.registry[0].options.blobttl', line: 13 }),
    );
  });
});

describe('non-breaking spaces, as copied from a web page', () => {
  it('are named, with their line, where they break the YAML or hide in a value', async () => {
    const base = await simple();
    // Indentation of NBSPs (line 3): YAML reads them as text, and the mapping breaks below.
    assertConfigError(() => load(base.replace('  delete:', '\u00a0\u00a0delete:')), {
      keyPath: '(document)',
      line: 3,
      message:
        'config error: (document) (line 3): found a non-breaking space (U+00A0) at column 1, as pasted from a web page, expected plain spaces (YAML reads U+00A0 as text, not as indentation or a separator)',
    });
    // After a list dash it is part of the value: shown, not an invisible blank.
    assertConfigError(() => load(base.replace('- originhost: https://', '- originhost: \u00a0https://')), {
      keyPath: 'middleware.registry[0].options.upstreams[0].originhost',
      message: /found "\\u00a0https:\/\/dtr\.example\.org"/,
    });
  });
});
