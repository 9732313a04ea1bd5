// The error family: registry table and documentation agree (docs/architecture.md §7), every
// status the cache sends with a registry body is in the table, and every error we throw on
// purpose has a stable code and keeps its cause.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { DtrCacheError, hasCode } from '../../src/errors/base.js';
import { causeChain, errnoCode, messageOf, stackOf } from '../../src/errors/inspect.js';
import { REGISTRY_ERRORS, RegistryError, toRegistryError } from '../../src/errors/registry.js';
import { gatewayError, type UpstreamFailureKind } from '../../src/errors/upstream.js';
import { ConfigError, ValueSyntaxError } from '../../src/config/errors.js';
import { JwksError } from '../../src/auth/errors.js';
import { RegisterError } from '../../src/commands/register/errors.js';
import { MockError } from '../../bench/dtr-mock/errors.js';

const README = new URL('../../../README.md', import.meta.url);

/** Every (code, status) pair the table allows: its default status and the `also` ones. */
function tablePairs(): string[] {
  return Object.entries(REGISTRY_ERRORS)
    .flatMap(([code, e]) => [e.status, ...('also' in e ? e.also : [])].map((s) => `${code} ${s}`))
    .sort();
}

test('README error table = REGISTRY_ERRORS, one row per code and status', async () => {
  const text = await readFile(README, 'utf8');
  const section = text.slice(text.indexOf('## Errors'), text.indexOf('\n## ', text.indexOf('## Errors') + 1));
  const rows = [...section.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map(([, code, status]) => `${code} ${status}`);
  assert.ok(rows.length > 5, 'the table was found');
  assert.equal(new Set(rows).size, rows.length, 'no row twice');
  assert.deepEqual(rows.sort(), tablePairs());
});

test('every gateway status and the internal-error status are in the table', () => {
  const kinds: UpstreamFailureKind[] = ['timeout', 'unreachable', 'reset', 'status'];
  for (const kind of kinds) {
    const err = gatewayError(kind, 'x');
    assert.ok(tablePairs().includes(`${err.code} ${err.status}`), `${kind}: ${err.code} ${err.status}`);
  }
  const cause = new Error('disk on fire');
  const internal = toRegistryError(cause);
  assert.equal(internal.status, 500);
  assert.equal(internal.code, 'UNKNOWN');
  assert.equal(internal.cause, cause, 'the cause is kept for the log');
  assert.ok(tablePairs().includes('UNKNOWN 500'));
  const denied = new RegistryError('DENIED');
  assert.equal(toRegistryError(denied), denied, 'a registry error goes out as it is');
});

test('a RegistryError renders the distribution error body', () => {
  const err = new RegistryError('UNAVAILABLE', { status: 504, message: 'timed out', detail: { reason: 'timeout' } });
  assert.equal(err.status, 504);
  assert.deepEqual(JSON.parse(err.body()), {
    errors: [{ code: 'UNAVAILABLE', message: 'timed out', detail: { reason: 'timeout' } }],
  });
  assert.deepEqual(JSON.parse(new RegistryError('DENIED').body()), {
    errors: [{ code: 'DENIED', message: REGISTRY_ERRORS.DENIED.message, detail: {} }],
  });
});

test('one family: every error class has a code, a cause and its own name', () => {
  const cause = new Error('underneath');
  const errors: Array<DtrCacheError> = [
    new RegistryError('BLOB_UNKNOWN', { cause }),
    new ConfigError({ keyPath: 'a.b', line: 3, envVar: null, found: 'x', expected: 'y', cause }),
    new ValueSyntaxError('DURATION_INVALID', '24x', 'a Go duration'),
    new JwksError('JWKS_LOAD_FAILED', 'loading failed', { cause }),
    new RegisterError('ORIGIN', 'cannot reach the origin', { cause }),
    new MockError('BLOB_UPLOAD_UNKNOWN', { cause }),
  ];
  assert.deepEqual(
    errors.map((e) => [e.name, e.code]),
    [
      ['RegistryError', 'BLOB_UNKNOWN'],
      ['ConfigError', 'CONFIG_INVALID'],
      ['ValueSyntaxError', 'DURATION_INVALID'],
      ['JwksError', 'JWKS_LOAD_FAILED'],
      ['RegisterError', 'ORIGIN'],
      ['MockError', 'BLOB_UPLOAD_UNKNOWN'],
    ],
  );
  for (const e of errors) {
    assert.ok(e instanceof DtrCacheError && e instanceof Error);
    if (!(e instanceof ValueSyntaxError)) assert.equal(e.cause, cause, e.name);
  }
  assert.equal('cause' in new RegistryError('DENIED'), false, 'no cause, no own property');
  assert.ok(hasCode(errors[3], 'JWKS_LOAD_FAILED'));
  assert.ok(!hasCode(errors[3], 'JWKS_INVALID'));
  assert.ok(!hasCode(cause, 'JWKS_LOAD_FAILED'));
});

test("the mock's errors are RegistryErrors over a wider table that keeps the cache's statuses", () => {
  const upload = new MockError('BLOB_UPLOAD_UNKNOWN');
  assert.ok(upload instanceof RegistryError);
  assert.equal(upload.status, 404);
  assert.deepEqual(JSON.parse(upload.body()), {
    errors: [{ code: 'BLOB_UPLOAD_UNKNOWN', message: 'blob upload unknown to registry', detail: {} }],
  });
  for (const [code, e] of Object.entries(REGISTRY_ERRORS)) {
    assert.equal(new MockError(code as keyof typeof REGISTRY_ERRORS).status, e.status, code);
  }
  // The cache's own class knows only the cache's codes, at run time too.
  assert.throws(() => new RegistryError('BLOB_UPLOAD_UNKNOWN' as 'UNKNOWN'), TypeError);
});

test('messageOf, stackOf and errnoCode read any caught value', () => {
  assert.equal(messageOf(new Error('boom')), 'boom');
  assert.equal(messageOf('plain'), 'plain');
  assert.equal(messageOf(undefined), 'undefined');
  assert.match(stackOf(new Error('boom')), /^Error: boom\n\s+at /);
  assert.equal(stackOf(42), '42');
  const enoent = Object.assign(new Error('no such file'), { code: 'ENOENT' });
  assert.equal(errnoCode(enoent), 'ENOENT');
  // undici wraps the socket's error: the code is found through `cause`.
  assert.equal(errnoCode(new Error('fetch failed', { cause: enoent })), 'ENOENT');
  assert.equal(errnoCode(new Error('no code')), undefined);
  assert.equal(errnoCode(null), undefined);
  assert.equal(errnoCode({ code: 42 }), undefined);
});

test('causeChain: every cause once, errno codes added, an AggregateError by its errors', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
  const tls = Object.assign(new Error('unable to verify the first certificate'), {
    code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  });
  const top = new JwksError('JWKS_LOAD_FAILED', 'fetching JWK Set failed', { cause: tls });
  assert.equal(
    causeChain(top),
    'fetching JWK Set failed: unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE)',
  );
  const both = new AggregateError([refused, refused], '');
  assert.equal(causeChain(new Error('outer', { cause: both })), 'outer: connect ECONNREFUSED 127.0.0.1:1');
  assert.equal(causeChain(new Error('same', { cause: new Error('same') })), 'same');
  assert.equal(causeChain('plain'), 'plain');
});
