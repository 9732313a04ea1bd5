// The readers of a fill: each gets a source over the fill's bytes with its own position;
// the slowest position tells the fill which memory nobody needs; the newest credential
// among those still waiting is the one a retry uses; leaving is reported once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readers, type FillBytes } from '../../src/fill/readers.js';
import { Signal } from '../../src/fill/signal.js';

function bytesOf(data: Buffer, arrived: () => number, verified: () => boolean): FillBytes {
  return {
    size: data.length,
    arrived,
    verified,
    failure: () => null,
    read: (buf, pos, len) => Promise.resolve(data.copy(buf, 0, pos, Math.min(arrived(), pos + len))),
    progress: new Signal(),
  };
}

test('readers: positions follow reads and Range starts; the slowest bounds what memory may be dropped', async () => {
  let moved = 0;
  let releases = 0;
  const readers = new Readers({ moved: () => void moved++, released: async () => void releases++ });
  const data = Buffer.from('0123456789abcdef');
  let arrived = 8;
  const bytes = bytesOf(
    data,
    () => arrived,
    () => false,
  );
  const a = { token: 'a', exp: 100, name: 'team/app' };
  const b = { token: 'b', exp: 200, name: 'team/app' };
  readers.add(a);
  readers.add(b);
  assert.equal(readers.count, 2);
  const sa = readers.source(a, bytes);
  const sb = readers.source(b, bytes);
  assert.equal(readers.slowest(arrived), 0);
  const buf = Buffer.alloc(16);
  assert.equal(await sa.read(buf, 0, 6), 6);
  assert.equal(buf.subarray(0, 6).toString(), '012345');
  assert.equal(readers.slowest(arrived), 0, 'b has read nothing');
  sb.startingAt?.(12);
  assert.equal(readers.slowest(16), 6, 'a Range reader waiting further on does not hold the bytes before its start');
  assert.equal(sa.available(), 8);
  assert.equal(sa.verified(), false);
  arrived = 16;
  assert.equal(sb.available(), 16);
  assert.ok(moved >= 2);
  await sa.release();
  await sa.release();
  assert.equal(releases, 1, 'a release is reported once');
  assert.equal(readers.count, 1);
  assert.equal(readers.slowest(16), 12);
});

test('readers: the newest credential among those still waiting is used, the first one when all left', () => {
  const readers = new Readers({ moved: () => undefined, released: async () => undefined });
  const first = { token: 'first', exp: 100, name: 'team/app' };
  const newer = { token: 'newer', exp: 300, name: 'team/other' };
  const older = { token: 'older', exp: 50, name: 'team/app' };
  readers.add(first);
  readers.add(newer);
  readers.add(older);
  assert.equal(readers.newest(first), newer, 'with the repository its token is for');
  readers.remove(newer);
  assert.equal(readers.newest(first).token, 'first');
  readers.remove(first);
  readers.remove(older);
  assert.equal(readers.newest(first).token, 'first');
});

test("readers: a credential offered by another process's follower counts when it is the newest", () => {
  const readers = new Readers({ moved: () => undefined, released: async () => undefined });
  const first = { token: 'first', exp: 100, name: 'team/app' };
  readers.add(first);
  readers.offer({ token: 'stale', exp: 90, name: 'team/app' });
  assert.equal(readers.newest(first).token, 'first', 'an older offer is not used');
  readers.offer({ token: 'remote', exp: 400, name: 'team/app' });
  readers.offer({ token: 'older-remote', exp: 200, name: 'team/app' });
  assert.equal(readers.newest(first).token, 'remote', 'the newest offer is kept');
  readers.add({ token: 'local', exp: 500, name: 'team/app' });
  assert.equal(readers.newest(first).token, 'local', 'a newer local client still wins');
});
