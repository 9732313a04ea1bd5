// What tests see of spools on disk: the data files writers fill beside a digest's claim
// (`<claim>.<writer>`, src/store/spool.ts), and whatever is left in the spool directory.
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Layout } from '../../src/store/layout.js';
import { parseDigest } from '../../src/store/digest.js';

/** Bytes in the digest's largest data file (0 when there is none yet). */
export async function spoolBytes(root: string, digest: string): Promise<number> {
  const claim = new Layout(root).spool(parseDigest(digest));
  const names = await readdir(dirname(claim)).catch(() => [] as string[]);
  const data = names.filter((n) => n.startsWith(`${basename(claim)}.`) && !/\.(tmp|takeover)$/.test(n));
  const sizes = await Promise.all(
    data.map(async (n) => (await stat(join(dirname(claim), n)).catch(() => null))?.size ?? 0),
  );
  return Math.max(0, ...sizes);
}

/** Every file in the spool directory (claims, data files, temporaries). */
export async function spoolLeftovers(root: string): Promise<string[]> {
  return readdir(new Layout(root).spoolDir).catch(() => [] as string[]);
}
