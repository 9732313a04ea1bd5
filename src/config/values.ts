// Readers for value kinds that several sections share: durations and base URLs.
import { DURATION_EXPECTED, formatDuration, parseGoDuration } from './duration.js';
import type { Field } from './field.js';
import { URL_EXPECTED, normaliseBaseUrl } from './net.js';

/**
 * The longest duration given to a timer: Node.js fires a timer of more than 2^31 - 1 ms at
 * once (TimeoutOverflowWarning), which would end a drain or every upstream wait immediately.
 */
const MAX_TIMER_MS = 596 * 3_600_000;

/**
 * A Go duration in ms, or null when unset. `positive`: zero is refused (a zero timeout or TTL
 * means nothing useful). `timer`: the value is waited for with a timer (at most 596h).
 */
export function readDuration(field: Field, positive: boolean, timer = false): number | null {
  const ms = field.parse(parseGoDuration, DURATION_EXPECTED);
  if (ms !== null && positive && ms <= 0) field.fail('a positive Go duration such as 30s, 24h or 1h30m');
  if (ms !== null && timer && ms > MAX_TIMER_MS)
    field.fail('at most 596h (about 24.8 days: a Node.js timer cannot wait longer)');
  // Go reads a unit-less number as nanoseconds; `timeout: 30` is almost surely not meant as 30ns.
  if (ms !== null && ms > 0 && ms < 1 && /^\+?\d+$/.test(field.rawText())) {
    field.warn(
      `a bare number is nanoseconds (Go duration syntax), so this is ${formatDuration(ms)}; write a unit such as 30s if that is not meant`,
    );
  }
  return ms;
}

/**
 * An absolute http(s) URL with no path, normalised without a trailing slash; null when unset
 * (and, with `emptyIsUnset`, when "", as distribution reads http.host).
 */
export function readBaseUrl(field: Field, emptyIsUnset = false): string | null {
  const text = emptyIsUnset ? field.optionalText(URL_EXPECTED) : field.text(URL_EXPECTED);
  if (text === null) return null;
  return normaliseBaseUrl(text) ?? field.fail(urlExpected(text));
}

/** The URL hint, plus a nudge when the value is still a <placeholder> from the DTR docs. */
function urlExpected(text: string): string {
  return /[<>]/.test(text) ? `${URL_EXPECTED} (replace the <placeholder> from the documentation)` : URL_EXPECTED;
}
