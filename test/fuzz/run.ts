// `npm run fuzz -- --seconds N [--seed S] [--path P] [--only a,b] [--verbose]`: the fuzz
// tests of `npm test`, each property run for N seconds instead of a few. A failure prints
// its seed and shrink path; `--seed S --path P --only NAME` replays that counterexample;
// --verbose prints each front-door request before it is sent (to see what a hang was on).
// Properties: range, paths, headers, tokens, h2-frames, config, check-config.
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { messageOf } from '../../src/errors/inspect.js';

const USAGE =
  'usage: npm run fuzz -- [--seconds N] [--seed S] [--path P] [--verbose]\n' +
  '         [--only range,paths,headers,tokens,h2-frames,config,check-config]\n';

function main(): void {
  let values: { seconds?: string; seed?: string; path?: string; only?: string; verbose?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        seconds: { type: 'string', default: '60' },
        seed: { type: 'string' },
        path: { type: 'string' },
        only: { type: 'string' },
        verbose: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    process.stderr.write(`${messageOf(err)}\n${USAGE}`);
    process.exit(2);
  }
  if (values.help === true) {
    process.stdout.write(USAGE);
    return;
  }
  const seconds = Number(values.seconds);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    process.stderr.write(`--seconds must be a positive number\n${USAGE}`);
    process.exit(2);
  }
  if (values.seed !== undefined && !Number.isSafeInteger(Number(values.seed))) {
    process.stderr.write(`--seed must be an integer\n${USAGE}`);
    process.exit(2);
  }
  const env: NodeJS.ProcessEnv = { ...process.env, FUZZ_SECONDS: String(seconds) };
  if (values.seed !== undefined) env['FUZZ_SEED'] = values.seed;
  if (values.path !== undefined) env['FUZZ_PATH'] = values.path;
  if (values.only !== undefined) env['FUZZ_ONLY'] = values.only;
  if (values.verbose === true) env['FUZZ_VERBOSE'] = '1';
  const dir = new URL('.', import.meta.url).pathname;
  // Up to three properties per file, plus start-up and shrinking.
  const timeoutMs = Math.ceil(seconds * 3 * 1000 + 180_000);
  const child = spawn(process.execPath, ['--test', '--test-concurrency=1', `--test-timeout=${timeoutMs}`, dir], {
    env,
    stdio: 'inherit',
  });
  child.once('exit', (code) => process.exit(code ?? 1));
}

main();
