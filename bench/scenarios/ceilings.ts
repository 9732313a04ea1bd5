// A driver's ceiling: the same driver and load shape against nginx serving the same files
// statically, measured once per run for each shape (BenchEnv.ceiling) and set beside every
// hit scenario's figure. On this 2-core machine the driver shares the CPU with the server it
// measures, so a figure near the ceiling says as much about the driver as about the server.
import { nginxMissing, startNginx } from '../peers/nginx.js';
import type { LoadResult, LoadSpec } from '../drivers/protocol.js';
import { ErrorTally, round, withSubject } from './common.js';
import type { BenchEnv } from './env.js';
import type { Subject } from './subject.js';
import type { Ceiling, Figure } from './types.js';
import { messageOf } from '../../src/errors/inspect.js';

/** Within this share of the ceiling, a figure is flagged as bound by the driver. */
export const DRIVER_BOUND_WITHIN = 0.1;

export interface Measured {
  result: LoadResult | null;
  /** Why there is no ceiling, or what went wrong measuring it; null when all went well. */
  note: string | null;
}

/**
 * The ceiling of `load.driver` for the shape `shape` (memoised per run). `run` drives a
 * started nginx static subject as the scenario drove its own subject.
 */
export async function measureCeiling(
  env: BenchEnv,
  shape: string,
  load: Pick<LoadSpec, 'driver' | 'proto' | 'concurrency'>,
  run: (nginx: Subject, errors: ErrorTally) => Promise<LoadResult>,
): Promise<Measured> {
  const key = `${shape}:${load.driver}:${load.proto}:c${load.concurrency}`;
  const missing = await nginxMissing();
  if (missing !== null) return { result: null, note: `no driver ceiling: ${missing}` };
  let note: string | null = null;
  const result = await env.ceiling(key, async () => {
    const errors = new ErrorTally();
    try {
      const r = await withSubject(
        () => startNginx(env, `ceiling-${shape}-${load.driver}`, 'static'),
        (nginx) => {
          env.phase(`driver ceiling: ${load.driver} against nginx static`);
          return run(nginx, errors);
        },
      );
      if (errors.count > 0) {
        note = `driver ceiling not measured: ${errors.count} errors against nginx (${errors.samples[0] ?? ''})`;
        return null;
      }
      return r;
    } catch (err) {
      note = `driver ceiling not measured: ${messageOf(err).split('\n')[0]}`;
      return null;
    }
  });
  return { result, note: result === null ? (note ?? 'driver ceiling not measured (see an earlier scenario)') : null };
}

/** Our figure against the driver's ceiling for it. */
export function ceilingOf(metric: string, driver: string, ours: Figure, ceiling: Figure): Ceiling {
  const of = ours !== null && ceiling !== null && ceiling > 0 ? round(ours / ceiling, 2) : null;
  return {
    metric,
    driver,
    value: ceiling,
    ofCeiling: of,
    driverBound: of === null ? null : of >= 1 - DRIVER_BOUND_WITHIN,
  };
}
