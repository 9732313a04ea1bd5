// The root of the project's error family. Every error thrown on purpose carries a stable
// string `code` that callers branch on (never the message, which is for people and may be
// reworded) and keeps what caused it as `cause`, so a log line shows the whole chain.

export class DtrCacheError<C extends string = string> extends Error {
  readonly code: C;

  constructor(code: C, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    // The subclass's own name (RegistryError, ConfigError …) in stacks and logs.
    this.name = new.target.name;
  }
}

/** True for an error of the family with this code; the one way to branch on an error. */
export function hasCode<C extends string>(err: unknown, code: C): err is DtrCacheError<C> {
  return err instanceof DtrCacheError && err.code === code;
}
