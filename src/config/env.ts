// REGISTRY_* environment overrides, in Docker Registry's style: the variable name is
// REGISTRY_ plus the upper-cased key path joined by `_` (REGISTRY_HTTP_ADDR overrides
// http.addr), and the value is read as YAML. They apply to the scalar keys of our schema
// outside lists, and to the two lists outside them (ENV_LIST_KEYS); the middleware entries
// are list items, so they cannot be overridden.
// Overrides are written into the parsed document before validation, so an overridden value
// goes through exactly the same checks as one from the file, and errors name the variable.
import { Scalar, YAMLSeq, isScalar, isSeq, parseDocument, type Document, type Node } from 'yaml';
import { ConfigError } from './errors.js';

export const ENV_PREFIX = 'REGISTRY_';

/** Every scalar key path a REGISTRY_* variable may override (besides log.fields.<name>, below). */
export const ENV_KEYS: readonly string[] = [
  'version',
  'log.level',
  'log.formatter',
  'log.accesslog.disabled',
  'storage.delete.enabled',
  'storage.filesystem.rootdirectory',
  'http.addr',
  'http.host',
  'http.secret',
  'http.tls.certificate',
  'http.tls.key',
  'http.tls.minimumtls',
  'http.tls.clientauth',
  'http.processes',
  'http.debug.addr',
  'http.debug.prometheus.enabled',
  'http.debug.prometheus.path',
  'http.draintimeout',
  'http.limits.maxheadersize',
  'http.limits.headerstimeout',
  'http.limits.requesttimeout',
  'http.limits.idletimeout',
  'http.limits.maxconcurrentstreams',
  'http.limits.maxconnectionsperip',
  'http.limits.maxresetspersecond',
  // distribution reads these for its pull-through cache (REGISTRY_PROXY_PASSWORD keeps the
  // password out of the file); tagttl and passwordfile are our extensions.
  'proxy.remoteurl',
  'proxy.username',
  'proxy.password',
  'proxy.passwordfile',
  'proxy.ttl',
  'proxy.tagttl',
];

/**
 * List keys outside the middleware list that a variable may set, with a YAML list as its
 * value (REGISTRY_HTTP_TLS_CLIENTCAS='[/certs/a.pem, /certs/b.pem]'): distribution reads a
 * variable's value as YAML into the field's type, lists included. Ignoring clientcas would
 * serve without the client certificates the operator asked for, so it must be read, not warned.
 */
export const ENV_LIST_KEYS: readonly string[] = ['http.tls.clientcas', 'http.tls.ciphersuites'];

/**
 * REGISTRY_STORAGE=<driver> selects distribution's storage driver (TestParseWithDifferentEnvStorageType).
 * Only filesystem is served, so another driver is refused, as `storage.s3:` in the file is.
 */
const STORAGE_DRIVER_VAR = `${ENV_PREFIX}STORAGE`;

const LOG_FIELDS = 'log.fields.';

/** Names the config file itself (the CLI reads it, as distribution does), not a setting in it. */
export const CONFIGURATION_PATH_VAR = `${ENV_PREFIX}CONFIGURATION_PATH`;

export function envVarName(keyPath: string): string {
  return (
    ENV_PREFIX +
    keyPath
      .split('.')
      .map((part) => part.toUpperCase())
      .join('_')
  );
}

/**
 * Writes each set REGISTRY_* override into `doc`, recording the new nodes in `envOrigins`.
 * Unknown REGISTRY_* variables become warnings. Throws ConfigError (naming the variable) for a
 * value that is not a YAML scalar, or when a parent key in the file is not a mapping.
 */
export function applyEnvOverrides(
  doc: Document,
  env: NodeJS.ProcessEnv,
  envOrigins: WeakMap<object, string>,
  warnings: string[],
  source: string | null,
): void {
  const byVar = new Map([...ENV_KEYS, ...ENV_LIST_KEYS].map((key) => [envVarName(key), key]));
  for (const name of Object.keys(env)
    .filter((n) => n.startsWith(ENV_PREFIX))
    .sort()) {
    const value = env[name];
    if (value === undefined || name === CONFIGURATION_PATH_VAR) continue;
    if (name === STORAGE_DRIVER_VAR) {
      checkStorageDriver(value, source);
      continue;
    }
    const keyPath = byVar.get(name) ?? logFieldPath(name);
    if (keyPath === undefined) {
      warnings.push(
        `config warning: ${name}: not a dtr-cache setting (only scalar keys outside lists, http.tls.clientcas and http.tls.ciphersuites can be set from the environment), ignored`,
      );
      continue;
    }
    const node = ENV_LIST_KEYS.includes(keyPath)
      ? listFromEnv(name, keyPath, value, source, envOrigins)
      : keyPath.startsWith(LOG_FIELDS)
        ? anyFromEnv(name, keyPath, value, source)
        : scalarFromEnv(name, keyPath, value, source);
    envOrigins.set(node, name);
    const path = keyPath.split('.');
    // A parent written as `tls:` (YAML null) becomes a mapping, as Go fills a nil struct.
    for (let i = 1; i < path.length; i++) {
      const parent = doc.getIn(path.slice(0, i), true);
      if (isScalar(parent) && parent.value === null) doc.setIn(path.slice(0, i), doc.createNode({}));
    }
    try {
      doc.setIn(path, node);
    } catch (err) {
      const parentPath = path.slice(0, -1).join('.');
      throw new ConfigError({
        keyPath,
        line: null,
        envVar: name,
        found: JSON.stringify(value),
        source,
        expected: `${parentPath === '' ? 'the document' : parentPath} in the config file to be a mapping, so the override can apply`,
        cause: err,
      });
    }
  }
}

/**
 * REGISTRY_LOG_FIELDS_<NAME> sets log.fields.<name>: distribution writes a variable below a
 * map into that map under the lower-cased name (configuration/parser.go, overwriteMap). A
 * name with `_` would make distribution nest a map, which log.fields cannot hold: unknown.
 */
function logFieldPath(name: string): string | undefined {
  const field = /^REGISTRY_LOG_FIELDS_([A-Z0-9-]+)$/.exec(name)?.[1];
  return field === undefined ? undefined : `${LOG_FIELDS}${field.toLowerCase()}`;
}

/** A filesystem driver is what the file has (or defaults to): nothing to change. */
function checkStorageDriver(value: string, source: string | null): void {
  const driver = value.trim();
  if (driver === '' || driver === 'filesystem') return;
  throw new ConfigError({
    keyPath: 'storage',
    line: null,
    envVar: STORAGE_DRIVER_VAR,
    found: `the ${JSON.stringify(driver)} storage driver`,
    source,
    expected: 'the filesystem storage driver (dtr-cache keeps blobs on a local or shared filesystem)',
  });
}

/**
 * A list key's value: a YAML list of scalars (`[a, b]`), each item a fresh node recorded in
 * `envOrigins` so that an item's error names the variable. A lone scalar is kept as it is, and
 * the key's own check refuses it (as distribution refuses a string for a list).
 */
function listFromEnv(
  name: string,
  keyPath: string,
  value: string,
  source: string | null,
  envOrigins: WeakMap<object, string>,
): Node {
  const contents = parseDocument(value).contents;
  if (!isSeq(contents)) return scalarFromEnv(name, keyPath, value, source);
  const list = new YAMLSeq();
  contents.items.forEach((item, i) => {
    if (!isScalar(item)) {
      throw new ConfigError({
        keyPath: `${keyPath}[${i}]`,
        line: null,
        envVar: name,
        found: JSON.stringify(value),
        source,
        expected: 'a YAML list of scalars, such as [/certs/a.pem, /certs/b.pem]',
      });
    }
    const node = new Scalar(item.value);
    envOrigins.set(node, name);
    list.items.push(node);
  });
  return list;
}

/** A log field's value: any YAML (`[1, 2]`, `{team: infra}`), as distribution reads it into interface{}. */
function anyFromEnv(name: string, keyPath: string, value: string, source: string | null): Node {
  const parsed = parseDocument(value);
  const contents = parsed.contents;
  const plain = parsed.errors.length > 0 || contents === null || isScalar(contents);
  return plain ? scalarFromEnv(name, keyPath, value, source) : contents;
}

function scalarFromEnv(name: string, keyPath: string, value: string, source: string | null): Scalar {
  const parsed = parseDocument(value);
  const contents = parsed.contents;
  if (parsed.errors.length > 0 || (contents !== null && !isScalar(contents))) {
    throw new ConfigError({
      keyPath,
      line: null,
      envVar: name,
      found: JSON.stringify(value),
      source,
      expected: 'a single YAML scalar (a word, number or boolean)',
    });
  }
  // An empty variable reads as YAML null: the key counts as unset.
  // A fresh node: the parsed one's range points into the variable's text, not the file.
  const node = new Scalar(contents === null ? null : contents.value);
  if (contents !== null && contents.source !== undefined) node.source = contents.source;
  return node;
}
