// Mirror mode's config (issue 15): distribution's `proxy:` section unchanged, our `mirrors:`
// list, credentials from the file, the environment or a password file (never printed),
// every bad value a one-line error with its key path, and the store's expiry once mirrors
// share it. A pure mirror needs no downstream middleware; DTR and mirror modes combine.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfig, loadConfigFile } from '../../src/config/load.js';
import { removeAtExit } from '../../testkit/tmp.js';

const HEAD = 'version: 0.1\nstorage:\n  delete:\n    enabled: true\n';
const DTR = `middleware:
  registry:
    - name: downstream
      options:
        blobttl: 24h
        upstreams:
          - https://dtr.example.org
`;

let dir: string;
before(async () => {
  dir = removeAtExit(await mkdtemp(join(tmpdir(), 'dtr-cache-mirror-config-')));
});
after(() => rm(dir, { recursive: true, force: true }));

function load(text: string, env: NodeJS.ProcessEnv = {}) {
  return loadConfig(text, { env, source: 'config.yml' });
}

function fails(text: string, keyPath: string, message: RegExp, env: NodeJS.ProcessEnv = {}): ConfigError {
  let caught: unknown;
  try {
    load(text, env);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError for ${keyPath}, got ${String(caught)}`);
  assert.equal(caught.keyPath, keyPath, caught.message);
  assert.match(caught.message, message);
  assert.doesNotMatch(caught.message, /\n/);
  return caught;
}

describe("distribution's proxy section", () => {
  it('loads unchanged: a pure mirror of Docker Hub with credentials and ttl', () => {
    const { config, warnings } = load(
      `${HEAD}proxy:\n  remoteurl: https://registry-1.docker.io\n  username: robot\n  password: s3cret\n  ttl: 72h\n`,
    );
    assert.deepEqual(warnings, []);
    assert.deepEqual(config.downstream.upstreams, { hosts: [], origin: null }, 'no DTR mode');
    const [m] = config.mirrors;
    assert.ok(m !== undefined);
    assert.equal(m.registry, 'docker.io', 'containerd names Docker Hub docker.io');
    assert.equal(m.remoteUrl, 'https://registry-1.docker.io');
    assert.equal(m.username, 'robot');
    assert.equal(m.password?.kind, 'value');
    assert.equal(m.ttlMs, 72 * 3_600_000);
    assert.equal(m.tagTtlMs, 60_000, 'tagttl: 60 s by default');
    assert.equal(m.isDefault, true, 'the proxy serves requests without ns');
    assert.equal(m.dockerHub, true);
    assert.deepEqual(m.realms, ['https://auth.docker.io'], "Docker Hub's token service is allowed");
    assert.equal(config.downstream.blobTtlMs, 72 * 3_600_000, "the store expires at the mirror's ttl");
  });

  it('ttl: 168h by default, 0 = never; the secret never shows', () => {
    const { config } = load(`${HEAD}proxy:\n  remoteurl: https://ghcr.io\n  username: u\n  password: hunter2\n`);
    const m = config.mirrors[0];
    assert.equal(m?.ttlMs, 168 * 3_600_000);
    assert.equal(m?.registry, 'ghcr.io');
    const printed = `${JSON.stringify(config)} ${inspect(config, { depth: 10 })}`;
    assert.doesNotMatch(printed, /hunter2/, 'neither JSON nor inspect shows the password');
    assert.match(printed, /\[redacted\]/);
    const never = load(`${HEAD}proxy:\n  remoteurl: https://ghcr.io\n  ttl: 0\n`).config;
    assert.equal(never.mirrors[0]?.ttlMs, null);
    assert.equal(never.downstream.blobTtlMs, null);
  });

  it('REGISTRY_PROXY_* from the environment, as distribution reads them', () => {
    const { config } = load(`${HEAD}`, {
      REGISTRY_PROXY_REMOTEURL: 'https://quay.io',
      REGISTRY_PROXY_USERNAME: 'bot',
      REGISTRY_PROXY_PASSWORD: 'from-env',
    });
    const m = config.mirrors[0];
    assert.equal(m?.remoteUrl, 'https://quay.io');
    assert.equal(m?.password?.kind === 'value' ? m.password.secret.reveal() : null, 'from-env');
  });

  it('refuses exec, a bad remoteurl, and credentials half given', () => {
    fails(
      `${HEAD}proxy:\n  remoteurl: https://ghcr.io\n  exec:\n    command: helper\n`,
      'proxy.exec',
      /runs no credential helper/,
    );
    fails(`${HEAD}proxy:\n  remoteurl: ghcr.io\n`, 'proxy.remoteurl', /absolute http/);
    fails(`${HEAD}proxy:\n  username: u\n  password: p\n`, 'proxy.remoteurl', /found nothing/);
    fails(
      `${HEAD}proxy:\n  remoteurl: https://ghcr.io\n  password: p\n`,
      'proxy.username',
      /a username to go with password/,
    );
    const e = fails(`${HEAD}proxy:\n  remoteurl: https://ghcr.io\n  username: u\n`, 'proxy.password', /a password/);
    assert.equal(e.line, 5, 'the line of the section that lacks it');
  });
});

describe('mirrors', () => {
  const two = `${HEAD}mirrors:
  - registry: docker.io
    remoteurl: https://registry-1.docker.io
  - registry: GHCR.io
    remoteurl: https://ghcr.io
    username: bot
    passwordenv: GHCR_TOKEN
    tagttl: 5m
    ttl: 24h
    realms: [https://auth.example.org]
    default: true
`;

  it('one entry per registry, chosen by ns; names are host names (lower case)', () => {
    const { config, warnings } = load(two, { GHCR_TOKEN: 'ghp_x' });
    assert.deepEqual(warnings, []);
    assert.deepEqual(
      config.mirrors.map((m) => [m.registry, m.remoteUrl, m.isDefault, m.dockerHub, m.tagTtlMs]),
      [
        ['docker.io', 'https://registry-1.docker.io', false, true, 60_000],
        ['ghcr.io', 'https://ghcr.io', true, false, 300_000],
      ],
    );
    assert.deepEqual(config.mirrors[1]?.realms, ['https://auth.example.org']);
    assert.equal(config.mirrors[1]?.keyPath, 'mirrors[1]');
    assert.equal(config.downstream.blobTtlMs, 168 * 3_600_000, 'the longest ttl of all users of the store');
  });

  it('passwordenv must name a set variable; its value is not echoed', () => {
    const e = fails(
      two,
      'mirrors[1].passwordenv',
      /GHCR_TOKEN set in the environment, .*GHCR_TOKEN unset|found GHCR_TOKEN unset/,
    );
    assert.equal(e.line, 11);
  });

  it('passwordfile: checked when the file is loaded, read at start', async () => {
    const secret = join(dir, 'ghcr.pw');
    const text = `${HEAD}mirrors:\n  - registry: ghcr.io\n    remoteurl: https://ghcr.io\n    username: bot\n    passwordfile: ${secret}\n`;
    const path = join(dir, 'config.yml');
    await writeFile(path, text);
    await assert.rejects(loadConfigFile(path, {}), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.keyPath, 'mirrors[0].passwordfile');
      return true;
    });
    await writeFile(secret, 'pw-in-a-file\n');
    const { config } = await loadConfigFile(path, {});
    assert.deepEqual(config.mirrors[0]?.password, { kind: 'file', path: secret });
    fails(text.replace(secret, 'relative.pw'), 'mirrors[0].passwordfile', /absolute path/);
  });

  it('every bad entry names its key path and line', () => {
    const base = (entry: string) => `${HEAD}mirrors:\n${entry}`;
    fails(base('  - remoteurl: https://ghcr.io\n'), 'mirrors[0].registry', /registry host/);
    fails(
      base('  - registry: https://ghcr.io\n    remoteurl: https://ghcr.io\n'),
      'mirrors[0].registry',
      /registry host/,
    );
    fails(base('  - registry: ghcr.io/org\n    remoteurl: https://ghcr.io\n'), 'mirrors[0].registry', /registry host/);
    fails(base('  - registry: ghcr.io\n'), 'mirrors[0].remoteurl', /URL/);
    fails(base('  - registry: ghcr.io\n    remoteurl: https://ghcr.io/v2/\n'), 'mirrors[0].remoteurl', /no path/);
    fails(
      base('  - registry: ghcr.io\n    remoteurl: https://ghcr.io\n    tagttl: soon\n'),
      'mirrors[0].tagttl',
      /Go duration/,
    );
    fails(
      base(
        '  - registry: ghcr.io\n    remoteurl: https://ghcr.io\n    username: u\n    password: a\n    passwordfile: /p\n',
      ),
      'mirrors[0].passwordfile',
      /one of password, passwordfile or passwordenv/,
    );
    const dup = fails(
      base(
        '  - registry: ghcr.io\n    remoteurl: https://ghcr.io\n  - registry: GHCR.IO\n    remoteurl: https://x.io\n',
      ),
      'mirrors[1].registry',
      /each registry once/,
    );
    assert.equal(dup.line, 8);
    fails(
      base(
        '  - registry: a.io\n    remoteurl: https://a.io\n    default: true\n  - registry: b.io\n    remoteurl: https://b.io\n    default: true\n',
      ),
      'mirrors[1].default',
      /one default mirror at most/,
    );
    fails(
      `${HEAD}proxy:\n  remoteurl: https://ghcr.io\nmirrors:\n  - registry: b.io\n    remoteurl: https://b.io\n    default: true\n`,
      'mirrors[0].default',
      /proxy already serves requests without \?ns=/,
    );
    fails(`${HEAD}mirrors: docker.io\n`, 'mirrors', /list of mirrored registries/);
  });
});

describe('config.example.yml', () => {
  /** The commented block that starts at `# <key>:`, uncommented. */
  const block = (text: string, key: string): string => {
    const lines = text.slice(text.indexOf(`\n# ${key}:\n`) + 1).split('\n');
    const end = lines.findIndex((l) => !l.startsWith('# '));
    return `${lines
      .slice(0, end)
      .map((l) => l.slice(2))
      .join('\n')}\n`;
  };

  it('its proxy and mirrors examples load as written, once uncommented', async () => {
    const text = await readFile(new URL('../../../config.example.yml', import.meta.url), 'utf8');
    for (const key of ['proxy', 'mirrors']) {
      const { config, warnings } = load(`${text}\n${block(text, key)}`, { REGISTRY_PROXY_PASSWORD: undefined });
      assert.deepEqual(warnings, [], key);
      assert.ok(config.mirrors.length >= 1, key);
      assert.equal(config.mirrors.filter((m) => m.isDefault).length, 1, key);
    }
  });
});

describe('modes', () => {
  it('with no downstream, no proxy and no mirrors, the error names all three', () => {
    fails(HEAD, 'middleware.registry', /downstream with options.upstreams, or a proxy or mirrors section/);
  });

  it('DTR and mirror modes in one config; a downstream entry without upstreams only sets store options', () => {
    const both = load(`${HEAD}${DTR}proxy:\n  remoteurl: https://registry-1.docker.io\n  ttl: 1h\n`).config;
    assert.deepEqual(both.downstream.upstreams, { hosts: ['https://dtr.example.org'], origin: null });
    assert.equal(both.mirrors.length, 1);
    assert.equal(both.downstream.blobTtlMs, 24 * 3_600_000, 'blobttl 24h is the longer of the two');
    const storeOnly = load(
      `${HEAD}middleware:\n  registry:\n    - name: downstream\n      options:\n        maxsize: 10GiB\n        blobttl: 2h\nmirrors:\n  - registry: ghcr.io\n    remoteurl: https://ghcr.io\n    ttl: 1h\n`,
    ).config;
    assert.deepEqual(storeOnly.downstream.upstreams, { hosts: [], origin: null });
    assert.equal(storeOnly.downstream.maxSize, 10 * 2 ** 30);
    assert.equal(storeOnly.downstream.blobTtlMs, 2 * 3_600_000);
  });

  it('a mirror ttl with storage.delete.enabled false deletes nothing, and says so', () => {
    const { warnings } = load(`version: 0.1\nproxy:\n  remoteurl: https://ghcr.io\n  ttl: 24h\n`);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /^config warning: proxy\.ttl \(line 4\): storage\.delete\.enabled is false/);
  });
});
