// `chain-far-link`: two tiers far apart. The regional tier already holds the blobs; the edge
// reaches it over a link like the far origin's (`--latency-ms` each way, `--bandwidth` per
// connection; bench/lib/delay-link.ts). A cold pull at the edge is set beside the same pull
// straight from the regional over the same link: what the edge adds to a long link, its
// upstream connections and their flow control included (bench/NOTES.md, "Upstream fills
// over HTTP/2").
import { join } from 'node:path';
import { imagePull } from './cold.js';
import { ErrorTally, load, round, withSubject, type Outcome } from './common.js';
import type { BenchEnv } from './env.js';
import { findLogLine, spawnLogged, waitReady } from './procs.js';
import { startCacheSubject, type Subject } from './subject.js';
import type { Processes } from './types.js';

const LINK_MAIN = new URL('../lib/delay-link.js', import.meta.url).pathname;

/** The delayed link to `to` (a subject on https://localhost:PORT), as its own process. */
async function startLink(env: BenchEnv, name: string, to: Subject): Promise<{ url: string; stop(): Promise<void> }> {
  const target = new URL(to.origin).port;
  const proc = await spawnLogged({
    name,
    command: process.execPath,
    args: [
      LINK_MAIN,
      '--target',
      target,
      '--delay-ms',
      String(env.settings.latencyMs),
      '--bandwidth',
      String(env.settings.bandwidth),
    ],
    logFile: join(env.workDir, `${name}.log`),
  });
  const port = await waitReady(proc, 10_000, () =>
    findLogLine(proc.logFile, (l) => (l['event'] === 'listening' ? Number(l['port']) : undefined)),
  );
  return { url: `https://localhost:${port}`, stop: () => proc.stop() };
}

export async function chainFarLink(env: BenchEnv, processes: Processes): Promise<Outcome> {
  const s = env.shape.chainCold;
  const blobs = await env.blobs('chain-link', s.layers);
  const total = s.layers.reduce((a, b) => a + b, 0);
  const fast = await env.fastMock();
  const errors = new ErrorTally();
  const pull = imagePull(env);
  const cache = (label: string, upstream: string) =>
    startCacheSubject(env, label, [upstream], { origin: fast, processes });
  return withSubject(
    () => cache('chain-link-regional', fast.url),
    async (regional) => {
      env.phase('the regional tier fetches the blobs from a fast origin');
      errors.add(await load(env, regional, blobs, pull));
      // A log of its own for each run: the ready line is looked up in it.
      const link = await startLink(env, `chain-link.processes-${processes}`, regional);
      try {
        env.phase('pull from the regional over the long link');
        const direct = errors.add(await load(env, { ...regional, origin: link.url }, blobs, pull));
        const chained = await withSubject(
          () => cache('chain-link-edge', link.url),
          async (edge) => {
            env.phase('cold pull through the edge, which reaches the regional over the long link');
            return errors.add(await load(env, edge, blobs, pull));
          },
        );
        return {
          params: {
            layers: s.layers.length,
            totalBytes: total,
            concurrency: s.concurrency,
            linkDelayMs: env.settings.latencyMs,
            linkBandwidth: env.settings.bandwidth,
            proto: 'h1',
            driver: 'undici',
            tiers: 2,
          },
          figures: {
            chainMs: round(chained.elapsedMs, 0),
            overLinkMs: round(direct.elapsedMs, 0),
            chainOverLink: round(chained.elapsedMs / direct.elapsedMs, 2),
            chainMiBPerSec: round(total / 2 ** 20 / (chained.elapsedMs / 1000), 1),
          },
          errors: errors.count,
          errorSamples: errors.samples,
        };
      } finally {
        await link.stop();
      }
    },
  );
}
