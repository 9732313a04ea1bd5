// External registry clients (skopeo, podman): whether one is installed, running it with
// a time limit, and the certificate directory they read a private CA from.
import { execFile } from 'node:child_process';
import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface ToolResult {
  code: number;
  out: string;
  ms: number;
}

/** Runs `cmd args` (with `env` added to this process's environment); never throws: a missing tool or a timeout is a non-zero code. */
export function runTool(
  cmd: string,
  args: string[],
  timeoutMs = 120_000,
  env: Record<string, string> = {},
): Promise<ToolResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, env: { ...process.env, ...env } },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 127;
        const note = err !== null && err.killed ? `\n(killed after ${timeoutMs} ms)` : '';
        resolve({ code, out: `${stdout}${stderr}${note}`, ms: performance.now() - started });
      },
    );
  });
}

export async function hasTool(cmd: string): Promise<boolean> {
  return (await runTool(cmd, ['--version'], 10_000)).code === 0;
}

/**
 * A directory holding the CA as `ca.crt`: what `--src-cert-dir`, `--dest-cert-dir`
 * (skopeo) and `--cert-dir` (podman) read a registry's private CA from.
 */
export async function caCertDir(caCertPath: string, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await copyFile(caCertPath, join(dir, 'ca.crt'));
  return dir;
}

/**
 * podman as the tests run it as root (CLIENTS.md): the vfs driver, and each store (`a`, `b`
 * …) under `dir` with its own --root, --runroot and --tmpdir.
 */
export function podmanIn(
  dir: string,
  env: Record<string, string> = {},
): (store: string, ...args: string[]) => Promise<ToolResult> {
  return (store, ...args) =>
    runTool(
      'podman',
      [
        '--storage-driver',
        'vfs',
        '--root',
        join(dir, store, 'root'),
        '--runroot',
        join(dir, store, 'run'),
        '--tmpdir',
        join(dir, store, 'tmp'),
        ...args,
      ],
      120_000,
      env,
    );
}
