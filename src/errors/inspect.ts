// Reading a caught value that may be anything: `catch (err)` gives `unknown`, and Node,
// undici and libraries throw Errors, errno exceptions, or (rarely) plain values.

/** A one-line description of a caught value, for people (CLI output, status details). */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
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
