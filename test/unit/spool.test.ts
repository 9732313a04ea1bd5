// Spool claims on a real directory: one claim per digest, the owner's record filled in off
// the claim's path, a live writer's claim kept by the start-up sweep and a dead one's removed,
// a zombie writer (exited, never reaped) judged dead however fresh its record.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { link, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Layout } from '../../src/store/layout.js';
import { parseDigest } from '../../src/store/digest.js';
import { SpoolDir } from '../../src/store/spool.js';
import { replaceRecord } from '../../src/store/spool-record.js';
import { markFollowed, ReplicaFollower } from '../../src/fill/replica.js';
import { Signal } from '../../src/fill/signal.js';
import { waitFor } from '../helpers/deadline.js';
import { removeAtExit } from '../../testkit/tmp.js';

const digest = parseDigest(`sha256:${'ab'.repeat(32)}`);

async function spools(beatMs = 50) {
  const layout = new Layout(join(removeAtExit(await mkdtemp(join(tmpdir(), 'dtr-cache-spool-'))), 'registry'));
  return new SpoolDir(layout, { beatMs, staleMs: 60_000 });
}

test('spool: one claim per digest; the record names the owner; release removes claim and data file', async () => {
  const dir = await spools();
  const first = await dir.claim(digest);
  assert.equal(first.kind, 'created');
  if (first.kind !== 'created') return;
  const second = await dir.claim(digest);
  assert.equal(second.kind, 'exists');
  const owner = await waitFor(2_000, 'the record', () => dir.readOwner(digest).then((o) => o ?? undefined));
  assert.equal(owner.pid, process.pid);
  await first.spool.dataFile();
  await first.spool.setSize(1234);
  assert.equal((await dir.readOwner(digest))?.size, 1234);
  assert.equal(await dir.ownerIsDead(digest, owner), false, 'this very process, beating');
  assert.equal(await dir.sweep(), 0, 'a live claim stays');
  await first.spool.release();
  assert.deepEqual(await readdir(dir.dir), []);
});

test('spool: a writer that exited but was never reaped (a zombie) is dead, however fresh its record', async (t) => {
  // bash starts a short sleep in the background, then becomes a long one, which never reaps it.
  const parent = spawn('bash', ['-c', 'sleep 0.2 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(() => parent.kill('SIGKILL'));
  const zombie = Number(
    await new Promise<string>((resolve) => createInterface({ input: parent.stdout }).once('line', resolve)),
  );
  await waitFor(5_000, 'the child is a zombie', async () => {
    const stat = await readFile(`/proc/${zombie}/stat`, 'utf8').catch(() => '');
    return stat.includes(') Z ');
  });
  const dir = await spools();
  const claim = dir.claimPath(digest);
  const owner = { host: hostname(), pid: zombie, startedAt: Date.now(), writer: `x-${zombie}-1` };
  await mkdir(dir.dir, { recursive: true });
  await writeFile(claim, JSON.stringify(owner));
  assert.doesNotThrow(() => process.kill(zombie, 0), 'kill(0) still answers for it');
  assert.equal(await dir.ownerIsDead(digest, owner), true);
  assert.equal(await dir.sweep(), 1, 'and the start-up sweep removes its claim');
});

test('spool: a claim whose record the disk refused (left empty) is still removed at release', async () => {
  const dir = await spools();
  const claim = await dir.claim(digest);
  if (claim.kind !== 'created') return assert.fail('claimed');
  await waitFor(2_000, 'the record', () => dir.readOwner(digest).then((o) => o ?? undefined));
  // As if the write of the record had met ENOSPC: the claim exists, empty.
  await truncate(dir.claimPath(digest), 0);
  assert.equal(await dir.readOwner(digest), null);
  await claim.spool.release();
  assert.deepEqual(await readdir(dir.dir), [], 'no claim left behind');
});

test('spool: a follower marker made after its writer removed the data file is taken back', async () => {
  const dir = removeAtExit(await mkdtemp(join(tmpdir(), 'dtr-cache-marker-')));
  const data = join(dir, 'sha256-ab.writer');
  await writeFile(data, 'bytes');
  const ino = (await stat(data)).ino;
  // The writer is still there: the marker stays, for it to see.
  await markFollowed(data, ino);
  assert.deepEqual((await readdir(dir)).sort(), ['sha256-ab.writer', 'sha256-ab.writer.followed']);
  // The writer finished and removed its file and marker before the follower wrote the marker.
  await rm(data);
  await rm(`${data}.followed`);
  await markFollowed(data, ino);
  assert.deepEqual(await readdir(dir), [], 'no marker left behind');
});

/** This process's open descriptors on `path` (a removed file's link reads "path (deleted)"). */
async function fdsOn(path: string): Promise<number> {
  let n = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target === path || target === `${path} (deleted)`) n++;
  }
  return n;
}

test('spool: the read handle opened at the claim reads the data file; one nobody took is closed at release', async () => {
  const dir = await spools();
  const taken = await dir.claim(digest);
  assert.equal(taken.kind, 'created');
  if (taken.kind !== 'created') return;
  await taken.spool.dataFile();
  await writeFile(taken.spool.dataPath, 'hello');
  const reader = await taken.spool.takeReader();
  assert.equal((await reader.read(Buffer.alloc(5), 0, 5, 0)).bytesRead, 5);
  await taken.spool.release();
  assert.equal(await fdsOn(taken.spool.dataPath), 1, 'a handle taken is the taker’s to close');
  await reader.close();

  const other = parseDigest(`sha256:${'cd'.repeat(32)}`);
  const untaken = await dir.claim(other);
  assert.equal(untaken.kind, 'created');
  if (untaken.kind !== 'created') return;
  await untaken.spool.dataFile();
  await waitFor(2_000, 'the read handle open', async () => (await fdsOn(untaken.spool.dataPath)) === 1);
  await untaken.spool.release();
  assert.equal(await fdsOn(untaken.spool.dataPath), 0, 'release closed the handle nobody took');
  assert.deepEqual(await readdir(dir.dir), []);
});

/** A writer that has claimed the blob and made its data file, but knows no size yet. */
async function writerWaitingForItsHead(beatMs?: number) {
  const dir = await spools(beatMs);
  const claim = await dir.claim(digest);
  if (claim.kind !== 'created') return assert.fail('claimed');
  const writer = claim.spool;
  await writer.dataFile();
  await (await writer.takeReader()).close();
  await waitFor(2_000, 'the record', () => dir.readOwner(digest).then((o) => o ?? undefined));
  return { dir, writer };
}

test('replica follower: opens the writer’s data file while the writer waits for its upstream’s head', async (t) => {
  const { dir, writer } = await writerWaitingForItsHead();
  const follower = new ReplicaFollower(dir, digest, join(dir.dir, 'no-such-blob'), null, new Signal(), false);
  // Released, the claim is gone, and a follower still waiting stops.
  t.after(() => writer.release().then(() => follower.close(false)));
  const size = follower.size();
  // No size recorded yet: the follower already holds the data file open.
  await waitFor(2_000, 'the data file open', async () => (await fdsOn(writer.dataPath)) === 1);
  await writer.setSize(5);
  assert.equal(await size, 5);
  await follower.close(false);
  assert.equal(await fdsOn(writer.dataPath), 0);
});

test('replica follower: once the blob is published it stops watching the spool; its clients still read', async (t) => {
  const { dir, writer } = await writerWaitingForItsHead();
  const finalPath = join(dir.dir, 'published-blob');
  const follower = new ReplicaFollower(dir, digest, finalPath, null, new Signal(), false);
  t.after(() => writer.release().then(() => follower.close(false)));
  const size = follower.size();
  await writer.setSize(5);
  assert.equal(await size, 5);
  assert.equal(follower.watching, true, 'it watches the spool while the writer writes');
  await writeFile(writer.dataPath, 'hello');
  await link(writer.dataPath, finalPath);
  assert.deepEqual(await follower.follow(() => false), { kind: 'published' });
  // What a fill does on that outcome (claim.ts). A watch left open kept every follower, and
  // the blocks its clients had read, for the life of the process: the soak's edge grew by
  // ~1 MiB/s under a 2-process node.
  follower.markPublished();
  assert.equal(follower.watching, false, 'nothing is left to watch for');
  const buf = Buffer.alloc(5);
  assert.equal(await follower.read(buf, 0, 5), 5);
  assert.equal(buf.toString(), 'hello');
});

test('replica follower: a record change seen while it was reading, not sleeping, is not left for the next poll', async (t) => {
  // No heartbeat during the test: its touches of the record would wake the follower too.
  const { dir, writer } = await writerWaitingForItsHead(600_000);
  // The writer records the size while the follower is between reading the record (no size
  // yet) and going to sleep: the inotify event comes while nobody waits for it.
  let raced = false;
  const readOwner = async (d: typeof digest) => {
    const owner = await dir.readOwner(d);
    if (!raced && owner !== null) {
      raced = true;
      await writer.setSize(5);
      await new Promise((r) => setTimeout(r, 100)); // the watcher's callback runs meanwhile
    }
    return owner;
  };
  const racing = new Proxy(dir, {
    get(target, prop) {
      if (prop === 'readOwner') return readOwner;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  // A poll far longer than the test: only the remembered event can end the wait.
  const follower = new ReplicaFollower(
    racing,
    digest,
    join(dir.dir, 'no-such-blob'),
    null,
    new Signal(),
    false,
    600_000,
  );
  t.after(() => writer.release().then(() => follower.close(false)));
  const size = await Promise.race([follower.size(), new Promise((r) => setTimeout(r, 5_000, 'still asleep'))]);
  assert.equal(raced, true);
  assert.equal(size, 5);
});

test('replica follower: asks the writer to leave O_DIRECT only where the node writes that way', async (t) => {
  const { dir, writer } = await writerWaitingForItsHead();
  const marker = `${writer.dataPath}.followed`;
  const exists = () =>
    stat(marker).then(
      () => true,
      () => false,
    );
  const follower = (directWrites: boolean) =>
    new ReplicaFollower(dir, digest, join(dir.dir, 'no-such-blob'), null, new Signal(), directWrites);
  // Writers through the page cache (the default) never read the marker: none is made.
  const plain = follower(false);
  const direct = follower(true);
  t.after(() => writer.release().then(() => Promise.all([plain.close(false), direct.close(false)])));
  const sizes = [plain.size()];
  await waitFor(2_000, 'the page-cache follower has the file open', async () => (await fdsOn(writer.dataPath)) === 1);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(await exists(), false, 'no marker where writers use the page cache');
  // Direct writes: the follower marks the file, and its writer then goes through the page cache.
  sizes.push(direct.size());
  await waitFor(2_000, 'the marker of the O_DIRECT follower', exists);
  await writer.setSize(5);
  assert.deepEqual(await Promise.all(sizes), [5, 5]);
});

test('replica follower: a take-over whose data file is not there yet is waited for, not taken for a failed fill', async (t) => {
  // Two processes of a node follow a dead writer's spool; one takes it over. A take-over
  // renames its record in and only then creates its data file: the other follower, woken
  // by the rename, must go on following (and read the new owner's file once it comes), not
  // conclude that the fill ended unpublished and start a second upstream download.
  const live = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.after(() => live.kill('SIGKILL'));
  const pid = live.pid ?? assert.fail('sleep did not start');
  const dir = await spools();
  await mkdir(dir.dir, { recursive: true });
  const claim = dir.claimPath(digest);
  const first = { host: hostname(), pid, startedAt: Date.now(), writer: `x-${pid}-1`, size: 10 };
  await writeFile(claim, JSON.stringify(first));
  await writeFile(dir.dataPathOf(digest, first), 'hello');
  const finalPath = join(dir.dir, 'published-blob');
  const follower = new ReplicaFollower(dir, digest, finalPath, null, new Signal(), false);
  t.after(() => follower.close(false));
  assert.equal(await follower.size(), 10);
  const following = follower.follow(() => false);
  await waitFor(2_000, 'the first writer’s bytes', () => follower.arrived() === 5);

  // The take-over: the new owner's record first, its data file a moment later.
  const second = { ...first, writer: `x-${pid}-2` };
  await replaceRecord(claim, second);
  const early = await Promise.race([following, new Promise((r) => setTimeout(r, 500, 'still following'))]);
  assert.equal(early, 'still following', 'the follower gave up while the new owner made its data file');

  // Its file exists before it holds the bytes already read from the first: those stay
  // readable from the first writer's file meanwhile.
  await writeFile(dir.dataPathOf(digest, second), 'hel');
  await new Promise((r) => setTimeout(r, 300));
  const before = Buffer.alloc(5);
  assert.equal(await follower.read(before, 0, 5), 5, 'the bytes announced are still read');
  assert.equal(before.toString(), 'hello');
  await writeFile(dir.dataPathOf(digest, second), 'helloworld');
  await link(dir.dataPathOf(digest, second), finalPath);
  assert.deepEqual(await following, { kind: 'published' });
  follower.markPublished();
  const buf = Buffer.alloc(10);
  assert.equal(await follower.read(buf, 0, 10), 10);
  assert.equal(buf.toString(), 'helloworld');
});
