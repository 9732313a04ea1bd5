// What a log line carries for an error: the error object (type, code, message and stack
// with the causes), and never a token, wherever in the logged object it sits; and what the
// text formatter makes of lines.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once, type EventEmitter } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { AccessLog, type AccessFields } from '../../src/log/access-log.js';
import { censorTokens, createLogger, flushLogger } from '../../src/log/log.js';
import { gatewayError } from '../../src/errors/upstream.js';
import type { Config } from '../../src/config/types.js';

const TOKEN = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg';

type Logger = ReturnType<typeof createLogger>;
type LogFields = Config['log']['fields'];

/** A text line's pid, after its level (a regular expression): a node's processes write to one stream. */
const pid = `\\(${process.pid}\\)`;

/** What a logger of this formatter writes to a file; the destination is closed before reading. */
async function written(
  t: TestContext,
  formatter: 'json' | 'text',
  write: (log: Logger) => void,
  fields: LogFields = {},
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dtr-cache-log-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'out.log');
  const log = createLogger({ level: 'info', formatter, fields }, file);
  // The destination (a file stream, or the text formatter's thread) gets ready first; what
  // was written is then flushed, and the file closed.
  const dest = (log as unknown as Record<symbol, EventEmitter & { end(): void }>)[pino.symbols.streamSym];
  assert.ok(dest, "pino's destination");
  await once(dest, 'ready');
  write(log);
  await flushLogger(log);
  dest.end();
  await once(dest, 'close');
  return readFile(file, 'utf8');
}

async function linesOf(t: TestContext, write: (log: Logger) => void, fields: LogFields = {}) {
  const text = await written(t, 'json', write, fields);
  return {
    text,
    lines: text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

test('{ err } logs the error object: type, code, message and stack with the cause', async (t) => {
  const reset = Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' });
  const { lines } = await linesOf(t, (log) => log.warn({ err: gatewayError('reset', 'upstream broke', reset) }, 'x'));
  const err = lines[0]?.['err'] as Record<string, unknown>;
  assert.equal(err['type'], 'RegistryError');
  assert.equal(err['code'], 'UNAVAILABLE');
  assert.equal(err['status'], 502);
  assert.match(String(err['message']), /^upstream broke: other side closed$/);
  assert.match(String(err['stack']), /^RegistryError: upstream broke\n/);
  assert.match(String(err['stack']), /\ncaused by: Error: other side closed\n/);
});

test('tokens never reach the log, in the object or in an error', async (t) => {
  const withHeaders = Object.assign(new Error('upstream said no'), {
    token: TOKEN,
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  const { text } = await linesOf(t, (log) => {
    log.info({ token: TOKEN, authorization: `Bearer ${TOKEN}` }, 'request');
    log.info({ req: { headers: { authorization: `Bearer ${TOKEN}` } } }, 'request');
    log.warn({ err: withHeaders }, 'failed');
  });
  assert.equal(text.trim().split('\n').length, 3);
  assert.ok(!text.includes(TOKEN), text);
  assert.ok(!text.includes(TOKEN.slice(TOKEN.lastIndexOf('.') + 1)), 'not even the signature');
});

test('log.formatter text: one line a record, UTC time, level, message, fields; tokens redacted', async (t) => {
  const text = await written(t, 'text', (log) => {
    log.info({ method: 'GET', status: 200, token: TOKEN }, 'request');
    log.warn({ upstream: 'https://dtr.example.org' }, 'upstream failed, trying next');
  });
  const [request, warning, ...more] = text.trim().split('\n');
  assert.equal(more.length, 0, text);
  assert.match(
    request ?? '',
    new RegExp(
      `^\\[\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z\\] INFO ${pid}: request \\{.*"method":"GET".*\\}$`,
    ),
  );
  assert.match(request ?? '', /"status":200/);
  assert.match(
    warning ?? '',
    new RegExp(`\\] WARN ${pid}: upstream failed, trying next \\{"upstream":"https://dtr\\.example\\.org"\\}$`),
  );
  assert.ok(!text.includes(TOKEN));
  assert.ok(!/"(pid|hostname|svc)"/.test(text), 'the pid is said once, the host and service not at all');
});

/** The access fields of a blob request, with what a test sets. */
function blobAccess(f: Pick<AccessFields, 'status' | 'bytes' | 'outcome' | 'err'>): AccessFields {
  return {
    method: 'GET',
    route: 'blob',
    registry: undefined,
    repo: 'team/app',
    digest: `sha256:${'a'.repeat(64)}`,
    ms: 0.4,
    proto: '1.1',
    ...f,
  };
}

test("log.formatter text: a record with an error is one line too, the access log's and a logged error object", async (t) => {
  const fields = blobAccess({ status: 401, bytes: 0, outcome: 'error', err: 'no token in the request' });
  const text = await written(t, 'text', (log) => {
    new AccessLog(log).write(fields);
    log.error(
      { err: new Error('spool write failed', { cause: new Error('EIO') }), digest: fields.digest },
      'fill failed',
    );
  });
  const [request, failed, ...more] = text.trim().split('\n');
  assert.equal(more.length, 0, text);
  // The access log writes its own line (log/access-log.ts): with the pid too.
  assert.match(
    request ?? '',
    new RegExp(`\\] INFO ${pid}: request \\{.*"status":401.*"err":"no token in the request".*\\}$`),
  );
  assert.match(
    failed ?? '',
    new RegExp(`\\] ERROR ${pid}: fill failed \\{.*"err":\\{.*"message":"spool write failed.*EIO.*\\}$`),
  );
});

test('censorTokens: copies only what it censors, at the top and one object down; the logged objects stay as they were', () => {
  const plain = { method: 'GET', status: 200, route: { host: 'a', from: 0 } };
  assert.equal(censorTokens(plain), plain, 'a record without a token is passed through as is');
  const upstream = { url: 'https://dtr', token: TOKEN };
  const record = {
    authorization: `Bearer ${TOKEN}`,
    headers: { authorization: `Bearer ${TOKEN}`, accept: '*/*' },
    upstream,
    req: { headers: { authorization: `Bearer ${TOKEN}` } },
    list: [TOKEN.length],
  };
  const out = censorTokens(record);
  assert.ok(!JSON.stringify(out).includes(TOKEN), JSON.stringify(out));
  assert.deepEqual(out['headers'], { authorization: '[redacted]', accept: '*/*' });
  assert.deepEqual(out['upstream'], { url: 'https://dtr', token: '[redacted]' });
  assert.equal(upstream.token, TOKEN, 'the caller’s object is not changed');
  assert.equal(record.headers.authorization, `Bearer ${TOKEN}`);
  assert.equal(out['list'], record.list);
});

test("the access log writes pino's line for the same fields, bindings included; none below the logger's level", async (t) => {
  const fields = blobAccess({ status: 200, bytes: 4096, outcome: 'hit', err: 'a "quoted"\nmessage' });
  const { lines } = await linesOf(t, (log) => {
    const member = log.child({ proc: 3 });
    member.info(fields, 'request');
    new AccessLog(member).write(fields);
    member.level = 'warn';
    new AccessLog(member).write(fields);
  });
  assert.equal(lines.length, 2, 'nothing at level warn');
  const [byPino, ours] = lines as [Record<string, unknown>, Record<string, unknown>];
  assert.equal(typeof ours['time'], 'number');
  assert.deepEqual({ ...ours, time: 0 }, { ...byPino, time: 0 });
  assert.equal(ours['proc'], 3);
  assert.equal(ours['pid'], process.pid);
  assert.equal(ours['err'], 'a "quoted"\nmessage');
  assert.equal('registry' in ours, false, 'undefined fields are left out');
});

test('log.fields, nested ones included, are in every line: the access log and the others', async (t) => {
  const fields = { service: 'cache', labels: { team: 'infra', tiers: ['edge', 2] } };
  const { lines } = await linesOf(
    t,
    (log) => {
      log.info('started');
      new AccessLog(log).write(blobAccess({ status: 200, bytes: 1, outcome: 'hit', err: undefined }));
    },
    fields,
  );
  assert.equal(lines.length, 2);
  for (const line of lines) {
    assert.equal(line['service'], 'cache');
    assert.deepEqual(line['labels'], fields.labels);
  }
});
