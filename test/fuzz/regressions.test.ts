// Plain regression tests for what the fuzzer found at the front door, one per case, each
// naming the property and seed that found it. They run against a real cache (in process)
// and a real origin, like the integration tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:http2';
import { loadConfig } from '../../src/config/load.js';
import { startStack } from '../helpers/stack.js';
import { fetchBlob, http1Raw } from '../helpers/http.js';

test('Range on an empty blob: a suffix range gets the whole (empty) blob, others 416', async (t) => {
  // fuzz range, seed -2087989711: `bytes=-5` on 0 bytes was answered 206 with the
  // impossible `Content-Range: bytes 0--1/0`.
  const s = await startStack(t);
  const blob = s.origin.add(Buffer.alloc(0));
  const url = s.blobUrl('team/app', blob.digest, await s.origin.mint('team/app', blob.digest));
  for (const agent of [s.h1, s.h2]) {
    const suffix = await fetchBlob(agent, url, { headers: { range: 'bytes=-5' } });
    assert.equal(suffix.status, 200);
    assert.equal(suffix.headers['content-range'], undefined);
    assert.equal(suffix.headers['content-length'], '0');
    assert.equal(suffix.error, null);
    const open = await fetchBlob(agent, url, { headers: { range: 'bytes=0-' } });
    assert.equal(open.status, 416);
    assert.equal(open.headers['content-range'], 'bytes */0');
  }
});

test('an If-Range that does not name the blob makes Range ignored, an unsatisfiable one too (RFC 9110 §13.1.5)', async (t) => {
  // fuzz headers, seed -639623533: the oracle expected 416 for `bytes=-0` with `If-Range: "x"`
  // on an empty blob; the cache answered 200, as the RFC says (the oracle now models If-Range).
  const s = await startStack(t);
  for (const bytes of [Buffer.alloc(0), randomBytes(1000)]) {
    const blob = s.origin.add(bytes);
    const url = s.blobUrl('team/app', blob.digest, await s.origin.mint('team/app', blob.digest));
    for (const agent of [s.h1, s.h2]) {
      const ignored = await fetchBlob(agent, url, { headers: { range: 'bytes=-0', 'if-range': '"x"' } });
      assert.equal(ignored.status, 200);
      assert.equal(ignored.body.length, bytes.length);
      const honoured = await fetchBlob(agent, url, { headers: { range: 'bytes=-0', 'if-range': `"${blob.digest}"` } });
      assert.equal(honoured.status, 416);
      assert.equal(honoured.headers['content-range'], `bytes */${bytes.length}`);
    }
  }
});

test('Range with empty list elements is honoured (RFC 9110 §5.6.1); whitespace inside a range is not the grammar', async (t) => {
  // fuzz range, seed -2087989711 (shrunk): `bytes=0-,` was ignored whole and answered 200.
  const s = await startStack(t);
  const bytes = randomBytes(1000);
  const blob = s.origin.add(bytes);
  const url = s.blobUrl('team/app', blob.digest, await s.origin.mint('team/app', blob.digest));
  const trailing = await fetchBlob(s.h2, url, { headers: { range: 'bytes=0-9,' } });
  assert.equal(trailing.status, 206);
  assert.equal(trailing.headers['content-range'], 'bytes 0-9/1000');
  assert.deepEqual(trailing.body, bytes.subarray(0, 10));
  const inner = await fetchBlob(s.h2, url, { headers: { range: 'bytes=, 5-9 ,,-2' } });
  assert.equal(inner.status, 206);
  assert.match(String(inner.headers['content-type']), /^multipart\/byteranges; /);
  const spaced = await fetchBlob(s.h2, url, { headers: { range: 'bytes=0 - 9' } });
  assert.equal(spaced.status, 200, 'outside the grammar: ignored, as every malformed Range');
  assert.deepEqual(spaced.body, bytes);
});

test('HEAD ignores Range on a hit, as on a miss (RFC 9110 §14.2)', async (t) => {
  // fuzz headers, seed 1972641230: HEAD + `Range: bytes=0-` on a stored empty blob was 416,
  // and on other stored blobs 206, while the same HEAD on a miss was 200.
  const s = await startStack(t);
  const bytes = randomBytes(5000);
  const blob = s.origin.add(bytes);
  const url = s.blobUrl('team/app', blob.digest, await s.origin.mint('team/app', blob.digest));
  const miss = await fetchBlob(s.h1, url, { method: 'HEAD', headers: { range: 'bytes=10-19' } });
  assert.equal(miss.status, 200);
  assert.equal((await fetchBlob(s.h1, url)).status, 200, 'stored');
  for (const agent of [s.h1, s.h2]) {
    const hit = await fetchBlob(agent, url, { method: 'HEAD', headers: { range: 'bytes=10-19' } });
    assert.equal(hit.status, 200);
    assert.equal(hit.headers['content-length'], String(bytes.length));
    assert.equal(hit.headers['content-range'], undefined);
    const past = await fetchBlob(agent, url, { method: 'HEAD', headers: { range: 'bytes=9999-' } });
    assert.equal(past.status, 200);
  }
  const get = await fetchBlob(s.h2, url, { headers: { range: 'bytes=10-19' } });
  assert.equal(get.status, 206, 'a GET still gets its range');
});

test('a token with whitespace or padding inside is no compact JWS: 401, on a hit and on a miss', async (t) => {
  // fuzz tokens, seed 1796635961: a genuine token with a space in its signature verified
  // (jose's decoder skips whitespace). With a newline, the miss forwarded it upstream as a
  // header undici refuses: 502, and the healthy upstream penalised.
  const s = await startStack(t);
  const stored = s.origin.add(randomBytes(3000));
  const storedToken = await s.origin.mint('team/app', stored.digest);
  assert.equal((await fetchBlob(s.h2, s.blobUrl('team/app', stored.digest, storedToken))).status, 200);
  const cold = s.origin.add(randomBytes(3000));
  const coldToken = await s.origin.mint('team/app', cold.digest);
  const broken = (token: string, how: string): string => {
    const at = token.lastIndexOf('.') + 5;
    return `${token.slice(0, at)}${how}${token.slice(at)}`;
  };
  for (const how of [' ', '\n', '\t', '=']) {
    for (const [digest, token] of [
      [stored.digest, storedToken],
      [cold.digest, coldToken],
    ] as const) {
      const r = await fetchBlob(s.h2, s.blobUrl('team/app', digest, broken(token, how)));
      assert.equal(
        r.status,
        401,
        `${JSON.stringify(how)} in the signature of a token for ${digest === stored.digest ? 'a hit' : 'a miss'}`,
      );
      const body = JSON.parse(r.body.toString()) as { errors: Array<{ code: string; detail: { check: string } }> };
      assert.equal(body.errors[0]?.code, 'UNAUTHORIZED');
      assert.equal(body.errors[0]?.detail.check, 'header');
    }
  }
  assert.equal(s.origin.count(s.origin.gets, cold.digest), 0, 'nothing forwarded upstream');
  assert.equal(
    (await fetchBlob(s.h2, s.blobUrl('team/app', cold.digest, coldToken))).status,
    200,
    'the intact token works',
  );
});

test('a config error never says "found ," : a tagged empty value is described', () => {
  // fuzz config, seed -545314882: REGISTRY_HTTP_TLS_KEY='!!binary' gave
  // `config error: http.tls.key (from REGISTRY_HTTP_TLS_KEY): found , expected …`.
  const text = 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /tmp/x\nhttp:\n  addr: :5000\n';
  const env = { REGISTRY_HTTP_TLS_KEY: '!!binary', REGISTRY_HTTP_TLS_CERTIFICATE: '/tmp/c.pem' };
  assert.throws(
    () => loadConfig(text, { env }),
    (err: Error) => {
      assert.equal(
        err.message,
        'config error: http.tls.key (from REGISTRY_HTTP_TLS_KEY): found binary data (!!binary), expected a private key file path',
      );
      return true;
    },
  );
});

test('a repeated Expect: 100-continue is that expectation over HTTP/2 too; any other gets 417 with the registry body', async (t) => {
  // fuzz headers, seed 12367909: two `Expect: 100-continue` fields over HTTP/2 (joined, so
  // not exactly `100-continue`) were answered 417 by node:http2, with no registry body.
  const s = await startStack(t);
  const blob = s.origin.add(randomBytes(1000));
  const url = s.blobUrl('team/app', blob.digest, await s.origin.mint('team/app', blob.digest));
  const session = connect(s.cache.url, { ca: s.ca.cert });
  t.after(() => session.close());
  const get = (expect: string) =>
    new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
      const stream = session.request({ ':path': url.slice(s.cache.url.length), expect });
      const chunks: Buffer[] = [];
      let status = 0;
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => resolve({ status, body: Buffer.concat(chunks) }));
      stream.on('error', reject);
      stream.end();
    });
  const twice = await get('100-continue, 100-Continue');
  assert.equal(twice.status, 200);
  assert.equal(twice.body.length, 1000);
  const other = await get('100-continue, something-else');
  assert.equal(other.status, 417);
  assert.equal(JSON.parse(other.body.toString()).errors[0].code, 'UNSUPPORTED');
  // HTTP/1.1: node:http takes any list naming 100-continue; another expectation is 417, with the body.
  const h1 = await http1Raw(s.cache.url, url.slice(s.cache.url.length), s.ca.cert, { expect: 'something-else' });
  assert.equal(h1.status, 417);
  assert.equal(JSON.parse(h1.body.toString()).errors[0].code, 'UNSUPPORTED');
});
