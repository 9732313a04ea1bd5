// The piscina pool that runs workers/blob-tasks.ts. A spool task lives as long as its
// fill and mostly awaits messages, so each worker runs many at once
// (concurrentTasksPerWorker); the queue is bounded and a full queue is a 429.
import { Piscina } from 'piscina';
import { RegistryError } from './errors/registry.js';
import type { HashFileResult, HashFileTask, SpoolResult, SpoolTask } from '../workers/types.js';

const WORKER_FILE = new URL('../workers/blob-tasks.js', import.meta.url).href;

export interface PoolOptions {
  maxQueue: number;
  /** Threads (src/cluster/budget.ts: about cores / processes). */
  threads: number;
}

export class WorkerPool {
  readonly #pool: Piscina;
  readonly #maxQueue: number;

  constructor(opts: PoolOptions) {
    const threads = opts.threads;
    this.#maxQueue = opts.maxQueue;
    this.#pool = new Piscina({
      filename: WORKER_FILE,
      minThreads: threads,
      maxThreads: threads,
      // A spool task lasts as long as its fill and mostly awaits messages and disk writes:
      // many run at once on one thread, or concurrent cold blobs would queue behind each other.
      concurrentTasksPerWorker: 64,
      maxQueue: opts.maxQueue,
      idleTimeout: 60_000,
    });
  }

  /** Tasks waiting for a worker; exported as a metric. */
  get queueSize(): number {
    return this.#pool.queueSize;
  }

  spool(task: SpoolTask): Promise<SpoolResult> {
    this.#admit();
    // piscina infers its TransferList type from MessagePort.postMessage's last overload,
    // which @types/node 26 made the options form; the port array is what it accepts at run time.
    const transferList = [task.port] as unknown as NonNullable<Parameters<Piscina['run']>[1]>['transferList'];
    return this.#pool.run(task, { name: 'spool', transferList });
  }

  hashFile(task: HashFileTask): Promise<HashFileResult> {
    this.#admit();
    return this.#pool.run(task, { name: 'hashFile' });
  }

  /**
   * Stops the threads at once. Tasks still running belong to fills the stop abandons; a
   * spool cut short is never published, and the next start removes it, as after a crash.
   */
  async close(): Promise<void> {
    await this.#pool.destroy();
  }

  /** Refuse before piscina does, so the client gets a registry 429 with Retry-After. */
  #admit(): void {
    if (this.#pool.queueSize >= this.#maxQueue) {
      throw new RegistryError('TOOMANYREQUESTS', { message: 'worker queue full', headers: { 'Retry-After': '1' } });
    }
  }
}
