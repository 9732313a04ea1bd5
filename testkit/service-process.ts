// A server run as its own process (the cache CLI, the DTR mock CLI) that logs JSON
// lines on stdout and names its port in one of them. Shared by the test helpers, the
// demo and benchmarks, so every launcher waits, collects logs and stops the same way.
import { spawn, type ChildProcess } from 'node:child_process';

export interface ServiceProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly port: number;
  /** Every JSON line printed on stdout so far, in order (non-JSON lines are dropped). */
  readonly lines: Array<Record<string, unknown>>;
  /** What the process wrote on stderr so far. */
  stderr(): string;
  /** Sends `signal` (SIGTERM by default) and waits for the exit; resolves the exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
}

export interface ServiceSpec {
  /** For messages: "cache", "dtr-mock". */
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** Recognises the "listening" line and returns where the service listens. */
  ready(line: Record<string, unknown>): { port: number; url: string } | undefined;
  /** How long to wait for the ready line; 20 s by default. */
  readyTimeoutMs?: number;
}

function timeout<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Spawns the service and resolves once it printed its ready line; kills it if it never does. */
export async function startService(spec: ServiceSpec): Promise<ServiceProcess> {
  const child = spawn(spec.command, spec.args, {
    env: { ...process.env, ...(spec.env ?? {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let buf = '';
  const listening = new Promise<{ port: number; url: string }>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      for (const p of parts) {
        let obj: Record<string, unknown>;
        try {
          obj = JSON.parse(p) as Record<string, unknown>;
        } catch {
          continue; // not a log line
        }
        lines.push(obj);
        const at = spec.ready(obj);
        if (at !== undefined) resolve(at);
      }
    });
    child.once('error', reject);
    void exited.then((code) =>
      reject(new Error(`${spec.name} exited with ${code} before listening: ${stderr.trim()}`)),
    );
  });
  const stop = async (signal: NodeJS.Signals = 'SIGTERM', ms = 30_000): Promise<number | null> => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill(signal);
    try {
      return await timeout(ms, `${spec.name} exit after ${signal}`, exited);
    } catch (err) {
      child.kill('SIGKILL');
      throw err;
    }
  };
  try {
    const at = await timeout(spec.readyTimeoutMs ?? 20_000, `${spec.name} listening`, listening);
    return { child, url: at.url, port: at.port, lines, stderr: () => stderr, stop };
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
}
