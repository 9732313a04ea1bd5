// The registry error table and its documentation agree (DESIGN.md style §3): every code
// in src/errors/registry.ts appears in README's error table with the same status, and the
// README lists no code the table lacks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { REGISTRY_ERRORS, RegistryError } from '../../src/errors/registry.js';

const README = new URL('../../../README.md', import.meta.url);

test('README error table = REGISTRY_ERRORS', async () => {
  const text = await readFile(README, 'utf8');
  const section = text.slice(text.indexOf('## Errors'), text.indexOf('\n## ', text.indexOf('## Errors') + 1));
  const rows = [...section.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])] as const);
  assert.ok(rows.length > 5, 'the table was found');
  assert.deepEqual(new Map(rows), new Map(Object.entries(REGISTRY_ERRORS).map(([code, e]) => [code, e.status])));
});

test('a RegistryError renders the distribution error body', () => {
  const err = new RegistryError('UNAVAILABLE', { status: 504, message: 'timed out', detail: { reason: 'timeout' } });
  assert.equal(err.status, 504);
  assert.deepEqual(JSON.parse(err.body()), {
    errors: [{ code: 'UNAVAILABLE', message: 'timed out', detail: { reason: 'timeout' } }],
  });
  assert.deepEqual(JSON.parse(new RegistryError('DENIED').body()), {
    errors: [{ code: 'DENIED', message: REGISTRY_ERRORS.DENIED.message }],
  });
});
