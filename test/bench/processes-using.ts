// Which processes are still alive and name a directory on their command line: every
// server and driver a bench run starts names its work directory (configs, scripts, logs).
import { readdir, readFile } from 'node:fs/promises';

export async function processesUsing(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    const cmd = await readFile(`/proc/${e}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(dir)) pids.push(Number(e));
  }
  return pids;
}
