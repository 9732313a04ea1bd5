// A containerd daemon of the test's own (CLIENTS.md: root, state and socket under a temp
// directory), and `ctr` against it. Stopped and removed by the test's teardown.
import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { runTool, type ToolResult } from '../../testkit/tools.js';
import { waitFor } from './deadline.js';

export interface Containerd {
  socket: string;
  /** `ctr -a <socket> -n test <args>`. */
  ctr(args: string[], timeoutMs?: number): Promise<ToolResult>;
  /** Writes `<hostsDir>/<registry>/hosts.toml` naming `mirror` as a pull/resolve host in front of `server`. */
  mirrorFor(registry: string, server: string, mirror: string, caPath: string): Promise<string>;
}

export async function startContainerd(t: TestContext, dir: string): Promise<Containerd> {
  await mkdir(dir, { recursive: true });
  const socket = join(dir, 'containerd.sock');
  const config = join(dir, 'config.toml');
  // Only what ctr pull needs: no CRI, and a state kept apart from any system containerd.
  await writeFile(
    config,
    [
      'version = 2',
      `root = "${join(dir, 'root')}"`,
      `state = "${join(dir, 'state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${socket}"`,
      '[ttrpc]',
      `  address = "${join(dir, 'ttrpc.sock')}"`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('containerd', ['--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (b: Buffer) => {
    if (log.length < 200_000) log += b.toString();
  });
  t.after(async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  });
  await waitFor(30_000, `containerd's socket (log: ${log.slice(-500)})`, async () =>
    access(socket).then(
      () => true,
      () => (child.exitCode !== null ? Promise.reject(new Error(`containerd exited: ${log.slice(-2000)}`)) : false),
    ),
  );
  const hostsDir = join(dir, 'hosts');
  return {
    socket,
    ctr: (args, timeoutMs = 120_000) => runTool('ctr', ['-a', socket, '-n', 'test', ...args], timeoutMs),
    async mirrorFor(registry, server, mirror, caPath) {
      await mkdir(join(hostsDir, registry), { recursive: true });
      await writeFile(
        join(hostsDir, registry, 'hosts.toml'),
        [
          `server = "${server}"`,
          '',
          `[host."${mirror}"]`,
          '  capabilities = ["pull", "resolve"]',
          `  ca = "${caPath}"`,
          '',
        ].join('\n'),
      );
      return hostsDir;
    },
  };
}
