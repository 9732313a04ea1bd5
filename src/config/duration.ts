// Go durations (time.ParseDuration), as Docker Registry and DTR read them, in milliseconds.
// A bare integer means nanoseconds: DTR's blobttl reference says "If you omit the suffix, the
// system interprets the value as nanoseconds". That is why we do not use the `ms` package,
// which reads a bare number as milliseconds and returns NaN on garbage.
import { ValueSyntaxError } from './errors.js';

export const DURATION_EXPECTED = 'a Go duration such as 24h, 90m or 1h30m';

const NS_PER_UNIT: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n, // U+00B5 MICRO SIGN, as Go accepts
  μs: 1_000n, // U+03BC GREEK SMALL LETTER MU, as Go accepts
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

// One `<number><unit>` component. `ms` is listed before `m`, and the `µs`/`μs` forms before `s`,
// so the longest unit wins.
const COMPONENT = /(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/y;
const BARE_NS = /^\+?\d+$/;
// Go's Duration is an int64 of nanoseconds; larger values are an overflow there too.
const MAX_NS = 9_223_372_036_854_775_807n;

/**
 * Parses a Go duration (`24h`, `1h30m`, `1.5h`, `500ms`, `10us`, `10µs`, `7ns`, `0`) or a bare
 * integer of nanoseconds (a YAML number, or a numeric string) into milliseconds (possibly
 * fractional: `7ns` → 0.000007). Negative durations are rejected: nothing in our config means
 * a negative time. Throws ValueSyntaxError, never returns NaN.
 */
export function parseGoDuration(value: string | number): number {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0) {
      throw new ValueSyntaxError(
        'DURATION_INVALID',
        String(value),
        `${DURATION_EXPECTED} (a bare number is a whole count of nanoseconds)`,
      );
    }
    return checked(BigInt(value), String(value)) / 1e6;
  }
  if (typeof value !== 'string') throw new ValueSyntaxError('DURATION_INVALID', String(value), DURATION_EXPECTED);
  if (BARE_NS.test(value)) return checked(BigInt(value.replace('+', '')), value) / 1e6;
  if (value.startsWith('-')) {
    throw new ValueSyntaxError('DURATION_INVALID', value, `a non-negative duration, ${DURATION_EXPECTED}`);
  }

  const body = value.startsWith('+') ? value.slice(1) : value;
  if (body === '') throw new ValueSyntaxError('DURATION_INVALID', value, DURATION_EXPECTED);
  let totalNs = 0n;
  COMPONENT.lastIndex = 0;
  while (COMPONENT.lastIndex < body.length) {
    const start = COMPONENT.lastIndex;
    const m = COMPONENT.exec(body);
    if (m === null || m.index !== start) throw new ValueSyntaxError('DURATION_INVALID', value, DURATION_EXPECTED);
    const intDigits = m[1] ?? '';
    const fracDigits = m[2] ?? '';
    const unit = NS_PER_UNIT[m[3] ?? ''];
    // Go requires a digit on at least one side of the point: ".5h" and "5.h" parse, ".h" does not.
    if ((intDigits === '' && fracDigits === '') || unit === undefined) {
      throw new ValueSyntaxError('DURATION_INVALID', value, DURATION_EXPECTED);
    }
    totalNs += BigInt(intDigits === '' ? '0' : intDigits) * unit;
    if (fracDigits !== '') {
      // Fixed point like Go: the fraction is truncated to whole nanoseconds.
      totalNs += (BigInt(fracDigits) * unit) / 10n ** BigInt(fracDigits.length);
    }
  }
  return checked(totalNs, value) / 1e6;
}

function checked(ns: bigint, input: string): number {
  if (ns > MAX_NS)
    throw new ValueSyntaxError('DURATION_INVALID', input, `${DURATION_EXPECTED}, at most about 292 years`);
  return Number(ns);
}

/**
 * Milliseconds → a compact Go-style duration for messages (`24h`, `1h30m`, `1.5s`, `500ms`,
 * `10µs`, `7ns`). parseGoDuration(formatDuration(x)) === x for whole nanoseconds.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 0) return `-${formatDuration(-ms)}`;
  const ns = Math.round(ms * 1e6);
  if (ns === 0) return '0s';
  if (ns < 1_000) return `${ns}ns`;
  if (ns < 1_000_000) return `${ns / 1_000}µs`;
  if (ns < 1_000_000_000) return `${ns / 1_000_000}ms`;
  const hours = Math.floor(ns / 3_600_000_000_000);
  const minutes = Math.floor((ns % 3_600_000_000_000) / 60_000_000_000);
  const seconds = (ns % 60_000_000_000) / 1_000_000_000;
  return `${hours > 0 ? `${hours}h` : ''}${minutes > 0 ? `${minutes}m` : ''}${seconds > 0 ? `${seconds}s` : ''}`;
}
