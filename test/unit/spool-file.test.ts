// The spool's data file: whole blocks straight to the disk (O_DIRECT) where the filesystem
// takes it, the unaligned ends and everything else through the page cache; the bytes on disk
// are the bytes written either way, and the file grows in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { once } from 'node:events';
import { mkdtemp, open, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { SpoolFile, StagingArena } from '../../workers/spool-file.js';
import { removeAtExit } from '../../testkit/tmp.js';

async function emptyFile(): Promise<string> {
  const path = join(removeAtExit(await mkdtemp(join(tmpdir(), 'dtr-cache-spool-file-'))), 'data');
  await writeFile(path, '');
  return path;
}

/** Whether this filesystem takes O_DIRECT at all (tmpfs did not before Linux 6.6). */
async function directAccepted(path: string): Promise<boolean> {
  const flag = (constants as { O_DIRECT?: number }).O_DIRECT;
  if (flag === undefined) return false;
  const fh = await open(path, constants.O_WRONLY | flag).catch(() => null);
  await fh?.close();
  return fh !== null;
}

// Writes as a fill makes them: an unaligned first piece, batches across block boundaries,
// one larger than the staging buffer, and an unaligned tail.
const PIECES = [1000, 5000, 1 << 20, (2 << 20) + 123, 4096, 77];

for (const direct of [true, false]) {
  test(`spool file (direct ${direct}): the file holds exactly the bytes written, in order`, async () => {
    const path = await emptyFile();
    const bytes = randomBytes(PIECES.reduce((a, b) => a + b, 0));
    const file = await SpoolFile.open(path, direct);
    const expectDirect = direct && (await directAccepted(path));
    let at = 0;
    for (const n of PIECES) {
      await file.write(bytes.subarray(at, at + n), at);
      at += n;
      assert.equal((await stat(path)).size, at, 'the file ends where the written bytes end');
    }
    // Direct I/O stays on: no write from the page-aligned staging buffer was refused along the way.
    assert.equal(file.direct, expectDirect);
    await file.close();
    assert.ok((await readFile(path)).equals(bytes), 'the same bytes');
  });
}

test('spool file: staging buffers are lent per file; a file that finds none writes through the page cache', async () => {
  const arena = new StagingArena(1);
  const bytes = randomBytes((1 << 20) + 4096 * 3 + 5);
  const [pathA, pathB, pathC] = [await emptyFile(), await emptyFile(), await emptyFile()];
  const canDirect = await directAccepted(pathA);
  const a = await SpoolFile.open(pathA, true, arena);
  const b = await SpoolFile.open(pathB, true, arena);
  assert.equal(a.direct, canDirect);
  assert.equal(b.direct, false, 'the one buffer is lent to the first file');
  await a.write(bytes, 0);
  await b.write(bytes, 0);
  await a.close();
  // Closed, the first file gave its buffer back (or never took one, where O_DIRECT is refused).
  const c = await SpoolFile.open(pathC, true, arena);
  assert.equal(c.direct, canDirect);
  await c.write(bytes, 0);
  await Promise.all([b.close(), c.close()]);
  for (const p of [pathA, pathB, pathC]) assert.ok((await readFile(p)).equals(bytes), p);
});

test('spool file: a thread that cannot make its staging memory writes through the page cache', async () => {
  // A thread of its own, whose runtime refuses WebAssembly memory (as when out of address
  // space): its first direct spool finds no arena, and the file is written all the same.
  const path = await emptyFile();
  const bytes = randomBytes((1 << 20) + 4096 + 9);
  const module = new URL('../../workers/spool-file.js', import.meta.url).href;
  const worker = new Worker(
    `
    const { parentPort, workerData } = require('node:worker_threads');
    globalThis.WebAssembly.Memory = function () { throw new RangeError('WebAssembly.Memory(): could not allocate memory'); };
    import(workerData.module).then(async ({ SpoolFile }) => {
      const file = await SpoolFile.open(workerData.path, true);
      const direct = file.direct;
      await file.write(Buffer.from(workerData.bytes), 0);
      await file.close();
      parentPort.postMessage({ direct });
    }).catch((err) => parentPort.postMessage({ error: String(err) }));
    `,
    { eval: true, workerData: { module, path, bytes } },
  );
  const [reply] = (await once(worker, 'message')) as [{ direct?: boolean; error?: string }];
  await worker.terminate();
  assert.deepEqual(reply, { direct: false }, 'no staging memory: the page cache, no failure');
  assert.ok((await readFile(path)).equals(bytes), 'the same bytes');
});
