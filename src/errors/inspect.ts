// Reading a caught value that may be anything: `catch (err)` gives `unknown`, and Node,
// undici and libraries throw Errors, errno exceptions, or (rarely) plain values.
import { DtrCacheError } from './base.js';

/** A one-line description of a caught value, for people (CLI output, status details). */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * An OpenSSL error's reason alone, for config messages: `error:0A0000B9:SSL routines::no
 * cipher match` → `no cipher match` (the code and the library say nothing to an operator).
 */
export function opensslReason(err: unknown): string {
  return messageOf(err).replace(/^error:[0-9A-F]+:(?:[^:]*::?)?/, '');
}

/**
 * A caught value's message followed by those of its causes, `a: b: c`, for a fatal error
 * an operator must act on: "fetching JWK Set … failed" says nothing without the
 * "unable to verify the first certificate" or ECONNREFUSED under it. A cause whose message
 * the one above already holds is skipped; an AggregateError (undici's connection attempts
 * to several addresses) shows its errors; a code the message does not mention is added.
 */
export function causeChain(err: unknown): string {
  const parts: string[] = [];
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    const text = describeOne(e);
    if (text !== '' && !parts.some((p) => p.includes(text))) parts.push(text);
    e = e instanceof Error ? e.cause : undefined;
  }
  return parts.join(': ');
}

function describeOne(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  let text = err.message;
  if (err instanceof AggregateError && err.errors.length > 0) {
    const inner = [...new Set(err.errors.map((e) => describeOne(e)))].join('; ');
    text = text === '' ? inner : `${text} (${inner})`;
  }
  // Our own codes (JWKS_LOAD_FAILED …) are for callers to branch on; errno and TLS codes help people.
  const code = err instanceof DtrCacheError ? undefined : (err as { code?: unknown }).code;
  if (typeof code === 'string' && !text.includes(code)) text = text === '' ? code : `${text} (${code})`;
  return text;
}

/**
 * The errno or library code of a caught value (`ENOENT`, `EEXIST`, `UND_ERR_CONNECT_TIMEOUT`),
 * looking through `cause` (undici wraps socket errors), or undefined when there is none.
 */
export function errnoCode(err: unknown): string | undefined {
  for (let e = err, depth = 0; typeof e === 'object' && e !== null && depth < 8; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The stack of a caught Error (message included), or messageOf for anything else: for a crash report. */
export function stackOf(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

const DISK_FULL_CODES: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT']);

/** The errno code of a disk-full failure (no space, or over quota), or null for any other error. */
export function diskFullCode(err: unknown): string | null {
  const code = errnoCode(err) ?? '';
  return DISK_FULL_CODES.has(code) ? code : null;
}
