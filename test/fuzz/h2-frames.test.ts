// Raw HTTP/2 frames at the cache process (h2-frames-arb.ts): whatever a session sends, the
// process stays up with nothing unexpected in its log, every request that reaches the
// router is answered with a status of the error table or a blob status, every response
// body is registry JSON or bytes of a blob, and the session is either answered or closed
// by the server: never left hanging.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FLAG, FRAME, RawH2, frame } from '../helpers/h2-raw.js';
import { waitFor } from '../helpers/deadline.js';
import { REGISTRY_ERRORS } from '../../src/errors/registry.js';
import { budget, runProperty } from './budget.js';
import { connectionBytes, plan, streamBytes, type Plan } from './h2-frames-arb.js';
import { NAMES, startTarget, type Target } from './target.js';
import { H2Client } from './wire.js';

const ANSWERED = new Set([
  200,
  206,
  304,
  416,
  499,
  508,
  ...Object.values(REGISTRY_ERRORS).map((e) => e.status),
  502,
  504,
]);
const PING = Buffer.from('fuzzping');

/** Opens a session with the largest flow-control windows, so no response waits on us. */
async function openSession(t: Target): Promise<RawH2> {
  const raw = await RawH2.open(t.port, t.ca.cert);
  const settings = Buffer.alloc(6);
  settings.writeUInt16BE(0x4, 0);
  settings.writeUInt32BE(0x7fffffff, 2);
  const update = Buffer.alloc(4);
  update.writeUInt32BE(0x7fffffff - 65_535, 0);
  raw.write(Buffer.concat([frame(FRAME.SETTINGS, 0, 0, settings), frame(FRAME.WINDOW_UPDATE, 0, 0, update)]));
  return raw;
}

async function run(t: Target, p: Plan): Promise<{ raw: RawH2; ids: number[] }> {
  const raw = await openSession(t);
  const ids: number[] = [];
  try {
    const out: Buffer[] = [];
    for (const s of p.streams) {
      const next = raw.nextStream();
      const id = s.id === 'next' ? next : s.id === 'reused' ? (ids[0] ?? 1) : s.id === 'even' ? next + 1 : 0;
      ids.push(id);
      out.push(streamBytes(s, id));
    }
    for (const c of p.connection) out.push(connectionBytes(c));
    out.push(frame(FRAME.PING, 0, 0, PING));
    raw.write(Buffer.concat(out));
    // Done when the server closed the session, or acknowledged our PING (every frame before
    // it has been read) and ended or reset each stream it accepted.
    const ended = (id: number): boolean =>
      raw.frames.some((f) => f.streamId === id && (f.type === FRAME.RST_STREAM || (f.flags & FLAG.END_STREAM) !== 0));
    await waitFor(10_000, 'the server answers or closes the session', () => {
      if (raw.closed || raw.goaway !== null) return true;
      const acked = raw.frames.some(
        (f) => f.type === FRAME.PING && (f.flags & FLAG.ACK) !== 0 && f.payload.equals(PING),
      );
      const opened = ids.filter((id) => id !== 0 && id % 2 === 1 && raw.frames.some((f) => f.streamId === id));
      return acked && opened.every(ended) ? true : undefined;
    });
    return { raw, ids };
  } catch (err) {
    raw.destroy();
    throw err;
  }
}

test('fuzz: raw HTTP/2 frames', async (t) => {
  const target = await startTarget(t);
  const blob = target.blobs[4]!;
  const token = target.tokenFor(NAMES[0], blob.digest);
  const paths = [
    `/v2/${NAMES[0]}/blobs/${blob.digest}?token=${token}`,
    '/v2/',
    '/.well-known/jwks.json',
    `/v2/x/blobs/sha256:0`,
  ];
  target.takeRequestLines();

  const statuses = new Map<number, number>();
  let sessionsClosed = 0;
  const property = fc.asyncProperty(plan({ paths }), async (p) => {
    target.healthy();
    const { raw } = await run(target, p);
    if (raw.closed || raw.goaway !== null) sessionsClosed++;
    raw.destroy();
    for (const line of target.takeRequestLines()) {
      statuses.set(Number(line['status']), (statuses.get(Number(line['status'])) ?? 0) + 1);
      assert.ok(
        ANSWERED.has(Number(line['status'])),
        `the router answered ${String(line['status'])}: ${JSON.stringify(line)}`,
      );
    }
    const bodies = new Map<number, Buffer[]>();
    for (const f of raw.frames.filter((fr) => fr.type === FRAME.DATA))
      bodies.set(f.streamId, [...(bodies.get(f.streamId) ?? []), f.payload]);
    for (const [id, chunks] of bodies) {
      const body = Buffer.concat(chunks);
      if (body.length === 0 || target.blobs.some((b) => b.bytes.includes(body))) continue;
      // A multipart/byteranges body (front-door.test.ts checks its parts byte for byte).
      if (
        /^\r\n--[0-9a-f]+\r\nContent-Type: application\/octet-stream\r\nContent-Range: bytes /.test(
          body.toString('latin1'),
        )
      )
        continue;
      const json = JSON.parse(body.toString('utf8')) as { errors?: Array<{ code: string }>; keys?: unknown };
      const ok =
        json.keys !== undefined ||
        Object.keys(json).length === 0 ||
        json.errors?.every((e) => e.code in REGISTRY_ERRORS);
      assert.ok(ok, `stream ${id}: neither a blob nor registry JSON: ${body.toString().slice(0, 200)}`);
    }
  });
  await runProperty(t, 'h2-frames', property, budget(4));
  // What reached the router, to show the input is not all refused below it.
  t.diagnostic(
    `router statuses ${JSON.stringify(Object.fromEntries(statuses))}; sessions closed by the server ${sessionsClosed}`,
  );

  // And a well-behaved client is still served.
  target.healthy();
  const h2 = new H2Client(target.url, target.ca.cert);
  t.after(() => h2.close());
  const answer = await h2.request({ method: 'GET', target: paths[0]!, headers: [] });
  assert.equal(answer?.status, 200);
  assert.ok(answer.body.equals(blob.bytes));
});
