// Range header values (RFC 9110 §14.2) for a blob of `size` bytes: the valid forms at every
// boundary of the size, and each way to break them (unit, separator, whitespace inside a
// range, reversed and non-decimal positions, empty elements, too many ranges, garbage).
import fc from 'fast-check';

const ows = fc.constantFrom('', '', '', ' ', '\t', '  ');

function position(size: number): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom(0, 1, size - 1, size, size + 1).map((n) => String(Math.max(0, n))),
    fc.nat({ max: size + 10 }).map(String),
    fc.constantFrom('9007199254740993', '99999999999999999999999', '0000', '007'),
  );
}

function element(size: number): fc.Arbitrary<string> {
  const pos = position(size);
  return fc.oneof(
    { weight: 6, arbitrary: fc.tuple(pos, pos).map(([a, b]) => `${a}-${b}`) },
    { weight: 3, arbitrary: pos.map((a) => `${a}-`) },
    { weight: 3, arbitrary: pos.map((n) => `-${n}`) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        '-',
        '--1',
        '1-2-3',
        '+1-2',
        '0x1-2',
        '1.5-2',
        '1e3-',
        '\u0661-\u0662',
        'a-b',
        '1 -2',
        '1- 2',
        '-\t5',
        '=0-1',
      ),
    },
  );
}

/** A Range header value; mostly near-valid, sometimes anything at all. */
export function rangeHeader(size: number): fc.Arbitrary<string> {
  const unit = fc.constantFrom('bytes', 'bytes', 'bytes', 'BYTES', 'Bytes', 'byte', 'items', '', 'bytes ', ' bytes');
  const sep = fc.constantFrom('=', '=', '=', '= ', ' =', ':', '');
  const list = fc
    .array(fc.oneof({ weight: 8, arbitrary: element(size) }, { weight: 1, arbitrary: fc.constant('') }), {
      minLength: 0,
      maxLength: 40,
      size: 'small',
    })
    .chain((els) => fc.tuple(...els.map((e) => fc.tuple(ows, ows).map(([a, b]) => `${a}${e}${b}`))))
    .map((els) => els.join(','));
  return fc.oneof(
    { weight: 10, arbitrary: fc.tuple(unit, sep, list).map(([u, s, l]) => `${u}${s}${l}`) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 64 }) },
  );
}
