// The small top-level sections: version, log, storage.
import type { FileCheck } from './files.js';
import type { Config, LogFieldValue, LogLevel } from './types.js';
import { DEFAULTS } from './defaults.js';
import type { Field } from './field.js';
import { ACCESS_FIELD_NAMES } from '../log/access-log.js';
import { LINE_FIELD_NAMES } from '../log/log.js';

/** Distribution only knows version 0.1, and refuses a config without one; so do we. */
export function readVersion(root: Field): string {
  const field: Field = root.child('version');
  const expected = 'version: 0.1 (the Docker Registry configuration version)';
  if (!field.present) field.fail(expected);
  const text = field.string(expected);
  if (text !== '0.1') field.fail(expected);
  return text;
}

// logrus names (distribution) and pino names; panic has no pino level, fatal is the closest.
const LEVELS: Readonly<Record<string, LogLevel>> = {
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  warn: 'warn',
  warning: 'warn',
  error: 'error',
  fatal: 'fatal',
  panic: 'fatal',
  silent: 'silent',
};

export function readLog(root: Field): Config['log'] {
  const log = root.child('log');
  log.checkKeys(['level', 'formatter', 'fields', 'accesslog'], ['reportcaller'], {
    hooks: 'log hooks are not supported by dtr-cache, ignored',
  });
  const expectedLevel = 'a log level: trace, debug, info, warn, error, fatal or panic';
  let levelField: Field = log.child('level');
  const legacy = root.child('loglevel');
  if (legacy.present) {
    legacy.warn('deprecated (as in Docker Registry), use log.level');
    if (!levelField.present) levelField = legacy;
  }
  const levelText = levelField.text(expectedLevel) ?? DEFAULTS.log.level;
  const level = LEVELS[levelText.toLowerCase()];
  if (level === undefined) levelField.fail(expectedLevel);

  const formatterField: Field = log.child('formatter');
  // distribution takes "" for its default formatter, as when unset.
  const formatterText = formatterField.optionalText('json or text') ?? DEFAULTS.log.formatter;
  let formatter: 'json' | 'text';
  if (formatterText === 'json' || formatterText === 'text') {
    formatter = formatterText;
  } else if (formatterText === 'logstash') {
    formatterField.warn('logstash is not supported by dtr-cache, using json');
    formatter = 'json';
  } else {
    formatterField.fail('json or text');
  }
  const accessLog = log.child('accesslog');
  accessLog.checkKeys(['disabled']);
  const disabled = accessLog.child('disabled').bool() ?? DEFAULTS.log.accesslog.disabled;
  return { level, formatter, accessLog: !disabled, fields: readFields(log.child('fields')) };
}

// Names every line, or the access log's, already carries: a second one would make a JSON
// object with the key twice.
const OWN_FIELDS: readonly string[] = [...LINE_FIELD_NAMES, ...ACCESS_FIELD_NAMES];

/**
 * distribution's `log.fields`: a mapping of names to values added to every log line. The
 * values may be anything YAML holds (distribution reads them into `interface{}`): scalars,
 * and mappings or lists of them, which the JSON lines carry nested.
 */
function readFields(fields: Field): Config['log']['fields'] {
  const out: Record<string, LogFieldValue> = {};
  for (const name of fields.keys()) {
    const field = fields.child(name);
    if (OWN_FIELDS.includes(name)) {
      field.warn(`a field every log line already has, ignored`);
      continue;
    }
    const value = fieldValue(field);
    if (value !== null) out[name] = value;
  }
  return out;
}

function fieldValue(field: Field): LogFieldValue {
  switch (field.kind) {
    case 'absent':
      return null;
    case 'list':
      return field.items().map(fieldValue);
    case 'mapping':
      return Object.fromEntries(field.keys().map((k) => [k, fieldValue(field.child(k))]));
    case 'scalar':
      return field.scalar('a string, number or boolean, or a mapping or list of them');
  }
}

// Storage drivers of Docker Registry other than filesystem: a cache cannot silently ignore them.
const OTHER_DRIVERS = ['inmemory', 's3', 's3-aws', 'azure', 'gcs', 'swift', 'oss'];

export function readStorage(root: Field, checks: FileCheck[]): Config['storage'] {
  const storage = root.child('storage');
  const keys = storage.keys();
  for (const driver of OTHER_DRIVERS) {
    if (keys.includes(driver)) {
      storage
        .child(driver)
        .fail(
          'the filesystem storage driver (dtr-cache keeps blobs on a local or shared filesystem)',
          `the ${driver} storage driver`,
        );
    }
  }
  // cache, maintenance, redirect and tag are distribution settings with no meaning for a cache.
  storage.checkKeys(['delete', 'filesystem'], ['cache', 'maintenance', 'redirect', 'tag']);

  const del = storage.child('delete');
  del.checkKeys(['enabled']);
  const fs = storage.child('filesystem');
  fs.checkKeys(['rootdirectory'], ['maxthreads']);
  const rootField = fs.child('rootdirectory');
  const rootDirectory = rootField.text('a directory path') ?? DEFAULTS.storage.filesystem.rootdirectory;
  checks.push({ field: rootField, path: rootDirectory, kind: 'directory' });
  return { deleteEnabled: del.child('enabled').bool() ?? DEFAULTS.storage.delete.enabled, rootDirectory };
}
