// Runs the DTR mock origin as its own process (demo, benchmarks):
//   node dist/bench/dtr-mock/main.js [--port N] [--host ADDR] [--cert PEM --key PEM]
//     [--storage DIR|memory] [--latency-ms N] [--bandwidth BYTES] [--keep-alive-ms N] [--no-tokens]
//     [--users FILE.json] [--admin user:pass] [--alg ES256|RS256|EdDSA]
//     [--redirect-ttl SEC] [--service NAME] [--issuer NAME]
// Prints one JSON line {"event":"listening","url":…,"port":…} on stdout when
// ready; exits 0 on SIGTERM/SIGINT after closing the server.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { isSigningAlg } from './keys.js';
import { startDtrMock, type DtrMockOptions, type UserSpec } from './index.js';
import { stackOf } from '../../src/errors/inspect.js';

function fail(msg: string): never {
  process.stderr.write(`dtr-mock: ${msg}\n`);
  process.exit(2);
}

function int(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) fail(`${flag} wants a whole number >= 0, got ${JSON.stringify(v)}`);
  return n;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      storage: { type: 'string' },
      'latency-ms': { type: 'string' },
      bandwidth: { type: 'string' },
      'keep-alive-ms': { type: 'string' },
      'no-tokens': { type: 'boolean' },
      users: { type: 'string' },
      admin: { type: 'string' },
      alg: { type: 'string' },
      'redirect-ttl': { type: 'string' },
      service: { type: 'string' },
      issuer: { type: 'string' },
    },
    strict: true,
  });

  const opts: DtrMockOptions = {};
  const port = int(values.port, '--port');
  if (port !== undefined) opts.port = port;
  if (values.host !== undefined) opts.host = values.host;
  if ((values.cert === undefined) !== (values.key === undefined)) fail('--cert and --key go together');
  if (values.cert !== undefined && values.key !== undefined) {
    opts.tls = { cert: await readFile(values.cert), key: await readFile(values.key) };
  }
  if (values.storage !== undefined && values.storage !== 'memory') opts.storage = { dir: values.storage };
  const latency = int(values['latency-ms'], '--latency-ms');
  if (latency !== undefined) opts.latencyMs = latency;
  const bw = int(values.bandwidth, '--bandwidth');
  if (bw !== undefined && bw > 0) opts.bandwidth = bw;
  const keepAlive = int(values['keep-alive-ms'], '--keep-alive-ms');
  if (keepAlive !== undefined) opts.keepAliveMs = keepAlive;
  if (values['no-tokens'] === true) opts.tokens = false;
  const ttl = int(values['redirect-ttl'], '--redirect-ttl');
  if (ttl !== undefined) opts.redirectTtlSec = ttl;
  if (values.service !== undefined) opts.service = values.service;
  if (values.issuer !== undefined) opts.issuer = values.issuer;
  if (values.alg !== undefined) {
    if (!isSigningAlg(values.alg)) fail('--alg is one of ES256, RS256, EdDSA');
    opts.alg = values.alg;
  }

  const users: Record<string, UserSpec> = {};
  if (values.users !== undefined) {
    const parsed: unknown = JSON.parse(await readFile(values.users, 'utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      fail('--users file must hold a JSON object');
    Object.assign(users, parsed);
  }
  if (values.admin !== undefined) {
    const i = values.admin.indexOf(':');
    if (i <= 0) fail('--admin wants user:pass');
    users[values.admin.slice(0, i)] = { password: values.admin.slice(i + 1), admin: true };
  }
  opts.users = users;

  const mock = await startDtrMock(opts);
  process.stdout.write(`${JSON.stringify({ event: 'listening', url: mock.url, port: mock.port })}\n`);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    mock.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => fail(stackOf(err)));
