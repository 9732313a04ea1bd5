// Every scenario of `npm run bench`, by the name it has in the JSON, in run order.
import { distributionMissing, startDistribution } from '../peers/distribution.js';
import { nginxMissing, startNginx } from '../peers/nginx.js';
import { chainCold, coldStampede } from './cold.js';
import { withSubject, type Outcome } from './common.js';
import type { BenchEnv } from './env.js';
import { hitLarge, hitSmall } from './hits.js';
import { mixed } from './mixed.js';
import { startCacheSubject, startNaiveSubject, type Subject } from './subject.js';

export interface ScenarioDef {
  name: string;
  /** `dtr-cache` or the peer measured. */
  subject: string;
  /** Peers: why the peer cannot run here, or null. */
  missing?: () => Promise<string | null>;
  /** Runs it; throws when the harness or the subject fails (request errors are counted instead). */
  run(env: BenchEnv): Promise<Outcome>;
}

type Body = (env: BenchEnv, s: Subject) => Promise<Outcome>;

const cache = (name: string, body: Body): ScenarioDef => ({
  name,
  subject: 'dtr-cache',
  run: (env) =>
    withSubject(
      () => startCacheSubject(env, name, [env.mock.url]),
      (s) => body(env, s),
    ),
});

const peer = (
  name: string,
  subject: string,
  missing: () => Promise<string | null>,
  start: (env: BenchEnv) => Promise<Subject>,
  body: Body,
): ScenarioDef => ({
  name,
  subject,
  missing,
  run: (env) =>
    withSubject(
      () => start(env),
      (s) => body(env, s),
    ),
});

const small1: Body = (env, s) => hitSmall(env, s, 'h1');
const noBinary = async (): Promise<null> => null;

export const SCENARIOS: ScenarioDef[] = [
  cache('hit-small-h1', small1),
  cache('hit-small-h2', (env, s) => hitSmall(env, s, 'h2')),
  cache('hit-large', hitLarge),
  cache('cold-stampede', coldStampede),
  { name: 'chain-cold', subject: 'dtr-cache', run: chainCold },
  cache('mixed', mixed),
  peer(
    'peer-distribution-hit-small-h1',
    'distribution',
    distributionMissing,
    (env) => startDistribution(env, 'peer-distribution-hit-small-h1'),
    small1,
  ),
  peer(
    'peer-distribution-hit-large',
    'distribution',
    distributionMissing,
    (env) => startDistribution(env, 'peer-distribution-hit-large'),
    hitLarge,
  ),
  peer(
    'peer-distribution-cold-stampede',
    'distribution',
    distributionMissing,
    (env) => startDistribution(env, 'peer-distribution-cold-stampede'),
    coldStampede,
  ),
  peer(
    'peer-nginx-hit-small-h1',
    'nginx',
    nginxMissing,
    (env) => startNginx(env, 'peer-nginx-hit-small-h1', 'static'),
    small1,
  ),
  peer(
    'peer-nginx-hit-large',
    'nginx',
    nginxMissing,
    (env) => startNginx(env, 'peer-nginx-hit-large', 'static'),
    hitLarge,
  ),
  peer(
    'peer-nginx-cold-stampede',
    'nginx',
    nginxMissing,
    (env) => startNginx(env, 'peer-nginx-cold-stampede', 'proxy'),
    coldStampede,
  ),
  peer(
    'peer-node-naive-hit-small-h1',
    'node-naive',
    noBinary,
    (env) => startNaiveSubject(env, 'peer-node-naive-hit-small-h1'),
    small1,
  ),
  peer(
    'peer-node-naive-hit-large',
    'node-naive',
    noBinary,
    (env) => startNaiveSubject(env, 'peer-node-naive-hit-large'),
    hitLarge,
  ),
];

/** `--scenario a,b,peer-*`: exact names, or a prefix ending in `*`. */
export function selectScenarios(pattern: string | undefined, withPeers: boolean): ScenarioDef[] {
  if (pattern === undefined) return SCENARIOS.filter((s) => withPeers || s.subject === 'dtr-cache');
  const wanted = pattern
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const picked = SCENARIOS.filter((s) =>
    wanted.some((w) => (w.endsWith('*') ? s.name.startsWith(w.slice(0, -1)) : s.name === w)),
  );
  const unknown = wanted.filter((w) => !w.endsWith('*') && !SCENARIOS.some((s) => s.name === w));
  if (unknown.length > 0)
    throw new Error(`unknown scenario ${unknown.join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  return picked;
}
