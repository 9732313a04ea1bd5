// Temporary directories that a test process makes without a test to own them (a CA, a
// cache's config and root shared by several spawns): each is removed when the process exits,
// so a run leaves no keys and no blob stores behind in the temporary directory.
import { rmSync } from 'node:fs';

const made = new Set<string>();

/** Removes `dir` (recursively) when this process exits; returns it. */
export function removeAtExit(dir: string): string {
  if (made.size === 0) {
    process.once('exit', () => {
      // Synchronous: nothing asynchronous runs in an exit handler.
      for (const d of made) rmSync(d, { recursive: true, force: true, maxRetries: 2 });
    });
  }
  made.add(dir);
  return dir;
}
