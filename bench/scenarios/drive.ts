// Runs one load driver as its own process and reads its result. The driver bounds itself
// by duration and request count; this bounds it again by wall time, killing it if needed.
// Node drivers (autocannon, undici, raw) get a spec file and write a result file; wrk and
// h2load are run directly, their output parsed here (bench/drivers/wrk.ts, h2load.ts).
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { findBinary, type ExternalRun } from '../drivers/external.js';
import { H2LOAD_BIN, prepareH2load } from '../drivers/h2load.js';
import type { LoadResult, LoadSpec } from '../drivers/protocol.js';
import { prepareWrk, WRK_BIN } from '../drivers/wrk.js';
import { spawnLogged, tail } from './procs.js';

const DRIVERS = new URL('../drivers/', import.meta.url).pathname;
let seq = 0;

async function external(spec: LoadSpec, workDir: string, id: string): Promise<ExternalRun | null> {
  if (spec.driver !== 'wrk' && spec.driver !== 'h2load') return null;
  const name = spec.driver === 'wrk' ? WRK_BIN : H2LOAD_BIN;
  const bin = await findBinary(name);
  if (bin === null) throw new Error(`${name} is not installed (npm run bench:peers:install)`);
  return spec.driver === 'wrk' ? prepareWrk(spec, bin, workDir, id) : prepareH2load(spec, bin, workDir, id);
}

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
  const ext = await external(spec, workDir, id);
  const proc = await spawnLogged({
    name: `driver ${id}`,
    ...(ext !== null
      ? { command: ext.command, args: ext.args }
      : {
          command: process.execPath,
          args: [
            ...(cpuProfDir === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${join(cpuProfDir, 'drivers')}`]),
            join(DRIVERS, `${spec.driver}.js`),
            specPath,
            resultPath,
          ],
        }),
    logFile: join(workDir, `${id}.log`),
  });
  const limitMs = (ext?.durationMs ?? spec.durationMs) + slackMs;
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
  if (ext !== null) {
    const r = await ext.result(proc.logFile);
    await writeFile(resultPath, JSON.stringify(r));
    return r;
  }
  return JSON.parse(await readFile(resultPath, 'utf8')) as LoadResult;
}
