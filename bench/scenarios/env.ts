// What every scenario shares in one run: the work directory, the test PKI, the blob
// corpus, the mock origins (tokens on for the cache; tokens off for the peers, which have
// no notion of redirect tokens; far, and fast: latency 0 and no cap), the drivers' ceilings
// measured so far, and the run's settings.
import { join } from 'node:path';
import type { Leaf, TestCa } from '../../testkit/pki.js';
import type { LoadResult } from '../drivers/protocol.js';
import type { Blob, Corpus } from './corpus.js';
import type { Drivers } from './drivers.js';
import { MockOrigin } from './origin.js';
import type { Shape } from './shape.js';
import type { Mode, Processes } from './types.js';

export interface Settings {
  mode: Mode;
  latencyMs: number;
  bandwidth: number;
  /** Where the cache processes write `--cpu-prof` profiles; null: no profiling. */
  cpuProfDir: string | null;
  /** The load driver of each kind of load, chosen once per run. */
  drivers: Drivers;
  /** `http.processes` settings to measure each cache scenario with, in order. */
  processes: Processes[];
  /** Whether this build's config takes `http.processes`; when not, the bench runs (and records) 1. */
  processesKey: boolean;
  /** Every subject logs each request (as deployed), or none does (`--access-log off`). */
  accessLog: boolean;
}

export class BenchEnv {
  #openMock: Promise<MockOrigin> | null = null;
  #fastMock: Promise<MockOrigin> | null = null;
  #fastOpenMock: Promise<MockOrigin> | null = null;
  readonly #sets = new Map<string, Promise<Blob[]>>();
  readonly #ceilings = new Map<string, Promise<LoadResult | null>>();
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

  #startMock(name: string, tokens: boolean, far: boolean): Promise<MockOrigin> {
    return MockOrigin.start({
      name,
      workDir: this.workDir,
      leaf: this.leaf,
      caPem: this.ca.cert,
      storageDir: this.corpus.root,
      latencyMs: far ? this.settings.latencyMs : 0,
      bandwidth: far ? this.settings.bandwidth : 0,
      tokens,
      // The fast scenarios time misses of a subject whose upstream connection is open; the
      // waits between their fetches can outlast the mock's 5 s default and close it.
      ...(far ? {} : { keepAliveMs: 300_000 }),
    });
  }

  /** The far mock with tokens off, over the same storage, started on first use. */
  openMock(): Promise<MockOrigin> {
    this.#openMock ??= this.#startMock('dtr-mock-open', false, true);
    return this.#openMock;
  }

  /** The mock on loopback at full speed (no added latency, no cap), tokens on: the `*-fast` scenarios. */
  fastMock(): Promise<MockOrigin> {
    this.#fastMock ??= this.#startMock('dtr-mock-fast', true, false);
    return this.#fastMock;
  }

  /** The fast mock with tokens off, for the peers of the `*-fast` scenarios. */
  fastOpenMock(): Promise<MockOrigin> {
    this.#fastOpenMock ??= this.#startMock('dtr-mock-fast-open', false, false);
    return this.#fastOpenMock;
  }

  /**
   * A driver's ceiling for one load shape (the same driver against nginx static), measured
   * once per run and shared by every scenario that asks with the same key; null when nginx
   * is not installed.
   */
  ceiling(key: string, measure: () => Promise<LoadResult | null>): Promise<LoadResult | null> {
    let c = this.#ceilings.get(key);
    if (c === undefined) {
      c = measure();
      this.#ceilings.set(key, c);
    }
    return c;
  }

  async close(): Promise<void> {
    const mocks = [this.#openMock, this.#fastMock, this.#fastOpenMock];
    this.#openMock = this.#fastMock = this.#fastOpenMock = null;
    for (const m of mocks) if (m !== null) await (await m.catch(() => null))?.close();
    await this.mock.close();
  }
}
