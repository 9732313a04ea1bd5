// Mirror mode (issue 15): distribution's own `proxy:` section, unchanged, for one upstream;
// and our `mirrors:` list, one entry per registry, chosen by containerd's `?ns=` parameter.
// `registry` is a key into that list, never a host the node dials: only `remoteurl` (and the
// token realms allowed beside it) are ever contacted.
import { isAbsolute } from 'node:path';
import type { MirrorConfig, PasswordSource } from './types.js';
import { DEFAULTS } from './defaults.js';
import { readCas } from './downstream.js';
import type { Field } from './field.js';
import type { FileCheck } from './files.js';
import { Secret } from './secret.js';
import { readBaseUrl, readDuration } from './values.js';
import { parseGoDuration } from './duration.js';

const REGISTRY_EXPECTED = 'a registry host as clients name it, such as docker.io, ghcr.io or registry.example.org:5000';
// A host name or IPv4 address with an optional port, as in an image reference's domain.
const REGISTRY_NAME =
  /^(?=.{1,253}(?::\d{1,5})?$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?::\d{1,5})?$/;

/** Docker Hub's registry host and the names clients give it. */
const DOCKER_HUB_HOSTS = new Set(['registry-1.docker.io', 'index.docker.io', 'docker.io']);
const DOCKER_HUB_REALM = 'https://auth.docker.io';

/**
 * Reads `proxy` and `mirrors`. `env` resolves `passwordenv`. The `proxy` upstream serves
 * requests without `?ns=`; so does the one `mirrors` entry marked `default: true`.
 */
export function readMirrors(
  root: Field,
  env: NodeJS.ProcessEnv,
  checks: FileCheck[],
  deleteEnabled: boolean,
): MirrorConfig[] {
  const out: MirrorConfig[] = [];
  const fields: Field[] = [];
  const proxy = root.child('proxy');
  if (proxy.present) {
    out.push(readProxy(proxy, env, checks));
    fields.push(proxy);
  }
  for (const item of root.child('mirrors').items('a list of mirrored registries, each with registry and remoteurl')) {
    out.push(readEntry(item, env, checks));
    fields.push(item);
  }
  for (const f of fields) {
    const ttl = f.child('ttl');
    if (!deleteEnabled && ttl.present && ttl.rawText() !== '0')
      ttl.warn(
        'storage.delete.enabled is false, so mirrored content is never deleted (set it to true for ttl to apply)',
      );
  }
  const seen = new Map<string, string>();
  let defaultAt: string | null = null;
  for (const [i, m] of out.entries()) {
    const field = fields[i] ?? root;
    const first = seen.get(m.registry);
    if (first !== undefined)
      field.child('registry').fail(`each registry once (${m.registry} is already served by ${first})`);
    seen.set(m.registry, m.keyPath);
    if (m.isDefault && defaultAt !== null)
      field.child('default').fail(`one default mirror at most (${defaultAt} already serves requests without ?ns=)`);
    if (m.isDefault) defaultAt = m.keyPath;
  }
  return out;
}

function readProxy(proxy: Field, env: NodeJS.ProcessEnv, checks: FileCheck[]): MirrorConfig {
  // remoteurl, username, password and ttl are distribution's; the rest are our extensions.
  proxy.checkKeys(
    ['remoteurl', 'username', 'password', 'ttl', 'registry', 'passwordfile', 'passwordenv', 'tagttl', 'realms', 'cas'],
    ['cachewritetimeout'],
  );
  const exec = proxy.child('exec');
  if (exec.present) {
    exec.fail('username with password, passwordfile or passwordenv (dtr-cache runs no credential helper)');
  }
  const remote = proxy.child('remoteurl');
  const remoteUrl =
    readBaseUrl(remote) ?? remote.fail('the upstream registry URL, such as https://registry-1.docker.io');
  const registryField = proxy.child('registry');
  const registry = registryField.present ? readRegistry(registryField) : registryOf(remoteUrl);
  return common(proxy, 'proxy', registry, remoteUrl, true, env, checks);
}

function readEntry(item: Field, env: NodeJS.ProcessEnv, checks: FileCheck[]): MirrorConfig {
  item.checkKeys([
    'registry',
    'remoteurl',
    'username',
    'password',
    'passwordfile',
    'passwordenv',
    'ttl',
    'tagttl',
    'realms',
    'cas',
    'default',
  ]);
  if (item.kind !== 'mapping') item.fail('a mapping with registry and remoteurl');
  const regField = item.child('registry');
  if (!regField.present) regField.fail(REGISTRY_EXPECTED);
  const registry = readRegistry(regField);
  const remote = item.child('remoteurl');
  const remoteUrl =
    readBaseUrl(remote) ?? remote.fail(`the URL of ${registry}'s registry API, such as https://ghcr.io`);
  const isDefault = item.child('default').bool() ?? false;
  return common(item, item.path, registry, remoteUrl, isDefault, env, checks);
}

function common(
  f: Field,
  keyPath: string,
  registry: string,
  remoteUrl: string,
  isDefault: boolean,
  env: NodeJS.ProcessEnv,
  checks: FileCheck[],
): MirrorConfig {
  const d = DEFAULTS.proxy;
  const { username, password } = readCredentials(f, env, checks);
  // distribution: "If set to zero, will never expire cache".
  const ttl = readDuration(f.child('ttl'), false) ?? parseGoDuration(d.ttl);
  const hub = DOCKER_HUB_HOSTS.has(new URL(remoteUrl).hostname) || registry === 'docker.io';
  const realms = f
    .child('realms')
    .items('a list of URLs whose hosts may issue tokens for this upstream, such as https://auth.docker.io')
    .map((r) => readBaseUrl(r) ?? r.fail('an absolute https:// URL of a token service host'));
  if (hub && new URL(remoteUrl).hostname !== 'docker.io' && !realms.includes(DOCKER_HUB_REALM))
    realms.push(DOCKER_HUB_REALM);
  return {
    registry,
    remoteUrl,
    username,
    password,
    ttlMs: ttl === 0 ? null : ttl,
    tagTtlMs: readDuration(f.child('tagttl'), false) ?? parseGoDuration(d.tagttl),
    realms,
    cas: readCas(f.child('cas'), checks),
    isDefault,
    dockerHub: hub,
    keyPath,
  };
}

function readRegistry(field: Field): string {
  const text = field.text(REGISTRY_EXPECTED);
  if (text === null) return field.fail(REGISTRY_EXPECTED);
  const lower = text.toLowerCase();
  if (!REGISTRY_NAME.test(lower)) field.fail(REGISTRY_EXPECTED);
  return lower;
}

/** distribution's proxy serves whatever remoteurl is; containerd names Docker Hub docker.io. */
function registryOf(remoteUrl: string): string {
  const url = new URL(remoteUrl);
  return DOCKER_HUB_HOSTS.has(url.hostname) ? 'docker.io' : url.host;
}

function readCredentials(
  f: Field,
  env: NodeJS.ProcessEnv,
  checks: FileCheck[],
): { username: string | null; password: PasswordSource | null } {
  const userField = f.child('username');
  const username = userField.text('the upstream user name');
  const sources = (['password', 'passwordfile', 'passwordenv'] as const).filter((k) => f.child(k).present);
  if (sources.length > 1) {
    f.child(sources[1] ?? 'password').fail(`one of password, passwordfile or passwordenv (${sources[0]} is set)`);
  }
  const which = sources[0];
  if (username === null) {
    if (which !== undefined) userField.fail(`a username to go with ${which}`);
    return { username: null, password: null };
  }
  if (which === undefined)
    return f.child('password').fail(`a password, passwordfile or passwordenv for user ${JSON.stringify(username)}`);
  const field = f.child(which);
  if (which === 'password') {
    // The secret's text is never echoed: a ConfigError describes it without its value.
    const value = field.string('the upstream password');
    if (value === null || value === '') return field.fail('a non-empty password', 'an empty value');
    return { username, password: { kind: 'value', secret: new Secret(value) } };
  }
  if (which === 'passwordfile') {
    const path = field.text('an absolute path to a file holding the password');
    if (path === null || !isAbsolute(path)) return field.fail('an absolute path to a file holding the password');
    checks.push({ field, path, kind: 'secret' });
    return { username, password: { kind: 'file', path } };
  }
  const name = field.text('the name of an environment variable holding the password');
  if (name === null || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
    return field.fail('the name of an environment variable holding the password');
  const value = env[name];
  if (value === undefined || value === '') return field.fail(`${name} set in the environment`, `${name} unset`);
  return { username, password: { kind: 'value', secret: new Secret(value) } };
}

/**
 * The store's expiry once mirrors share it: the longest of blobttl (when the downstream
 * entry is present) and every mirror's ttl, where unset means never. A blob is kept for the
 * longest any of its users wants it; each mirror still forgets its own tags at its own ttl.
 */
export function storeTtl(downstreamTtl: number | null, downstreamPresent: boolean, mirrors: readonly MirrorConfig[]) {
  const ttls: Array<number | null> = mirrors.map((m) => m.ttlMs);
  if (downstreamPresent) ttls.push(downstreamTtl);
  if (ttls.length === 0 || ttls.includes(null)) return null;
  return Math.max(...(ttls as number[]));
}
