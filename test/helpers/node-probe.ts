// Which serving process of a node answered a connection: each connection makes one request
// tagged with a repository name of its own (a 401 without a token), and the request's log
// line names the pid of the process that served it.
import { connect as tlsConnect } from 'node:tls';
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { Client } from 'undici';
import { waitFor } from './deadline.js';

type Lines = ReadonlyArray<Record<string, unknown>>;

const ZERO_DIGEST = `sha256:${'0'.repeat(64)}`;

export function newTag(): string {
  return `probe${randomBytes(6).toString('hex')}`;
}

export function tagPath(tag: string): string {
  return `/v2/${tag}/blobs/${ZERO_DIGEST}`;
}

/** The pid in the log line of the request tagged `tag`. */
export function pidOf(lines: Lines, tag: string, ms = 5_000): Promise<number> {
  return waitFor(ms, `the request log line of ${tag}`, () => {
    const line = lines.find((l) => l['msg'] === 'request' && l['repo'] === tag);
    return line === undefined ? undefined : Number(line['pid']);
  });
}

/**
 * The pids of the `count` serving processes listening now, once they all logged it (a
 * process's own lines may reach stdout after the supervisor's 'dtr-cache listening').
 */
export function servingPids(lines: Lines, count: number, without: readonly number[] = []): Promise<number[]> {
  return waitFor(10_000, `${count} serving processes listening`, () => {
    const exited = new Set(
      lines.filter((l) => l['msg'] === 'serving process exited').map((l) => Number(l['servingPid'])),
    );
    const pids = [
      ...new Set(lines.filter((l) => l['msg'] === 'serving process listening').map((l) => Number(l['pid']))),
    ].filter((pid) => !exited.has(pid) && !without.includes(pid));
    return pids.length === count ? pids : undefined;
  });
}

/** A connection of its own (HTTP/2: undici's default), and the process that accepted it. */
export interface Pinned {
  client: Client;
  pid: number;
}

/** The first item; throws on an empty list (so tests need no non-null assertions). */
export function first<T>(xs: readonly T[]): T {
  const x = xs[0];
  if (x === undefined) throw new Error('empty list');
  return x;
}

/** The first two items; throws on a shorter list. */
export function pair<T>(xs: readonly T[]): [T, T] {
  const [x, y] = xs;
  if (x === undefined || y === undefined) throw new Error(`expected two items, got ${xs.length}`);
  return [x, y];
}

/**
 * Opens connections until every process in `pids` holds `perProcess` of them (the kernel
 * spreads connections over the processes' accept queues by a hash: 64 tries bound it).
 * The connections of each process, in the order of `pids`.
 */
export async function pinConnections(
  t: TestContext,
  url: string,
  ca: string,
  lines: Lines,
  pids: readonly number[],
  perProcess: number,
): Promise<Client[][]> {
  const byPid = new Map<number, Client[]>(pids.map((p) => [p, []]));
  const full = () => [...byPid.values()].every((cs) => cs.length >= perProcess);
  for (let i = 0; i < 64 && !full(); i++) {
    // HTTP/2, which undici 8 offers by default. With HTTP/1.1 (allowH2: false), one full
    // run saw a replacement process end a fresh keep-alive connection unanswered (undici:
    // "other side closed"), not seen again in a dozen runs of that test: bench/NOTES.md.
    const client = new Client(url, { connect: { ca }, pipelining: 1 });
    t.after(() => client.destroy());
    const tag = newTag();
    try {
      const res = await client.request({ path: tagPath(tag), method: 'GET' });
      await res.body.dump();
    } catch {
      // Refused (a node-wide per-IP limit while an earlier connection is still counted): try another.
      await client.destroy();
      continue;
    }
    const pid = await pidOf(lines, tag);
    const list = byPid.get(pid);
    if (list !== undefined && list.length < perProcess) list.push(client);
    else await client.close();
  }
  if (!full()) throw new Error(`64 connections did not reach every process ${JSON.stringify(pids)}`);
  return pids.map((pid) => byPid.get(pid) ?? []);
}

export interface TlsProbe {
  status: number;
  fingerprint: string;
  reused: boolean;
  /** The newest session ticket the server sent, for the next connection to resume. */
  session: Buffer | undefined;
  /** The process that answered; -1 when none did (status 0). */
  pid: number;
}

/** One TLS connection, one tagged HTTP/1.1 request on it (Connection: close); `client`: a certificate to show. */
export function tlsProbe(
  port: number,
  ca: string,
  lines: Lines,
  session?: Buffer,
  client?: { cert: string; key: string },
): Promise<TlsProbe> {
  const tag = newTag();
  return new Promise<Omit<TlsProbe, 'pid'>>((resolve, reject) => {
    const s = tlsConnect({
      host: '127.0.0.1',
      servername: 'localhost',
      port,
      ca,
      ALPNProtocols: ['http/1.1'],
      ...(session === undefined ? {} : { session }),
      ...(client === undefined ? {} : { cert: client.cert, key: client.key }),
    });
    let ticket: Buffer | undefined;
    let text = '';
    s.on('session', (t: Buffer) => (ticket = t));
    s.once('secureConnect', () =>
      s.write(`GET ${tagPath(tag)} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`),
    );
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    s.once('error', reject);
    s.once('end', () => {
      resolve({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0),
        fingerprint: s.getPeerCertificate().fingerprint256,
        reused: s.isSessionReused(),
        session: ticket,
      });
      s.destroy();
    });
    // No HTTP answer (a handshake refused as the connection closed): no process logged it.
  }).then(async (r) => ({ ...r, pid: r.status === 0 ? -1 : await pidOf(lines, tag) }));
}
