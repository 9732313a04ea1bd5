// Admin credentials for `dtr-cache register`: from the environment or stdin, never from
// argv, so they stay out of `ps` and shell history.
import type { Credentials } from './origin-api.js';
import { RegisterError } from './errors.js';

/**
 * DTR_USERNAME / DTR_PASSWORD from the environment, and whatever is missing from stdin,
 * one per line (username, then password), e.g.
 * `printf '%s\n%s\n' admin "$PW" | dtr-cache register …`.
 */
export async function readCredentials(env: NodeJS.ProcessEnv, stdin: NodeJS.ReadStream): Promise<Credentials> {
  let username = env['DTR_USERNAME'];
  let password = env['DTR_PASSWORD'];
  if (username === undefined || password === undefined) {
    if (stdin.isTTY) {
      throw new RegisterError(
        'CREDENTIALS',
        'admin credentials are read from DTR_USERNAME/DTR_PASSWORD or from stdin (username and password, one per line), not from a terminal prompt',
      );
    }
    let text = '';
    for await (const chunk of stdin) {
      text += String(chunk);
      if (text.length > 64 << 10) break;
    }
    const lines = text.split(/\r?\n/);
    username ??= lines.shift();
    password ??= lines.shift();
  }
  if (!username || !password) {
    throw new RegisterError(
      'CREDENTIALS',
      'admin credentials missing: set DTR_USERNAME and DTR_PASSWORD, or pipe the username and password, one per line, on stdin',
    );
  }
  return { username, password };
}
