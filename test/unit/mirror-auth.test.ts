// Units of mirror mode's client side: reading WWW-Authenticate, the token cache's life
// (used for 90 % of expires_in, at least the spec's 60 s), concurrent challenges answered by
// one token request, refused credentials, and Accept negotiation as distribution does it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isRegistryError } from '../../src/errors/registry.js';
import { UpstreamAuth, type TokenAnswer } from '../../src/mirror/auth.js';
import { parseChallenge } from '../../src/mirror/challenge.js';
import { acceptedTypes, negotiate } from '../../src/mirror/media.js';

describe('parseChallenge', () => {
  it('reads Bearer parameters, quoted or not, and the first scheme we speak', () => {
    assert.deepEqual(
      parseChallenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
      ),
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/alpine:pull',
        },
      },
    );
    assert.deepEqual(parseChallenge('Negotiate abc==, Basic realm="r\\"x"'), {
      scheme: 'basic',
      params: { realm: 'r"x' },
    });
    assert.deepEqual(parseChallenge(['Digest realm=a', 'bearer Realm=https://x/t , service = s']), {
      scheme: 'bearer',
      params: { realm: 'https://x/t', service: 's' },
    });
    assert.equal(parseChallenge(undefined), null);
    assert.equal(parseChallenge('garbage ='), null);
    assert.deepEqual(parseChallenge('Bearer realm="unterminated'), { scheme: 'bearer', params: {} });
  });
});

describe('UpstreamAuth', () => {
  const challenge = { scheme: 'bearer' as const, params: { realm: 'https://up.test/token', service: 'up' } };

  function make(answers: TokenAnswer[], clock: { now: number }) {
    const asked: Array<{ url: string; authorization: string | null }> = [];
    const auth = new UpstreamAuth({
      remote: 'https://up.test',
      realms: [],
      credentials: { username: 'u', password: 'p' },
      fetchToken: async (url, authorization) => {
        asked.push({ url: url.href, authorization });
        await new Promise((r) => setImmediate(r));
        return answers.shift() ?? { statusCode: 500, body: '' };
      },
      log: { warn: () => undefined },
      now: () => clock.now,
    });
    return { auth, asked };
  }

  it('keeps a token for 90 % of expires_in (never under 60 s), per scope; one fetch for concurrent callers', async () => {
    const clock = { now: 1_000_000 };
    const { auth, asked } = make(
      [
        { statusCode: 200, body: '{"token":"t1","expires_in":300}' },
        { statusCode: 200, body: '{"access_token":"t2","expires_in":10}' },
        { statusCode: 200, body: '{"token":"t3"}' },
      ],
      clock,
    );
    const scope = 'repository:a/b:pull';
    const headers = await Promise.all([1, 2, 3].map(() => auth.answer(challenge, scope)));
    assert.deepEqual(headers, ['Bearer t1', 'Bearer t1', 'Bearer t1']);
    assert.equal(asked.length, 1);
    assert.equal(asked[0]?.url, 'https://up.test/token?service=up&scope=repository%3Aa%2Fb%3Apull');
    assert.equal(asked[0]?.authorization, `Basic ${Buffer.from('u:p').toString('base64')}`);
    clock.now += 269_000;
    assert.equal(auth.header(scope), 'Bearer t1');
    clock.now += 2_000;
    assert.equal(auth.header(scope), null, 'past 90 % of 300 s');
    assert.equal(auth.header('repository:other:pull'), null, 'scopes do not share tokens');
    await auth.answer(challenge, scope);
    clock.now += 53_000;
    assert.equal(auth.header(scope), 'Bearer t2', 'a 10 s token is kept as if it were 60 s');
    clock.now += 2_000;
    assert.equal(auth.header(scope), null);
    assert.equal(await auth.answer(challenge, scope), 'Bearer t3', 'no expires_in: 60 s');
  });

  it('forgets a token the upstream refused; refused credentials are DENIED; 5xx is an outage', async () => {
    const clock = { now: 0 };
    const { auth } = make(
      [
        { statusCode: 200, body: '{"token":"t1","expires_in":300}' },
        { statusCode: 401, body: '' },
        { statusCode: 503, body: '' },
        { statusCode: 200, body: '{"token":"bad token with spaces"}' },
      ],
      clock,
    );
    const scope = 'repository:a:pull';
    const sent = await auth.answer(challenge, scope);
    auth.forget(scope, sent);
    assert.equal(auth.header(scope), null);
    await assert.rejects(auth.answer(challenge, scope), (err) => isRegistryError(err) && err.code === 'DENIED');
    await assert.rejects(
      auth.answer(challenge, scope),
      (err) => isRegistryError(err) && err.code === 'UNAVAILABLE' && err.status === 502,
    );
    await assert.rejects(auth.answer(challenge, scope), (err) => isRegistryError(err) && err.code === 'UNAVAILABLE');
  });

  it('pins the realm: another origin, plain http, or user info in it is refused without a request', async () => {
    const clock = { now: 0 };
    const { auth, asked } = make([], clock);
    for (const realm of ['https://evil.test/token', 'http://up.test/token', 'https://x:y@up.test/token', 'not a url']) {
      await assert.rejects(auth.answer({ scheme: 'bearer', params: { realm } }, 's'), (err) => isRegistryError(err));
    }
    assert.equal(asked.length, 0);
  });
});

describe('negotiate (distribution GetManifest)', () => {
  const OCI = 'application/vnd.oci.image.manifest.v1+json';
  const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
  const DOCKER = 'application/vnd.docker.distribution.manifest.v2+json';
  const LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
  const list = Buffer.from(
    JSON.stringify({
      manifests: [
        { digest: 'sha256:arm', platform: { os: 'linux', architecture: 'arm64' } },
        { digest: 'sha256:amd', platform: { os: 'linux', architecture: 'amd64' } },
      ],
    }),
  );
  const code = (fn: () => unknown): string | undefined => {
    try {
      fn();
      return undefined;
    } catch (err) {
      return isRegistryError(err) ? err.code : 'other';
    }
  };

  it('serves what the client accepts, as distribution would', () => {
    assert.deepEqual(negotiate(OCI, Buffer.from('{}'), acceptedTypes(`${OCI}; q=0.5, ${DOCKER}`), true), {
      kind: 'serve',
    });
    assert.equal(
      code(() => negotiate(OCI, Buffer.from('{}'), acceptedTypes(DOCKER), true)),
      'MANIFEST_UNKNOWN',
    );
    assert.equal(
      code(() => negotiate(OCI, Buffer.from('{}'), acceptedTypes(undefined), false)),
      'MANIFEST_UNKNOWN',
    );
    assert.equal(
      code(() => negotiate(OCI_INDEX, Buffer.from('{}'), acceptedTypes(OCI), true)),
      'MANIFEST_UNKNOWN',
    );
    assert.deepEqual(negotiate(DOCKER, Buffer.from('{}'), acceptedTypes(undefined), true), { kind: 'serve' });
    assert.deepEqual(negotiate(LIST, list, acceptedTypes([DOCKER, 'text/plain']), true), {
      kind: 'child',
      digest: 'sha256:amd',
    });
    assert.deepEqual(negotiate(LIST, list, acceptedTypes(DOCKER), false), { kind: 'serve' }, 'by digest: the list');
    const noAmd = Buffer.from(
      JSON.stringify({ manifests: [{ digest: 'sha256:arm', platform: { os: 'linux', architecture: 'arm64' } }] }),
    );
    assert.equal(
      code(() => negotiate(LIST, noAmd, acceptedTypes(DOCKER), true)),
      'MANIFEST_UNKNOWN',
    );
    const artifact = 'application/vnd.example.thing+json';
    assert.equal(
      code(() => negotiate(artifact, Buffer.from('{}'), acceptedTypes(OCI), true)),
      'MANIFEST_UNKNOWN',
    );
    assert.deepEqual(negotiate(artifact, Buffer.from('{}'), acceptedTypes(artifact), true), { kind: 'serve' });
  });
});
