// `middleware.registry`: the one entry named `downstream` is DTR's content-cache middleware and
// carries everything specific to a cache (DTR cache configuration reference; docs/protocol.md §4).
import { isAbsolute } from 'node:path';
import type { Config, UpstreamsConfig } from './types.js';
import { DEFAULTS } from './defaults.js';
import type { Field } from './field.js';
import type { FileCheck } from './files.js';
import { parseGoDuration } from './duration.js';
import { SIZE_EXPECTED, parseSize } from './size.js';
import { readBaseUrl, readDuration } from './values.js';

const OTHER_MIDDLEWARE =
  'middleware other than the registry entry named downstream is not supported by dtr-cache, ignored';
const UPSTREAMS_EXPECTED =
  'a non-empty list of upstreams: URLs (DTR 2.3+) or one {originhost, upstreamhosts} entry (DTR 2.2); the cache cannot work without an upstream';

/**
 * `present`: whether the node has a downstream entry. With mirrors configured (`mirrorOnly`
 * allowed), the entry and its upstreams are optional: a node without them is a pure mirror,
 * and an entry without upstreams only sets the store options (maxsize, timeouts …).
 */
export function readDownstream(
  root: Field,
  deleteEnabled: Field,
  checks: FileCheck[],
  mirrorOnly: boolean,
): { options: Config['downstream']; present: boolean } {
  const middleware = root.child('middleware');
  middleware.checkKeys(['registry'], [], { repository: OTHER_MIDDLEWARE, storage: OTHER_MIDDLEWARE });
  const registry = middleware.child('registry');

  let entry: Field | null = null;
  for (const item of registry.items('a list of middleware entries such as - name: downstream')) {
    item.checkKeys(['name', 'options', 'disabled']);
    const nameField = item.child('name');
    const name = nameField.text('a middleware name such as downstream');
    if (name === null) return nameField.fail('a middleware name such as downstream');
    if (name !== 'downstream') {
      nameField.warn(`middleware "${name}" is not supported by dtr-cache, ignored`);
      continue;
    }
    if (entry !== null)
      nameField.fail(
        `exactly one middleware.registry entry named downstream (the first is ${entry.path})`,
        'a second one',
      );
    const disabled = item.child('disabled');
    if (disabled.bool() === true) disabled.fail('the downstream middleware enabled (the cache cannot work without it)');
    entry = item;
  }
  if (entry === null) {
    if (mirrorOnly)
      return {
        options: readOptions(registry.absent('middleware.registry[downstream].options'), deleteEnabled, checks, true),
        present: false,
      };
    return registry.fail(
      'a middleware.registry entry named downstream with options.upstreams, or a proxy or mirrors section (the cache cannot work without an upstream)',
      registry.present ? 'no entry named "downstream"' : 'nothing',
    );
  }
  return { options: readOptions(entry.child('options'), deleteEnabled, checks, mirrorOnly), present: true };
}

function readOptions(
  options: Field,
  deleteEnabled: Field,
  checks: FileCheck[],
  mirrorOnly: boolean,
): Config['downstream'] {
  const d = DEFAULTS.downstream;
  options.checkKeys([
    'blobttl',
    'upstreams',
    'cas',
    'jwks',
    'issuer',
    'maxsize',
    'timeouts',
    'workerqueue',
    'directwrites',
    'replicas',
  ]);

  const ttlField = options.child('blobttl');
  const blobTtlMs = readDuration(ttlField, true);
  // DTR's reference: "If this field is configured, storage.delete.enabled must be configured to true."
  if (blobTtlMs !== null && deleteEnabled.bool() !== true) {
    ttlField.fail(
      'storage.delete.enabled: true whenever blobttl is set (as DTR requires)',
      `${ttlField.rawText()} with storage.delete.enabled ${describeDelete(deleteEnabled)}`,
    );
  }

  const maxSizeField = options.child('maxsize');
  const maxSize = maxSizeField.parse(parseSize, SIZE_EXPECTED);
  if (maxSize === 0) maxSizeField.fail(`a positive size: ${SIZE_EXPECTED}`);
  // Evicting to stay under maxsize deletes blobs, which distribution gates behind the same flag.
  if (maxSize !== null && deleteEnabled.bool() !== true) {
    maxSizeField.fail(
      'storage.delete.enabled: true whenever maxsize is set (eviction deletes blobs)',
      `${maxSizeField.rawText()} with storage.delete.enabled ${describeDelete(deleteEnabled)}`,
    );
  }

  const timeouts = options.child('timeouts');
  timeouts.checkKeys(Object.keys(d.timeouts));

  const upstreams =
    mirrorOnly && !options.child('upstreams').present
      ? { hosts: [], origin: null }
      : readUpstreams(options.child('upstreams'));
  const cas = readCas(options.child('cas'), checks);
  const jwks = readJwks(options.child('jwks'), checks);
  if (jwks === null) warnPlainHttpKeys(options, upstreams);

  return {
    keyPath: options.path,
    blobTtlMs,
    upstreams,
    cas,
    jwks,
    issuer: options.child('issuer').text("the origin's issuer name (the iss claim of its tokens)"),
    maxSize,
    timeouts: {
      connectMs: readDuration(timeouts.child('connect'), true, true) ?? parseGoDuration(d.timeouts.connect),
      headersMs: readDuration(timeouts.child('headers'), true, true) ?? parseGoDuration(d.timeouts.headers),
      bodyIdleMs: readDuration(timeouts.child('bodyidle'), true, true) ?? parseGoDuration(d.timeouts.bodyidle),
    },
    workerQueue: options.child('workerqueue').int(1) ?? d.workerqueue,
    directWrites: options.child('directwrites').bool() ?? d.directwrites,
    replicas: readReplicas(options.child('replicas')),
  };
}

/** The spool heartbeat of replicas sharing a root; a writer is judged dead only after several missed beats. */
function readReplicas(field: Field): Config['downstream']['replicas'] {
  const d = DEFAULTS.downstream.replicas;
  field.checkKeys(Object.keys(d));
  const beatMs = readDuration(field.child('heartbeat'), true, true) ?? parseGoDuration(d.heartbeat);
  const staleField = field.child('stale');
  const staleMs = readDuration(staleField, true, true) ?? parseGoDuration(d.stale);
  if (staleMs < 3 * beatMs) {
    staleField.fail(
      `at least three heartbeats (${3 * beatMs} ms), so a live writer is never judged dead`,
      staleField.present ? staleField.rawText() : `the default ${d.stale}`,
    );
  }
  return { beatMs, staleMs };
}

/**
 * Both schemas of docs/protocol.md §4. DTR 2.3+: a list of URLs → hosts, no origin. DTR 2.2: one
 * {originhost, upstreamhosts} entry → hosts = upstreamhosts, origin = originhost. A second 2.2
 * entry is an error rather than silently dropped: a cache trusts one origin's tokens, and more
 * caches belong under upstreamhosts.
 */
function readUpstreams(field: Field): UpstreamsConfig {
  const items = field.items(UPSTREAMS_EXPECTED);
  const first = items[0];
  if (first === undefined) return field.fail(UPSTREAMS_EXPECTED, field.present ? 'an empty list' : 'nothing');
  const mixed = items.find((item) => (item.kind === 'mapping') !== (first.kind === 'mapping'));
  if (mixed !== undefined)
    mixed.fail(
      `every entry in the same form as ${first.path}: all URLs (DTR 2.3+) or one {originhost, upstreamhosts} entry (DTR 2.2)`,
    );
  if (first.kind !== 'mapping') return { hosts: items.map(requiredUrl), origin: null };

  const second = items[1];
  if (second !== undefined) {
    second.fail(
      'one {originhost, upstreamhosts} entry (a cache has one origin; list upstream caches under upstreamhosts)',
      'a second entry',
    );
  }
  first.checkKeys(['originhost', 'upstreamhosts']);
  const origin = requiredUrl(first.child('originhost'));
  const hosts = first.child('upstreamhosts').items('a list of upstream cache URLs').map(requiredUrl);
  return { hosts, origin };
}

function requiredUrl(field: Field): string {
  return readBaseUrl(field) ?? field.fail('an absolute http:// or https:// URL such as https://dtr.example.org');
}

/** `cas`: absolute paths of PEM CA files, each checked when the config file is loaded. */
export function readCas(field: Field, checks: FileCheck[]): string[] {
  return field.items('a list of absolute paths to PEM CA certificates').map((item) => {
    const path = item.text('an absolute path to a PEM CA certificate');
    if (path === null || !isAbsolute(path)) return item.fail('an absolute path to a PEM CA certificate');
    checks.push({ field: item, path, kind: 'ca' });
    return path;
  });
}

/** An https:// URL of a JWK Set, or an absolute path to one (air-gapped sites); docs/protocol.md §2. */
function readJwks(field: Field, checks: FileCheck[]): string | null {
  const expected = 'an https:// URL of a JWK Set, or an absolute path to a JWK Set file';
  const text = field.text(expected);
  if (text === null) return null;
  if (isAbsolute(text)) {
    checks.push({ field, path: text, kind: 'jwks' });
    return text;
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return field.fail(expected);
  }
  // Keys fetched over plain http could be swapped in transit, and with them every token.
  if (url.protocol !== 'https:' || url.username !== '' || url.password !== '') field.fail(expected);
  return url.href;
}

/**
 * Without `jwks`, the keys come from the upstreams' /.well-known/jwks.json. An explicit http
 * jwks URL is refused (readJwks); the same fetch implied by an http:// upstream (DTR's
 * simple cache listens on plain http, and a chained cache may name it) is warned about.
 */
function warnPlainHttpKeys(options: Field, upstreams: UpstreamsConfig): void {
  const plain = [...upstreams.hosts, ...(upstreams.origin === null ? [] : [upstreams.origin])]
    .filter((url) => url.startsWith('http:'))
    .map((url) => `${url.replace(/\/+$/, '')}/.well-known/jwks.json`);
  if (plain.length === 0) return;
  options
    .child('upstreams')
    .warn(
      `the trusted keys would be fetched over plain http from ${plain.join(', ')}, where they can be swapped in transit; set ${options.path}.jwks to an https:// URL or a JWK Set file`,
    );
}

/** storage.delete.enabled as an error about another key shows it: its value, and where it came from. */
function describeDelete(field: Field): string {
  if (!field.present) return 'unset';
  const { envVar } = field.location;
  return envVar === null ? field.rawText() : `${field.rawText()} (from ${envVar})`;
}
