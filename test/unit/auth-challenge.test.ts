// Unit tests of src/auth's request side: the Bearer challenge (with quoting) and taking the
// token from ?token= or an Authorization: Bearer header.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bearerChallenge, realmFor } from '../../src/auth/challenge.js';
import { tokenFromRequest } from '../../src/auth/extract.js';

describe('challenge and extraction', () => {
  it('builds the Bearer challenge with quoting', () => {
    assert.equal(realmFor('https://dtr.example.org/'), 'https://dtr.example.org/auth/token');
    assert.equal(bearerChallenge({ realm: 'r', service: 's' }), 'Bearer realm="r",service="s"');
    assert.equal(
      bearerChallenge({ realm: 'a"b\\c', service: 'x\r\ny', error: 'invalid_token' }),
      'Bearer realm="a\\"b\\\\c",service="xy",error="invalid_token"',
    );
  });

  it('takes the token from ?token= or Authorization: Bearer', () => {
    const q = (s: string) => new URLSearchParams(s);
    assert.equal(tokenFromRequest(q('token=abc.def.ghi'), undefined), 'abc.def.ghi');
    assert.equal(tokenFromRequest(q(''), 'Bearer abc.def.ghi'), 'abc.def.ghi');
    assert.equal(tokenFromRequest(q(''), 'bearer   abc.def-_~+/='), 'abc.def-_~+/=');
    assert.equal(tokenFromRequest(q('token=from.query.x'), 'Bearer from.header.x'), 'from.query.x');
    assert.equal(tokenFromRequest(q('token='), undefined), null);
    assert.equal(tokenFromRequest(q(''), undefined), null);
    assert.equal(tokenFromRequest(q(''), 'Basic dXNlcjpwYXNz'), null);
    assert.equal(tokenFromRequest(q(''), 'Bearer'), null);
    assert.equal(tokenFromRequest(q(''), 'Bearer a b'), null);
    assert.equal(tokenFromRequest(q(''), 'Bearer a"b'), null);
  });
});
