// Sizes, counts and durations of every scenario, per mode. `quick` and `smoke` shrink sizes
// and durations; the shape (concurrency, client counts, the number of blobs, the request
// distribution) stays the issue's, so every mode exercises the same paths.
import type { Mode } from './types.js';

const KiB = 1024;
const MiB = 1024 * KiB;

export interface Shape {
  /** Warm-up load before a timed loop, so JIT and connections are settled. */
  warmupMs: number;
  hitSmall: { blobs: number; size: number; concurrency: number; durationMs: number; maxRequests: number };
  hitLarge: { blobs: number; size: number; concurrency: number; durationMs: number; maxRequests: number };
  coldStampede: { clients: number; size: number };
  /**
   * `cold-single-fast` and `chain-cold-fast`: one client, one cold blob of each size in turn,
   * each size `reps` times (medians reported), from the origin at full speed.
   */
  coldFast: { sizes: number[]; reps: number };
  /** `cold-stampede-fast`: clients on one cold blob, from the origin at full speed. */
  stampedeFast: { clients: number; size: number };
  /** A cold pull of an image: its layer sizes, fetched three at a time (docker's default). */
  chainCold: { layers: number[]; concurrency: number };
  /** `mirror-cold`, `mirror-warm`: clients pulling one image (these layers) through a mirror at once. */
  mirror: { clients: number; layers: number[] };
  mixed: {
    blobs: number;
    minSize: number;
    maxSize: number;
    zipfS: number;
    hitShare: number;
    concurrency: number;
    requests: number;
    durationMs: number;
  };
}

const FULL: Shape = {
  warmupMs: 1500,
  hitSmall: { blobs: 64, size: 4 * KiB, concurrency: 64, durationMs: 10_000, maxRequests: 2_000_000 },
  hitLarge: { blobs: 4, size: 64 * MiB, concurrency: 8, durationMs: 10_000, maxRequests: 4_000 },
  coldStampede: { clients: 32, size: 256 * MiB },
  coldFast: { sizes: [4 * KiB, 1 * MiB, 64 * MiB, 512 * MiB], reps: 3 },
  stampedeFast: { clients: 32, size: 512 * MiB },
  chainCold: { layers: [64 * MiB, 32 * MiB, 16 * MiB, 8 * MiB, 4 * MiB, 4 * KiB], concurrency: 3 },
  mirror: { clients: 16, layers: [32 * MiB, 16 * MiB, 8 * MiB, 4 * MiB, 1 * MiB, 64 * KiB] },
  mixed: {
    blobs: 1000,
    minSize: 1 * KiB,
    maxSize: 4 * MiB,
    zipfS: 1,
    hitShare: 0.8,
    concurrency: 32,
    requests: 2_000,
    durationMs: 30_000,
  },
};

const QUICK: Shape = {
  warmupMs: 200,
  hitSmall: { blobs: 64, size: 4 * KiB, concurrency: 64, durationMs: 1_500, maxRequests: 400_000 },
  hitLarge: { blobs: 4, size: 8 * MiB, concurrency: 8, durationMs: 1_500, maxRequests: 2_000 },
  coldStampede: { clients: 32, size: 24 * MiB },
  coldFast: { sizes: [4 * KiB, 1 * MiB, 64 * MiB, 128 * MiB], reps: 3 },
  stampedeFast: { clients: 32, size: 128 * MiB },
  chainCold: { layers: [8 * MiB, 4 * MiB, 2 * MiB, 1 * MiB, 512 * KiB, 4 * KiB], concurrency: 3 },
  mirror: { clients: 16, layers: [4 * MiB, 2 * MiB, 1 * MiB, 512 * KiB, 64 * KiB] },
  mixed: {
    blobs: 1000,
    minSize: 1 * KiB,
    maxSize: 256 * KiB,
    zipfS: 1,
    hitShare: 0.8,
    concurrency: 32,
    requests: 2_000,
    durationMs: 10_000,
  },
};

const SMOKE: Shape = {
  warmupMs: 0,
  // 2 s: wrk takes whole seconds, and 64 TLS handshakes on a loaded machine took most of one.
  hitSmall: { blobs: 64, size: 4 * KiB, concurrency: 64, durationMs: 2_000, maxRequests: 200_000 },
  hitLarge: { blobs: 4, size: 1 * MiB, concurrency: 8, durationMs: 2_000, maxRequests: 2_000 },
  coldStampede: { clients: 32, size: 2 * MiB },
  coldFast: { sizes: [4 * KiB, 256 * KiB, 1 * MiB, 2 * MiB], reps: 1 },
  stampedeFast: { clients: 32, size: 2 * MiB },
  chainCold: { layers: [1 * MiB, 512 * KiB, 256 * KiB, 128 * KiB, 64 * KiB, 4 * KiB], concurrency: 3 },
  mirror: { clients: 16, layers: [512 * KiB, 256 * KiB, 64 * KiB, 4 * KiB] },
  mixed: {
    blobs: 1000,
    minSize: 512,
    maxSize: 16 * KiB,
    zipfS: 1,
    hitShare: 0.8,
    concurrency: 32,
    requests: 2_000,
    // A bound, not a figure: the loop ends when its 2,000 requests are done (~2 s quiet, more under load).
    durationMs: 20_000,
  },
};

export function shapeFor(mode: Mode): Shape {
  return mode === 'full' ? FULL : mode === 'quick' ? QUICK : SMOKE;
}

export const SIZE = { KiB, MiB };

/** `4KiB`, `1MiB`, `512MiB`: the suffix of the per-size figures of the `*-fast` scenarios. */
export function sizeLabel(bytes: number): string {
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB}MiB`;
  if (bytes >= KiB && bytes % KiB === 0) return `${bytes / KiB}KiB`;
  return `${bytes}B`;
}
