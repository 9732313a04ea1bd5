// Raw HTTP/2 input (RFC 9113): header blocks with missing, repeated, unknown, misplaced or
// empty pseudo-header fields and the fields §8.2.2 forbids, sent whole or split across
// CONTINUATION frames, with padding and priority, on odd, even, reused or zero stream ids;
// and connection-level frames with values §6 calls errors. Header blocks are HPACK literals
// without indexing (RFC 7541 §6.2.2), so any name and value can be written.
import fc from 'fast-check';
import { FLAG, FRAME, frame, hpackString } from '../helpers/h2-raw.js';

const CONTINUATION = 0x9;
const PRIORITY = 0x2;
const PADDED = 0x8;
const PRIORITY_FLAG = 0x20;

/** A literal field without indexing, new name (RFC 7541 §6.2.2): any name, any value. */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x00]), hpackString(name), hpackString(value)]);
}

export type Field = [string, string];

export interface StreamPlan {
  /** Offset from the session's next odd id: 0 the normal next id, -2 a reused one, 1 an even one, or 'zero'. */
  id: 'next' | 'reused' | 'even' | 'zero';
  fields: Field[];
  /** Raw bytes appended to the header block (broken HPACK). */
  junk: number[];
  endStream: boolean;
  split: 'none' | 'continuation' | 'continuation-missing' | 'interleaved';
  padded: number | null;
  priority: boolean;
  then: 'nothing' | 'data' | 'rst' | 'window-update-0' | 'priority-self';
}

export interface Plan {
  streams: StreamPlan[];
  connection: Array<
    | 'none'
    | 'bad-settings'
    | 'ping-short'
    | 'unknown-frame'
    | 'window-update-0'
    | 'goaway'
    | 'huge-frame'
    | 'settings-ack-payload'
  >;
}

export interface PlanContext {
  /** A valid blob path with its token, and other paths (the router's routes and noise). */
  paths: readonly string[];
}

/** Half the header blocks are a well-formed request with at most one thing wrong; half anything. */
function fields(ctx: PlanContext): fc.Arbitrary<Field[]> {
  return fc.oneof(nearlyValid(ctx), anyFields(ctx));
}

function nearlyValid(ctx: PlanContext): fc.Arbitrary<Field[]> {
  const core = fc.tuple(fc.constantFrom('GET', 'GET', 'HEAD'), fc.constantFrom(...ctx.paths)).map(([m, p]): Field[] => [
    [':method', m],
    [':scheme', 'https'],
    [':authority', 'localhost'],
    [':path', p],
  ]);
  const one = fc.oneof(
    fc.constant<Field[]>([]),
    fc.constantFrom<Field[]>(
      [['range', 'bytes=0-9']],
      [['range', 'bytes=0-0,-1']],
      [['if-none-match', '*']],
      [['te', 'trailers']],
      [['te', 'gzip']],
      [['connection', 'close']],
      [[':method', 'GET']],
      [[':path', '/v2/']],
      [[':foo', 'bar']],
      [['Range', 'bytes=0-9']],
      [['host', 'evil.example']],
      [['content-length', '5']],
      [
        ['cookie', 'a=1'],
        ['cookie', 'b=2'],
      ],
    ),
  );
  return fc.tuple(core, one).map(([c, o]) => [...c, ...o]);
}

function anyFields(ctx: PlanContext): fc.Arbitrary<Field[]> {
  const pseudo = fc.oneof(
    { weight: 4, arbitrary: fc.constant<Field[]>([]) },
    {
      weight: 1,
      arbitrary: fc.constantFrom<Field[]>(
        [[':method', 'GET']],
        [[':scheme', 'http']],
        [[':path', '/v2/']],
        [[':authority', 'other']],
      ),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom<Field[]>([[':foo', 'bar']], [[':status', '200']], [[':protocol', 'websocket']]),
    },
  );
  const method = fc.constantFrom('GET', 'GET', 'HEAD', 'CONNECT', 'OPTIONS', 'get', 'POST', '', 'G ET');
  const path = fc.oneof(fc.constantFrom(...ctx.paths), fc.constantFrom('', '*', 'v2/', '/v2/\u00ff', '/v2/%00', '//'));
  const regular = fc.oneof(
    fc.constantFrom<Field>(
      ['connection', 'close'],
      ['keep-alive', '1'],
      ['transfer-encoding', 'chunked'],
      ['upgrade', 'h2c'],
      ['te', 'gzip'],
      ['te', 'trailers'],
      ['host', 'localhost'],
      ['host', 'evil.example'],
      ['content-length', '5'],
      ['Range', 'bytes=0-1'],
      ['range', 'bytes=0-1'],
      ['if-none-match', '*'],
      ['x-empty', ''],
      ['', 'no-name'],
      ['x y', 'space in name'],
      ['cookie', 'a=1'],
      ['cookie', 'b=2'],
    ),
    fc.tuple(
      fc.constantFrom('x-big', 'via', 'authorization'),
      fc.integer({ min: 100, max: 20_000 }).map((n) => 'a'.repeat(n)),
    ),
  );
  return fc
    .record({
      method: fc.option(method, { nil: undefined, freq: 12 }),
      scheme: fc.option(fc.constantFrom('https', 'https', 'https', 'http', 'ftp', ''), { nil: undefined, freq: 12 }),
      // Node refuses a request with neither :authority nor Host (RFC 9113 §8.3.1).
      authority: fc.option(fc.constantFrom('localhost', 'localhost', 'localhost', '', 'a:b:c'), {
        nil: undefined,
        freq: 8,
      }),
      path: fc.option(path, { nil: undefined, freq: 16 }),
      extraPseudo: pseudo,
      regular: fc.array(regular, { maxLength: 3 }),
      pseudoLast: fc.oneof({ weight: 6, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    })
    .map((r) => {
      const ps: Field[] = [];
      if (r.method !== undefined) ps.push([':method', r.method]);
      if (r.scheme !== undefined) ps.push([':scheme', r.scheme]);
      if (r.authority !== undefined) ps.push([':authority', r.authority]);
      if (r.path !== undefined) ps.push([':path', r.path]);
      ps.push(...r.extraPseudo);
      return r.pseudoLast && r.regular.length > 0 ? [...r.regular, ...ps] : [...ps, ...r.regular];
    });
}

/**
 * Three examples in four break streams only, so the requests that nghttp2 lets through
 * reach the router; the fourth may also break the session (connection errors of §5.4.1).
 */
export function plan(ctx: PlanContext): fc.Arbitrary<Plan> {
  const streamLevel: fc.Arbitrary<StreamPlan> = fc.record({
    id: fc.constant<StreamPlan['id']>('next'),
    fields: fields(ctx),
    junk: fc.constant<number[]>([]),
    endStream: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    split: fc.constantFrom<StreamPlan['split']>('none', 'none', 'none', 'continuation'),
    padded: fc.option(fc.nat({ max: 255 }), { nil: null, freq: 6 }),
    priority: fc.boolean(),
    // DATA after END_STREAM and a zero WINDOW_UPDATE are connection errors to nghttp2.
    then: fc.constantFrom<StreamPlan['then']>('nothing', 'nothing', 'nothing', 'rst'),
  });
  const anyLevel: fc.Arbitrary<StreamPlan> = fc.record({
    id: fc.constantFrom<StreamPlan['id']>('next', 'next', 'next', 'reused', 'even', 'zero'),
    fields: fields(ctx),
    junk: fc.oneof(
      { weight: 6, arbitrary: fc.constant<number[]>([]) },
      { weight: 1, arbitrary: fc.array(fc.nat({ max: 255 }), { minLength: 1, maxLength: 8 }) },
    ),
    endStream: fc.boolean(),
    split: fc.constantFrom<StreamPlan['split']>('none', 'none', 'continuation', 'continuation-missing', 'interleaved'),
    padded: fc.option(fc.nat({ max: 300 }), { nil: null, freq: 4 }),
    priority: fc.boolean(),
    then: fc.constantFrom<StreamPlan['then']>('nothing', 'data', 'rst', 'window-update-0', 'priority-self'),
  });
  const connection = fc.constantFrom<Plan['connection'][number]>(
    'none',
    'bad-settings',
    'ping-short',
    'unknown-frame',
    'window-update-0',
    'goaway',
    'huge-frame',
    'settings-ack-payload',
  );
  return fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({
        streams: fc.array(streamLevel, { minLength: 1, maxLength: 4 }),
        connection: fc.constant<Plan['connection']>([]),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        streams: fc.array(anyLevel, { minLength: 1, maxLength: 4 }),
        connection: fc.array(connection, { maxLength: 2 }),
      }),
    },
  );
}

/** SETTINGS_MAX_FRAME_SIZE's initial value (RFC 9113 §6.5.2): larger frames are a connection error. */
const MAX_FRAME = 16_384;

/** The bytes of one stream's frames; `id` is the stream id chosen for it. */
export function streamBytes(s: StreamPlan, id: number): Buffer {
  const block = Buffer.concat([...s.fields.map(([n, v]) => literal(n, v)), Buffer.from(s.junk)]);
  // Fragments of the header block: HEADERS, then CONTINUATION frames (§6.10), each fitting a frame.
  const first = s.split === 'none' ? MAX_FRAME - 300 : Math.max(1, Math.floor(block.length / 2));
  const fragments: Buffer[] = [block.subarray(0, first)];
  for (let at = first; at < block.length; at += MAX_FRAME) fragments.push(block.subarray(at, at + MAX_FRAME));
  // Padding and priority belong to the HEADERS frame alone (§6.2).
  let head = fragments[0]!;
  let flags = s.endStream ? FLAG.END_STREAM : 0;
  if (s.priority) {
    flags |= PRIORITY_FLAG;
    head = Buffer.concat([Buffer.from([0, 0, 0, 0, 15]), head]);
  }
  if (s.padded !== null) {
    flags |= PADDED;
    // A pad length over what follows is a PROTOCOL_ERROR (§6.2): only the "any" plans send one.
    const pad = Math.min(s.padded, 255);
    head = Buffer.concat([Buffer.from([pad]), head, Buffer.alloc(s.padded > 255 ? 0 : pad)]);
  }
  const out: Buffer[] = [];
  const last = fragments.length - 1;
  out.push(frame(FRAME.HEADERS, flags | (last === 0 ? FLAG.END_HEADERS : 0), id, head));
  fragments.slice(1).forEach((f, i) => {
    if (i === 0 && s.split === 'interleaved') out.push(frame(FRAME.PING, 0, 0, Buffer.alloc(8)));
    if (i + 1 === last && s.split === 'continuation-missing') return;
    out.push(frame(CONTINUATION, i + 1 === last ? FLAG.END_HEADERS : 0, id, f));
  });
  switch (s.then) {
    case 'data':
      out.push(frame(FRAME.DATA, FLAG.END_STREAM, id, Buffer.from('body')));
      break;
    case 'rst':
      out.push(Buffer.from(frame(FRAME.RST_STREAM, 0, id, Buffer.from([0, 0, 0, 8]))));
      break;
    case 'window-update-0':
      out.push(frame(FRAME.WINDOW_UPDATE, 0, id, Buffer.alloc(4)));
      break;
    case 'priority-self': {
      const p = Buffer.alloc(5);
      p.writeUInt32BE(id, 0);
      out.push(frame(PRIORITY, 0, id, p));
      break;
    }
    case 'nothing':
      break;
  }
  return Buffer.concat(out);
}

export function connectionBytes(kind: Plan['connection'][number]): Buffer {
  switch (kind) {
    case 'none':
      return Buffer.alloc(0);
    case 'bad-settings': {
      // ENABLE_PUSH = 2 and INITIAL_WINDOW_SIZE = 2^31 are both errors (§6.5.2).
      const p = Buffer.alloc(12);
      p.writeUInt16BE(0x2, 0);
      p.writeUInt32BE(2, 2);
      p.writeUInt16BE(0x4, 6);
      p.writeUInt32BE(0x80000000, 8);
      return frame(FRAME.SETTINGS, 0, 0, p);
    }
    case 'ping-short':
      return frame(FRAME.PING, 0, 0, Buffer.alloc(4));
    case 'unknown-frame':
      return frame(0xfa, 0xff, 1, Buffer.from('ignored'));
    case 'window-update-0':
      return frame(FRAME.WINDOW_UPDATE, 0, 0, Buffer.alloc(4));
    case 'goaway':
      return frame(FRAME.GOAWAY, 0, 0, Buffer.alloc(8));
    case 'huge-frame':
      return frame(FRAME.DATA, 0, 1, Buffer.alloc(20_000));
    case 'settings-ack-payload':
      return frame(FRAME.SETTINGS, FLAG.ACK, 0, Buffer.alloc(6));
  }
}
