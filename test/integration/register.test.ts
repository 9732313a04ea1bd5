// `dtr-cache register` against the DTR mock over TLS (docs/protocol.md §7): it
// registers the cache (host from http.host), selects it for users, says what it did, is
// idempotent, refuses a name taken by another host, and takes credentials only from the
// environment or stdin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { request } from 'undici';
import { createTestCa } from '../../testkit/pki.js';
import { CACHE_CLI, cliNodeFlags } from '../../testkit/cache-process.js';
import { startDtrMock } from '../../bench/dtr-mock/index.js';
import { writeConfig } from '../helpers/cache.js';
import { agentFor } from '../helpers/http.js';
import { within } from '../helpers/deadline.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const env = { ...process.env, ...(opts.env ?? {}) };
  if (opts.env?.['DTR_USERNAME'] === undefined) delete env['DTR_USERNAME'];
  if (opts.env?.['DTR_PASSWORD'] === undefined) delete env['DTR_PASSWORD'];
  const child = spawn(process.execPath, [...(await cliNodeFlags()), CACHE_CLI, ...args], {
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(opts.stdin ?? '');
  const code = await within(
    20_000,
    `dtr-cache ${args.join(' ')}`,
    new Promise<number | null>((resolve) => child.once('exit', resolve)),
  );
  return { code, stdout, stderr };
}

test('register: registers with http.host, selects users, idempotent, host conflicts and bad credentials refused', async (t) => {
  const ca = await createTestCa();
  const leaf = await ca.issue('dtr');
  const mock = await startDtrMock({
    tls: { cert: leaf.cert, key: leaf.key },
    users: { boss: { password: 'b0ss', admin: true }, alice: { password: 'a' }, bob: { password: 'b' } },
  });
  t.after(() => mock.close());
  const cfg = await writeConfig({
    upstreams: [mock.url],
    cas: [ca.certPath],
    tls: null,
    extraHttp: '  host: https://cache.example.org:8443\n',
  });
  t.after(() => rm(cfg.dir, { recursive: true, force: true }));
  const agent = agentFor(ca.cert, false);
  t.after(() => agent.destroy());
  const api = async (path: string): Promise<unknown> => {
    const res = await request(`${mock.url}${path}`, {
      dispatcher: agent,
      headers: { authorization: `Basic ${Buffer.from('boss:b0ss').toString('base64')}` },
    });
    assert.equal(res.statusCode, 200);
    return res.body.json();
  };
  const base = ['register', '--config', cfg.path, '--name', 'region-asia'];

  // Credentials on stdin; the host comes from http.host.
  const first = await cli([...base, '--users', 'alice,bob'], { stdin: 'boss\nb0ss\n' });
  assert.equal(first.code, 0, first.stderr);
  assert.match(
    first.stdout,
    /^registered content cache "region-asia" at https:\/\/cache\.example\.org:8443 \(id [0-9a-f-]+\)$/m,
  );
  assert.match(first.stdout, /^user alice: content cache set to "region-asia" \(was none\)$/m);
  assert.match(first.stdout, /^user bob: content cache set to "region-asia" \(was none\)$/m);
  const caches = (await api('/api/v0/content_caches')) as Array<{ name: string; host: string }>;
  assert.deepEqual(
    caches.map((c) => [c.name, c.host]),
    [['region-asia', 'https://cache.example.org:8443']],
  );
  assert.deepEqual(await api('/api/v0/accounts/alice/settings'), { contentCache: 'region-asia' });
  assert.deepEqual(await api('/api/v0/accounts/bob/settings'), { contentCache: 'region-asia' });

  // Again, credentials from the environment: nothing changes, and it says so.
  const again = await cli([...base, '--users', 'alice', '--host', 'https://cache.example.org:8443/'], {
    env: { DTR_USERNAME: 'boss', DTR_PASSWORD: 'b0ss' },
  });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /^content cache "region-asia" already registered at https:\/\/cache\.example\.org:8443/m);
  assert.match(again.stdout, /^user alice: already uses content cache "region-asia"$/m);
  assert.equal(((await api('/api/v0/content_caches')) as unknown[]).length, 1);

  // The same name for another host is refused, clearly.
  const clash = await cli([...base, '--host', 'https://elsewhere.example.org'], { stdin: 'boss\nb0ss\n' });
  assert.equal(clash.code, 1);
  assert.match(
    clash.stderr,
    /already registered with host https:\/\/cache\.example\.org:8443, not https:\/\/elsewhere\.example\.org/,
  );

  // Wrong or non-admin credentials, or none at all.
  const wrong = await cli(base, { stdin: 'boss\nnope\n' });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /refused the credentials of boss .*\(401\)/);
  const notAdmin = await cli(base, { env: { DTR_USERNAME: 'alice', DTR_PASSWORD: 'a' } });
  assert.equal(notAdmin.code, 1);
  assert.match(notAdmin.stderr, /\(403\): admin credentials are required/);
  const none = await cli(base);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /admin credentials missing/);
  // There is no way to pass a password on the command line.
  const argv = await cli([...base, '--password', 'b0ss'], { stdin: 'boss\nb0ss\n' });
  assert.equal(argv.code, 2);
  assert.match(argv.stderr, /Unknown option '--password'/);
  assert.equal(
    ((await api('/api/v0/content_caches')) as unknown[]).length,
    1,
    'none of the refused runs changed anything',
  );
});
