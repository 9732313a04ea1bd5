// The soak's chain, built from nothing: a test CA, a corpus of blobs in the origin's
// storage, the DTR mock behind its gate, the regional tier, the faulty link, and the edge
// tier on its small disk.
//
//   clients ──TLS──▶ edge ──TLS──▶ link (cut/stall/flip) ──TLS──▶ regional ──TLS──▶ gate ──▶ DTR mock
//                       └──────────────────── origin fallback ─────────────────────▶ gate
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createTestCa, type TestCa } from '../../testkit/pki.js';
import { Corpus, type Blob } from '../scenarios/corpus.js';
import { prng } from '../scenarios/mixed.js';
import { MockOrigin } from '../scenarios/origin.js';
import { SmallDisk } from './disk.js';
import type { Chain } from './faults.js';
import { OriginGate } from './gate.js';
import { FaultLink } from './link.js';
import { Tier } from './tier.js';

export interface SetupSpec {
  workDir: string;
  seed: number;
  blobs: number;
  minSize: number;
  maxSize: number;
  clients: number;
  linkRate: number;
  /** false: no tmpfs even as root (the disk-full fault is skipped). */
  tmpfs: boolean;
  /** The mock's added latency and per-connection bandwidth: a far origin. */
  latencyMs: number;
  bandwidth: number;
}

export interface Setup extends Chain {
  ca: TestCa;
  mock: MockOrigin;
  blobs: Blob[];
  corpusBytes: number;
  /** The edge's `maxsize` in bytes, and its tmpfs's size (0 without one). */
  edgeMaxSize: number;
  tmpfsBytes: number;
}

/** Blob sizes: the smallest and the largest once each, the rest log-uniform between them. */
export function planSizes(n: number, min: number, max: number, seed: number): number[] {
  const rnd = prng(seed);
  const lo = Math.log(min);
  const hi = Math.log(max);
  return Array.from({ length: n }, (_, i) =>
    i === 0 ? max : i === 1 ? min : Math.round(Math.exp(lo + rnd() * (hi - lo))),
  );
}

const MiB = 1 << 20;

export async function buildChain(s: SetupSpec, onStep: (what: string) => void): Promise<Setup> {
  onStep('certificates');
  await mkdir(join(s.workDir, 'pki'), { recursive: true });
  const ca = await createTestCa('dtr-cache soak CA', join(s.workDir, 'pki'));
  const originLeaf = await ca.issue('origin');
  const regionalLeaf = await ca.issue('regional');
  const edgeLeaf = await ca.issue('edge');
  const linkLeaf = await ca.issue('link');

  const sizes = planSizes(s.blobs, s.minSize, s.maxSize, s.seed);
  const corpusBytes = sizes.reduce((a, b) => a + b, 0);
  onStep(`corpus: ${s.blobs} blobs, ${(corpusBytes / MiB).toFixed(0)} MiB`);
  const corpus = new Corpus(join(s.workDir, 'origin'));
  await corpus.init();
  const blobs = await corpus.addMany(sizes, 2);

  onStep('origin');
  const mock = await MockOrigin.start({
    name: 'dtr-mock',
    workDir: s.workDir,
    leaf: originLeaf,
    caPem: ca.cert,
    storageDir: corpus.root,
    latencyMs: s.latencyMs,
    bandwidth: s.bandwidth,
    tokens: true,
  });
  await mock.tokens(blobs.map((b) => b.digest));
  const gate = new OriginGate(Number(new URL(mock.url).port));
  await gate.open();

  // The edge keeps half the corpus, so it evicts and fetches again all along. Its disk holds
  // the whole corpus and a quarter more, plus the fills of half the clients at the largest
  // size: evicted blobs wait in the cache's trash for a while and take space meanwhile.
  const edgeMaxSize = Math.ceil(Math.max(0.5 * corpusBytes, 4 * s.maxSize) / MiB) * MiB;
  const tmpfsBytes = Math.ceil((1.25 * corpusBytes + Math.ceil(s.clients / 2) * s.maxSize) / MiB) * MiB;
  const disk = s.tmpfs
    ? await SmallDisk.mount(join(s.workDir, 'edge-disk'), tmpfsBytes)
    : 'the tmpfs was turned off (--no-tmpfs)';
  const edgeRoot = typeof disk === 'string' ? join(s.workDir, 'edge', 'registry') : join(disk.dir, 'registry');

  onStep('regional tier');
  const regional = new Tier({
    name: 'regional',
    dir: join(s.workDir, 'regional'),
    root: join(s.workDir, 'regional', 'registry'),
    upstreams: [gate.url],
    caPath: ca.certPath,
    leaf: regionalLeaf,
    maxSize: null,
    bodyIdle: '3s',
  });
  await regional.start();
  const link = new FaultLink(linkLeaf, ca.cert, regional.port, prng(s.seed + 1));
  await link.listen();

  onStep('edge tier');
  const edge = new Tier({
    name: 'edge',
    dir: join(s.workDir, 'edge'),
    root: edgeRoot,
    // DTR 2.2 form: the regional (through the link) first, the origin when it fails.
    upstreams: { origin: gate.url, hosts: [link.url] },
    caPath: ca.certPath,
    leaf: edgeLeaf,
    maxSize: `${edgeMaxSize / MiB}MiB`,
    bodyIdle: '3s',
  });
  await edge.start();
  return {
    ca,
    mock,
    blobs,
    corpusBytes,
    edgeMaxSize,
    tmpfsBytes: typeof disk === 'string' ? 0 : tmpfsBytes,
    regional,
    edge,
    link,
    gate,
    disk,
    linkRate: s.linkRate,
  };
}
