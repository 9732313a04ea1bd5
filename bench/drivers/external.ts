// Load drivers that are binaries of their own (wrk, h2load): where to find them, and what
// the harness needs to run one and read its result.
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { LoadResult } from './protocol.js';

export interface ExternalRun {
  command: string;
  args: string[];
  /** How long the tool will run, as it was told (wrk takes whole seconds only). */
  durationMs: number;
  /** Reads the result once the tool exited 0; `logFile` holds its stdout and stderr. */
  result(logFile: string): Promise<LoadResult>;
}

/** The executable `name` on PATH (and in /usr/sbin, /usr/bin), or null when absent. */
export async function findBinary(name: string): Promise<string | null> {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter).filter(Boolean), '/usr/local/bin', '/usr/bin'];
  for (const d of dirs) {
    const p = join(d, name);
    if (
      await access(p, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return p;
  }
  return null;
}
