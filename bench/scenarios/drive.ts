// Runs one load driver as its own process and reads its result. The driver bounds itself
// by duration and request count; this bounds it again by wall time, killing it if needed.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LoadResult, LoadSpec } from '../drivers/protocol.js';
import { spawnLogged, tail } from './procs.js';

const DRIVERS = new URL('../drivers/', import.meta.url).pathname;
let seq = 0;

/**
 * Runs `spec` and resolves its result. `slackMs` is how long past `durationMs` the driver
 * may take (requests in flight finish, cold transfers run at WAN speed) before it is killed.
 */
export async function runLoad(
  workDir: string,
  spec: LoadSpec,
  slackMs: number,
  cpuProfDir: string | null = null,
): Promise<LoadResult> {
  const id = `${String(++seq).padStart(3, '0')}-${spec.driver}-${spec.proto}`;
  const specPath = join(workDir, `${id}.spec.json`);
  const resultPath = join(workDir, `${id}.result.json`);
  await writeFile(specPath, JSON.stringify(spec));
  const proc = await spawnLogged({
    name: `driver ${id}`,
    command: process.execPath,
    args: [
      ...(cpuProfDir === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${join(cpuProfDir, 'drivers')}`]),
      join(DRIVERS, `${spec.driver}.js`),
      specPath,
      resultPath,
    ],
    logFile: join(workDir, `${id}.log`),
  });
  const limitMs = spec.durationMs + slackMs;
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    proc.child.kill('SIGKILL');
  }, limitMs);
  const code = await proc.exited;
  clearTimeout(timer);
  await proc.stop();
  if (killed) throw new Error(`load driver ${id} ran past ${limitMs} ms and was killed`);
  if (code !== 0) throw new Error(`load driver ${id} exited with ${String(code)}:\n${await tail(proc.logFile)}`);
  return JSON.parse(await readFile(resultPath, 'utf8')) as LoadResult;
}
