// The soak's clients: N loops pulling random blobs through the edge, most popular first
// by a Zipf law, a share of them as Range requests, each body checked (verify.ts). Half of
// the clients speak HTTP/2 and half HTTP/1.1, as a mix of docker and containerd would.
import { Agent } from 'undici';
import type { Blob } from '../scenarios/corpus.js';
import { prng } from '../scenarios/mixed.js';
import { pull, randomRange, type PullResult } from './verify.js';

export interface Tally {
  requests: number;
  ok: number;
  /** Of the ok answers, how many were 206. */
  partial: number;
  bytes: number;
  errors: Record<string, number>;
  badBodies: number;
}

export function emptyTally(): Tally {
  return { requests: 0, ok: 0, partial: 0, bytes: 0, errors: {}, badBodies: 0 };
}

export function addResult(t: Tally, r: PullResult): void {
  t.requests++;
  t.bytes += r.bytes;
  if (r.kind === 'ok') {
    t.ok++;
    if (r.status === 206) t.partial++;
  } else if (r.kind === 'bad') t.badBodies++;
  else t.errors[r.error] = (t.errors[r.error] ?? 0) + 1;
}

/** A request that took longer than this is a hang, whatever it ended with: 30 s, plus 1 s per MiB. */
export function hangLimitMs(size: number): number {
  return 30_000 + size / 1024;
}

export interface SlowRequest {
  at: number;
  phase: string;
  digest: string;
  size: number;
  ms: number;
  result: string;
}

export interface BadBody {
  at: number;
  phase: string;
  digest: string;
  size: number;
  range: string | null;
  status: number;
  why: string;
}

/** Draws blob indexes by a Zipf law (exponent `s`) over a random popularity order. */
export class ZipfPicker {
  readonly #cdf: number[] = [];
  readonly #byRank: number[];
  readonly #total: number;

  /** `order` shuffles the popularity ranks (the same seed gives every client the same order); `rnd` draws. */
  constructor(
    n: number,
    s: number,
    order: () => number,
    readonly rnd: () => number,
  ) {
    let acc = 0;
    for (let r = 1; r <= n; r++) this.#cdf.push((acc += r ** -s));
    this.#total = acc;
    // Popularity independent of size: a shuffled rank → blob table.
    this.#byRank = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(order() * (i + 1));
      const a = this.#byRank[i] ?? i;
      this.#byRank[i] = this.#byRank[j] ?? j;
      this.#byRank[j] = a;
    }
  }

  next(): number {
    const x = this.rnd() * this.#total;
    let lo = 0;
    let hi = this.#cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.#cdf[mid] ?? 0) < x) lo = mid + 1;
      else hi = mid;
    }
    return this.#byRank[lo] ?? 0;
  }
}

export interface LoadSpec {
  clients: number;
  blobs: Blob[];
  /** `https://localhost:PORT` of the edge. */
  edgeUrl: string;
  caPem: string;
  /** The request path with its redirect token. */
  path(digest: string): Promise<string>;
  /** Share of requests sent with a Range header. */
  rangeShare: number;
  seed: number;
  /** Wall-clock end of the load (ms since the epoch), as known now. */
  endAt(): number;
  /** Per-request limit: a response that takes longer is an error (a hang), not a wait. */
  requestTimeoutMs: number;
  /** Upper bound on requests per client, whatever the time: every load loop is bounded. */
  maxRequestsPerClient: number;
  /** The schedule's phase right now, to tally results by phase. */
  phase(): string;
}

export class Load {
  readonly total = emptyTally();
  readonly byPhase = new Map<string, Tally>();
  readonly bad: BadBody[] = [];
  readonly slow: SlowRequest[] = [];
  readonly #agents: Agent[] = [];
  #stopped = false;

  constructor(readonly spec: LoadSpec) {}

  /** Runs every client until `endAt` (or stop()); resolves when the last one has finished. */
  async run(): Promise<void> {
    await Promise.all(Array.from({ length: this.spec.clients }, (_, i) => this.#client(i)));
  }

  stop(): void {
    this.#stopped = true;
  }

  async #client(i: number): Promise<void> {
    const s = this.spec;
    const rnd = prng(s.seed * 7919 + i);
    const picker = new ZipfPicker(s.blobs.length, 1, prng(s.seed), rnd);
    const h2 = i % 2 === 0;
    const agent = new Agent({
      connect: { ca: s.caPem },
      allowH2: h2,
      connections: 2,
      pipelining: h2 ? 16 : 1,
      headersTimeout: s.requestTimeoutMs,
      bodyTimeout: s.requestTimeoutMs,
    });
    this.#agents.push(agent);
    try {
      for (let n = 0; n < s.maxRequestsPerClient && !this.#stopped && Date.now() < s.endAt(); n++) {
        const blob = s.blobs[picker.next()];
        if (blob === undefined) continue;
        const range = rnd() < s.rangeShare && blob.size > 1 ? randomRange(blob.size, rnd) : null;
        const phase = s.phase();
        const started = Date.now();
        const r = await pull({
          url: `${s.edgeUrl}${await s.path(blob.digest)}`,
          blob,
          range,
          dispatcher: agent,
          timeoutMs: s.requestTimeoutMs,
        });
        this.#record(phase, r);
        const ms = Date.now() - started;
        // Over the limit, or cut short by the per-request timeout: either way it hung.
        const timedOut = r.kind === 'error' && /Abort|Timeout/i.test(r.error);
        if (ms > hangLimitMs(blob.size) || timedOut)
          this.slow.push({
            at: started,
            phase,
            digest: blob.digest,
            size: blob.size,
            ms,
            result: r.kind === 'error' ? r.error : `${r.kind} ${r.status}`,
          });
        if (r.kind === 'bad')
          this.bad.push({
            at: Date.now(),
            phase,
            digest: blob.digest,
            size: blob.size,
            range: range?.header ?? null,
            status: r.status,
            why: r.why,
          });
        // After an error, a short pause: a down edge must not turn a client into a busy loop.
        if (r.kind === 'error') await new Promise((res) => setTimeout(res, 100 + rnd() * 200));
      }
    } finally {
      await agent.destroy().catch(() => undefined);
    }
  }

  #record(phase: string, r: PullResult): void {
    addResult(this.total, r);
    let t = this.byPhase.get(phase);
    if (t === undefined) this.byPhase.set(phase, (t = emptyTally()));
    addResult(t, r);
  }
}
