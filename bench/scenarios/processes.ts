// `--processes 1,auto`: the `http.processes` settings a run measures each cache scenario
// with, and whether this build's config takes the key at all (it arrived with multi-process
// serving; before it, the config warns "unknown key, ignored" and one process serves).
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CACHE_CLI } from '../../testkit/cache-process.js';
import type { Processes } from './types.js';

/** Parses `1,auto` (each `auto` or a whole number ≥ 1, no repeats); throws with what is wrong. */
export function parseProcesses(list: string): Processes[] {
  const out: Processes[] = [];
  for (const item of list.split(',').map((s) => s.trim())) {
    const p: Processes | null = item === 'auto' ? 'auto' : /^[1-9]\d*$/.test(item) ? Number(item) : null;
    if (p === null) throw new Error(`--processes: ${JSON.stringify(item)} is neither auto nor a whole number >= 1`);
    if (out.includes(p)) throw new Error(`--processes: ${item} given twice`);
    out.push(p);
  }
  return out;
}

/** Whether `dtr-cache check-config` accepts `http.processes: auto` without calling it unknown. */
export async function processesKeySupported(workDir: string): Promise<boolean> {
  const path = join(workDir, 'processes-probe.yml');
  await writeFile(
    path,
    `version: 0.1
storage:
  filesystem:
    rootdirectory: ${join(workDir, 'processes-probe')}
http:
  addr: 127.0.0.1:0
  processes: auto
middleware:
  registry:
    - name: downstream
      options:
        upstreams:
          - https://localhost:1
`,
  );
  const child = spawn(process.execPath, [CACHE_CLI, 'check-config', '--config', path], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  return code === 0 && !/http\.processes[^\n]*unknown key/.test(out);
}
