// The distribution spec's repository-name grammar (src/distribution/name.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isRepositoryName, validateName } from '../../src/distribution/name.js';
import { RegistryError } from '../../src/errors/registry.js';

test('repository names: the distribution grammar, at most 255 characters', () => {
  for (const ok of ['app', 'team/app', 'a/b/c', 'my.app', 'my_app', 'my__app', 'my--app', 'a0/9z', 'x'.repeat(255)]) {
    assert.equal(isRepositoryName(ok), true, ok);
    assert.equal(validateName(ok), ok);
  }
  const bad = [
    '',
    'App',
    'team//app',
    '/app',
    'app/',
    'a..b',
    'a___b',
    '.app',
    'app-',
    'a/../b',
    'a%2fb',
    'x'.repeat(256),
  ];
  for (const name of bad) {
    assert.equal(isRepositoryName(name), false, name);
    assert.throws(
      () => validateName(name),
      (e: unknown) => e instanceof RegistryError && e.code === 'NAME_INVALID' && e.status === 400,
    );
  }
});
