// How long and from where each property runs. `npm test` gives every property a few
// seconds; `npm run fuzz -- --seconds N [--seed S] [--path P]` (run.ts) sets the same
// variables for longer runs and replays. A failure names its seed and shrink path, so the
// exact counterexample comes back with `--seed S --path P`.
import type { TestContext } from 'node:test';
import fc from 'fast-check';
import { stackOf } from '../../src/errors/inspect.js';

export interface Budget {
  /** fast-check's 32-bit seed. */
  seed: number;
  /** Shrink path of a reported failure: replays that counterexample first. */
  path: string | undefined;
  /** Wall time given to one property (generation and shrinking together). */
  ms: number;
}

function intFromEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  return n;
}

/** FUZZ_SECONDS (default `defaultSeconds`), FUZZ_SEED (default: fresh), FUZZ_PATH; FUZZ_ONLY names the properties to run. */
export function budget(defaultSeconds: number): Budget {
  const seconds = Number(process.env['FUZZ_SECONDS'] ?? defaultSeconds);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new Error('FUZZ_SECONDS must be a positive number');
  return {
    seed: intFromEnv('FUZZ_SEED') ?? (Date.now() ^ (Math.random() * 0x1_0000_0000)) | 0,
    path: process.env['FUZZ_PATH'] || undefined,
    ms: Math.round(seconds * 1000),
  };
}

/**
 * Runs `property` for the budget's time, from its seed. The seed is printed before the run
 * (a hang or a crash of the test process still leaves it in the output) and again in the
 * failure with the command that replays it. Returns how many examples ran.
 */
export async function runProperty<Ts>(
  t: TestContext,
  name: string,
  property: fc.IRawProperty<Ts>,
  b: Budget,
): Promise<number> {
  const only = process.env['FUZZ_ONLY'];
  if (only !== undefined && only !== '' && !only.split(',').includes(name)) {
    t.skip(`FUZZ_ONLY=${only}`);
    return 0;
  }
  t.diagnostic(`fuzz ${name}: seed ${b.seed}${b.path === undefined ? '' : ` path ${b.path}`}, ${b.ms} ms`);
  // interruptAfterTimeLimit stops waiting for an example in flight but does not stop it:
  // that example is awaited here, so no request outlives the property (each has a deadline).
  let inflight: Promise<unknown> = Promise.resolve();
  const tracked: fc.IRawProperty<Ts> = {
    isAsync: () => property.isAsync(),
    generate: (mrng, runId) => property.generate(mrng, runId),
    shrink: (value) => property.shrink(value),
    run: (v) => {
      const result = property.run(v);
      if (result instanceof Promise) inflight = result.catch(() => undefined);
      return result;
    },
    runBeforeEach: () => property.runBeforeEach(),
    runAfterEach: () => property.runAfterEach(),
  };
  const details = await fc.check(tracked, {
    seed: b.seed,
    ...(b.path === undefined ? {} : { path: b.path }),
    numRuns: b.path === undefined ? Number.MAX_SAFE_INTEGER : 1,
    interruptAfterTimeLimit: b.ms,
    markInterruptAsFailure: false,
  });
  await inflight;
  if (details.failed) {
    const replay = `npm run fuzz -- --only ${name} --seed ${details.seed} --path ${details.counterexamplePath ?? ''}`;
    const error = details.errorInstance;
    throw new Error(
      `fuzz ${name} failed (seed ${details.seed}, path ${details.counterexamplePath ?? '?'}; replay: ${replay})\n` +
        `counterexample: ${fc.stringify(details.counterexample)}\n` +
        `error: ${stackOf(error)}`,
      { cause: error },
    );
  }
  t.diagnostic(`fuzz ${name}: ${details.numRuns} examples passed`);
  return details.numRuns;
}
