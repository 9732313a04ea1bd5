// What every scenario shares in one run: the work directory, the test PKI, the blob
// corpus, the two mock origins (tokens on for the cache; tokens off for the peers, which
// have no notion of redirect tokens) and the run's settings.
import { join } from 'node:path';
import type { Leaf, TestCa } from '../../testkit/pki.js';
import type { Blob, Corpus } from './corpus.js';
import { MockOrigin } from './origin.js';
import type { Shape } from './shape.js';
import type { Mode } from './types.js';

export interface Settings {
  mode: Mode;
  latencyMs: number;
  bandwidth: number;
  /** Where the cache processes write `--cpu-prof` profiles; null: no profiling. */
  cpuProfDir: string | null;
}

export class BenchEnv {
  #openMock: Promise<MockOrigin> | null = null;
  readonly #sets = new Map<string, Promise<Blob[]>>();
  /** Reports what the current scenario is doing, for the progress line. */
  phase: (what: string) => void = () => {};

  constructor(
    readonly settings: Settings,
    readonly shape: Shape,
    readonly workDir: string,
    readonly ca: TestCa,
    readonly leaf: Leaf,
    readonly corpus: Corpus,
    /** Tokens on: what the cache fetches from, and what mints every redirect token. */
    readonly mock: MockOrigin,
  ) {}

  /** Per-scenario scratch directory. */
  dir(name: string): string {
    return join(this.workDir, name);
  }

  /**
   * A named set of blobs, written on first use and shared by every subject: each subject
   * starts with empty storage, so a blob is cold for each of them the first time.
   */
  blobs(key: string, sizes: number[]): Promise<Blob[]> {
    let set = this.#sets.get(key);
    if (set === undefined) {
      set = this.corpus.addMany(sizes);
      this.#sets.set(key, set);
    }
    return set;
  }

  /** The mock with tokens off, over the same storage, started on first use. */
  openMock(): Promise<MockOrigin> {
    this.#openMock ??= MockOrigin.start({
      name: 'dtr-mock-open',
      workDir: this.workDir,
      leaf: this.leaf,
      caPem: this.ca.cert,
      storageDir: this.corpus.root,
      latencyMs: this.settings.latencyMs,
      bandwidth: this.settings.bandwidth,
      tokens: false,
    });
    return this.#openMock;
  }

  async close(): Promise<void> {
    const open = this.#openMock;
    this.#openMock = null;
    if (open !== null) await (await open.catch(() => null))?.close();
    await this.mock.close();
  }
}
