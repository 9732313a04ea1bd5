// The spool task, run in this thread: regions are hashed as they come; the first is written
// at once (a follower in another process waits for no more), the rest in batches of at least
// 1 MiB (a small write costs more than its bytes on the disks we run on), each batch reported
// done only once written; a held batch is written when no region follows; the verdict goes
// before the last batch is written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdtemp, open, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { spool } from '../../workers/spool-task.js';
import type { SpoolMessage, SpoolProgress } from '../../workers/types.js';
import { removeAtExit } from '../../testkit/tmp.js';
import { waitFor } from '../helpers/deadline.js';

const MiB = 1 << 20;

async function task(bytes: Buffer) {
  const dir = removeAtExit(await mkdtemp(join(tmpdir(), 'dtr-cache-spool-task-')));
  const dataPath = join(dir, 'data');
  await writeFile(dataPath, '');
  const ring = new SharedArrayBuffer(bytes.length);
  bytes.copy(Buffer.from(ring));
  const { port1, port2 } = new MessageChannel();
  const progress: Array<Extract<SpoolProgress, { type: 'progress' }>> = [];
  const order: string[] = [];
  let verdict: boolean | null = null;
  port1.on('message', (m: SpoolProgress) => {
    order.push(m.type);
    if (m.type === 'progress') progress.push(m);
    if (m.type === 'verdict') verdict = m.ok;
  });
  const result = spool({
    dataPath,
    finalPath: join(dir, 'blob', 'data'),
    algorithm: 'sha256',
    expectedHex: createHash('sha256').update(bytes).digest('hex'),
    prefixFd: null,
    startOffset: 0,
    ring,
    port: port2,
    publishDelayMs: 0,
    directWrites: true,
    followedMarker: `${dataPath}.followed`,
  });
  const send = (m: SpoolMessage): void => port1.postMessage(m);
  return { dir, result, progress, order, send, verdict: () => verdict, close: () => port1.close() };
}

test('spool task: the first region is written alone, the rest in batches of at least 1 MiB, each done once written', async (t) => {
  const bytes = randomBytes(4 * MiB + 1000);
  const s = await task(bytes);
  t.after(s.close);
  for (let at = 0; at < bytes.length; at += 64 << 10)
    s.send({ type: 'chunk', at, length: Math.min(64 << 10, bytes.length - at) });
  s.send({ type: 'end', expectedSize: bytes.length });
  const result = await s.result;
  assert.deepEqual(result, { ok: true, size: bytes.length, published: true });
  assert.equal(s.verdict(), true);
  const done = s.progress.map((p) => p.done);
  assert.equal(done.at(-1), bytes.length);
  assert.ok(done.length <= 6, `67 regions, ${done.length} writes`);
  // Every region was posted before the task read any: only the rule writes the first alone.
  assert.equal(done[0], 64 << 10, 'the first region is written at once, alone');
  for (const [i, d] of done.slice(1, -1).entries()) assert.ok(d - (done[i] ?? 0) >= MiB, `batch ${i + 1} is ≥ 1 MiB`);
  for (const p of s.progress) assert.equal(p.written, p.done, 'written as soon as done');
  // The verdict (which releases the clients' last bytes) does not wait for the last write.
  assert.equal(s.order.at(-1), 'progress', 'the last batch is reported written after the verdict');
  assert.ok(s.order.includes('verdict'));
  assert.ok((await readFile(join(s.dir, 'blob', 'data'))).equals(bytes));
});

test('spool task: a batch smaller than 1 MiB is written when no region follows it', async (t) => {
  const bytes = randomBytes(400 << 10);
  const s = await task(bytes);
  t.after(s.close);
  s.send({ type: 'chunk', at: 0, length: 100 << 10 });
  await waitFor(2_000, 'the first region written', () => s.progress.at(-1)?.written === 100 << 10);
  s.send({ type: 'chunk', at: 100 << 10, length: 100 << 10 });
  s.send({ type: 'chunk', at: 200 << 10, length: 100 << 10 });
  // No end, no more regions (a stalled upstream): the held 200 KiB still reach the file.
  await waitFor(2_000, 'the held batch written', () => s.progress.at(-1)?.written === 300 << 10);
  assert.equal(s.progress.length, 2, 'the held regions in one write');
  s.send({ type: 'chunk', at: 300 << 10, length: 100 << 10 });
  s.send({ type: 'end', expectedSize: bytes.length });
  assert.equal((await s.result).ok, true);
  assert.ok((await readFile(join(s.dir, 'blob', 'data'))).equals(bytes));
});

/** Open descriptors of this process on `path` that write with O_DIRECT (Linux: 040000 in fdinfo's flags). */
async function directFdsOn(path: string): Promise<number> {
  let n = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target !== path) continue;
    const info = await readFile(`/proc/self/fdinfo/${fd}`, 'utf8').catch(() => '');
    const flags = parseInt(/^flags:\s+(\d+)/m.exec(info)?.[1] ?? '0', 8);
    if ((flags & 0o40000) !== 0) n++;
  }
  return n;
}

test('spool task: once another process follows the data file, the rest goes through the page cache', async (t) => {
  const bytes = randomBytes(4 * MiB);
  const s = await task(bytes);
  t.after(s.close);
  const send = (from: number, to: number): void => {
    for (let at = from; at < to; at += 64 << 10) s.send({ type: 'chunk', at, length: 64 << 10 });
  };
  send(0, 2 * MiB);
  await waitFor(2_000, 'two batches written', () => s.progress.at(-1)?.done === 2 * MiB);
  const dataPath = join(s.dir, 'data');
  // Where the filesystem takes O_DIRECT, the writer uses it while nobody follows.
  const direct = await directFdsOn(dataPath);
  const flag = (constants as { O_DIRECT?: number }).O_DIRECT;
  const accepted =
    flag !== undefined &&
    (await open(dataPath, constants.O_WRONLY | flag).then(
      (fh) => fh.close().then(() => true),
      () => false,
    ));
  assert.equal(direct, accepted ? 1 : 0);
  // A follower's marker: the next batch is written through the page cache.
  await writeFile(`${dataPath}.followed`, '');
  send(2 * MiB, 3 * MiB);
  await waitFor(2_000, 'the third batch written', () => s.progress.at(-1)?.done === 3 * MiB);
  assert.equal(await directFdsOn(dataPath), 0, 'no O_DIRECT descriptor left on the data file');
  send(3 * MiB, 4 * MiB);
  s.send({ type: 'end', expectedSize: bytes.length });
  assert.equal((await s.result).ok, true);
  assert.ok((await readFile(join(s.dir, 'blob', 'data'))).equals(bytes));
});
