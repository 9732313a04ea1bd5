// Whether a run left processes behind: every server and driver a harness starts names its
// work directory on its command line.
import { readdir, readFile } from 'node:fs/promises';

/** PIDs of processes (other than this one) whose command line names `dir`. */
export async function processesUsing(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    const cmd = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(dir)) pids.push(Number(e));
  }
  return pids;
}
