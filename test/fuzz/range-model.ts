// What a Range header selects, written from RFC 9110 §14 and docs/protocol.md §5, independently of
// src/server/range.ts: the fuzzer's reference. Byte ranges only; a header that does not
// follow the grammar is ignored (§14.2: the server MAY ignore it), as is one with more
// than 32 ranges (§14.2 lets a server ignore a set of many small ranges).
//   Range = ranges-specifier = range-unit "=" range-set      (§14.1, §14.2)
//   range-set = 1#range-spec        (a list: empty elements and OWS around them are allowed, §5.6.1)
//   range-spec = int-range / suffix-range / other-range;  int-range = first-pos "-" [ last-pos ]
export interface Span {
  start: number;
  /** Inclusive. */
  end: number;
}

export type Selection = { kind: 'full' } | { kind: 'ranges'; spans: Span[] } | { kind: 'unsatisfiable' };

const MAX_RANGES = 32;

export function selectRanges(header: string | undefined, size: number): Selection {
  if (header === undefined) return { kind: 'full' };
  // OWS around a field value is not part of the value (RFC 9110 §5.5).
  header = header.replace(/^[ \t]+|[ \t]+$/g, '');
  const eq = header.indexOf('=');
  // range-unit is a token compared case-insensitively (§14.1); no whitespace around "=".
  if (eq < 0 || header.slice(0, eq).toLowerCase() !== 'bytes') return { kind: 'full' };
  const elements = header
    .slice(eq + 1)
    .split(',')
    .map((e) => e.replace(/^[ \t]+|[ \t]+$/g, ''))
    .filter((e) => e !== '');
  if (elements.length === 0 || elements.length > MAX_RANGES) return { kind: 'full' };
  const spans: Span[] = [];
  let unsatisfiable = false;
  for (const element of elements) {
    const m = /^(\d*)-(\d*)$/.exec(element);
    if (m === null || (m[1] === '' && m[2] === '')) return { kind: 'full' };
    const [first, last] = [m[1] ?? '', m[2] ?? ''];
    if (first === '') {
      const n = Number(last);
      // §14.1.1: a suffix range is satisfiable only with a non-zero length. On an empty
      // representation it is satisfiable yet selects nothing, which no Content-Range can
      // say: a set of such ranges only gets the whole (empty) blob; with any range that is
      // unsatisfiable in it, the set is answered 416 (our choice for this corner).
      if (n === 0) unsatisfiable = true;
      else if (size > 0) spans.push({ start: Math.max(0, size - n), end: size - 1 });
      continue;
    }
    const start = Number(first);
    if (last !== '' && Number(last) < start) return { kind: 'full' };
    if (start >= size) {
      unsatisfiable = true;
      continue;
    }
    spans.push({ start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) });
  }
  if (spans.length > 0) return { kind: 'ranges', spans };
  return unsatisfiable ? { kind: 'unsatisfiable' } : { kind: 'full' };
}
