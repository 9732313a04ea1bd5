// `dtr-cache scrub`: re-hashes every stored blob in the worker pool and removes those
// whose bytes do not match their digest (bit rot, a truncated copy, a hand edit). Safe
// to run beside a live cache: a removed blob is a miss there, fetched again.
import { rm } from 'node:fs/promises';
import type { Config } from '../config/types.js';
import { processBudget } from '../cluster/budget.js';
import { WorkerPool } from '../pool.js';
import { BlobStore } from '../store/blob-store.js';
import { Layout } from '../store/layout.js';

export interface ScrubReport {
  checked: number;
  bad: Array<{ digest: string; problem: string }>;
  removed: number;
}

export async function scrub(
  config: Config,
  opts: { dryRun: boolean; say: (line: string) => void },
): Promise<ScrubReport> {
  const layout = new Layout(config.storage.rootDirectory);
  const store = new BlobStore(layout, { ttlMs: null });
  await store.scan();
  const pool = new WorkerPool({ maxQueue: Number.MAX_SAFE_INTEGER, threads: processBudget(1).threads });
  const report: ScrubReport = { checked: 0, bad: [], removed: 0 };
  try {
    const entries = [...store.entries()];
    // A few at a time: the pool hashes in parallel without queueing the whole store.
    const width = 4;
    for (let i = 0; i < entries.length; i += width) {
      await Promise.all(
        entries.slice(i, i + width).map(async (entry) => {
          const path = layout.blobData(entry.digest);
          const res = await pool.hashFile({ path, algorithm: entry.digest.algorithm, length: null });
          report.checked++;
          const problem = !res.ok
            ? `unreadable: ${res.code}`
            : res.hex !== entry.digest.hex
              ? `content hashes to ${entry.digest.algorithm}:${res.hex}`
              : null;
          if (problem === null) return;
          report.bad.push({ digest: entry.digest.value, problem });
          if (!opts.dryRun) {
            await rm(path, { force: true });
            report.removed++;
          }
          opts.say(`${opts.dryRun ? 'bad' : 'removed'} ${entry.digest.value}: ${problem}`);
        }),
      );
    }
  } finally {
    await pool.close();
  }
  opts.say(`scrub: checked ${report.checked} blobs, ${report.bad.length} bad, ${report.removed} removed`);
  return report;
}
