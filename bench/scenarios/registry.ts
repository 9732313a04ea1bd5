// Every scenario of `npm run bench`, by the name it has in the JSON, in run order. A cache
// scenario runs once for each `--processes` setting (`http.processes`), one after the other.
import { distributionMissing, startDistribution } from '../peers/distribution.js';
import { nginxMissing, startNginx } from '../peers/nginx.js';
import { chainColdFast, coldSingleFast, coldStampedeFast, relayChainColdFast, startFastCache } from './cold-fast.js';
import { chainFarLink } from './chain-link.js';
import { chainCold, coldStampede } from './cold.js';
import { withSubject, type Outcome } from './common.js';
import type { BenchEnv } from './env.js';
import { hitLarge, hitSmall } from './hits.js';
import { MIRROR_CREDENTIALS, mirrorPull, startMirrorSubject } from './mirror.js';
import { mixed } from './mixed.js';
import { startCacheSubject, startNaiveSubject, startRelaySubject, type Subject } from './subject.js';
import type { Processes } from './types.js';

export interface ScenarioDef {
  name: string;
  /** `dtr-cache` or the peer measured. */
  subject: string;
  /** The subject's serving processes, as recorded (ScenarioResult.processes). */
  processes: Processes | null;
  /** Peers: why the peer cannot run here, or null. */
  missing?: () => Promise<string | null>;
  /** Runs it; throws when the harness or the subject fails (request errors are counted instead). */
  run(env: BenchEnv): Promise<Outcome>;
}

/** A scenario before it is given its `http.processes` (peers ignore it). */
interface Template {
  name: string;
  subject: string;
  /** Peers only: their fixed process model. */
  peerProcesses?: Processes;
  missing?: () => Promise<string | null>;
  run(env: BenchEnv, processes: Processes): Promise<Outcome>;
}

type Body = (env: BenchEnv, s: Subject) => Promise<Outcome>;

const cache = (name: string, body: Body): Template => ({
  name,
  subject: 'dtr-cache',
  run: (env, processes) =>
    withSubject(
      () => startCacheSubject(env, name, [env.mock.url], { processes }),
      (s) => body(env, s),
    ),
});

const fastCache = (name: string, body: Body): Template => ({
  name,
  subject: 'dtr-cache',
  run: (env, processes) =>
    withSubject(
      () => startFastCache(env, name, processes),
      (s) => body(env, s),
    ),
});

const peer = (
  name: string,
  subject: 'distribution' | 'nginx' | 'node-naive' | 'node-relay',
  start: (env: BenchEnv) => Promise<Subject>,
  body: Body,
): Template => ({
  name,
  subject,
  // nginx runs `worker_processes auto`; distribution is one Go process (on every core).
  peerProcesses: subject === 'nginx' ? 'auto' : 1,
  missing: subject === 'distribution' ? distributionMissing : subject === 'nginx' ? nginxMissing : async () => null,
  run: (env) =>
    withSubject(
      () => start(env),
      (s) => body(env, s),
    ),
});

/** dtr-cache as a pure mirror (`proxy:`) of the far mock, tokens on. */
const mirror = (name: string, body: Body): Template => ({
  name,
  subject: 'dtr-cache',
  run: (env, processes) =>
    withSubject(
      () => startMirrorSubject(env, name, processes),
      (s) => body(env, s),
    ),
});
const mirrorCold: Body = (env, s) => mirrorPull(env, s, 'cold');
const mirrorWarm: Body = (env, s) => mirrorPull(env, s, 'warm');
/** distribution in proxy mode in front of the same mock, signing in as the mirror does. */
const distMirror = (name: string, body: Body): Template =>
  peer(name, 'distribution', (env) => startDistribution(env, name, env.mock, MIRROR_CREDENTIALS), body);

const small1: Body = (env, s) => hitSmall(env, s, 'h1');
const dist = (name: string, body: Body, fast = false): Template =>
  peer(
    name,
    'distribution',
    async (env) => startDistribution(env, name, fast ? await env.fastOpenMock() : undefined),
    body,
  );
const nginx = (name: string, role: 'static' | 'proxy', body: Body, fast = false): Template =>
  peer(name, 'nginx', async (env) => startNginx(env, name, role, fast ? await env.fastOpenMock() : undefined), body);

const TEMPLATES: Template[] = [
  cache('hit-small-h1', small1),
  cache('hit-small-h2', (env, s) => hitSmall(env, s, 'h2')),
  cache('hit-large', hitLarge),
  cache('cold-stampede', coldStampede),
  { name: 'chain-cold', subject: 'dtr-cache', run: chainCold },
  { name: 'chain-far-link', subject: 'dtr-cache', run: chainFarLink },
  cache('mixed', mixed),
  fastCache('cold-single-fast', coldSingleFast),
  { name: 'chain-cold-fast', subject: 'dtr-cache', run: chainColdFast },
  fastCache('cold-stampede-fast', coldStampedeFast),
  mirror('mirror-cold', mirrorCold),
  mirror('mirror-warm', mirrorWarm),
  dist('peer-distribution-hit-small-h1', small1),
  dist('peer-distribution-hit-large', hitLarge),
  dist('peer-distribution-cold-stampede', coldStampede),
  dist('peer-distribution-cold-single-fast', coldSingleFast, true),
  dist('peer-distribution-cold-stampede-fast', coldStampedeFast, true),
  distMirror('peer-distribution-mirror-cold', mirrorCold),
  distMirror('peer-distribution-mirror-warm', mirrorWarm),
  nginx('peer-nginx-hit-small-h1', 'static', small1),
  nginx('peer-nginx-hit-small-h2', 'static', (env, s) => hitSmall(env, s, 'h2')),
  nginx('peer-nginx-hit-large', 'static', hitLarge),
  nginx('peer-nginx-cold-stampede', 'proxy', coldStampede),
  nginx('peer-nginx-cold-single-fast', 'proxy', coldSingleFast, true),
  nginx('peer-nginx-cold-stampede-fast', 'proxy', coldStampedeFast, true),
  peer(
    'peer-node-naive-hit-small-h1',
    'node-naive',
    (env) => startNaiveSubject(env, 'peer-node-naive-hit-small-h1'),
    small1,
  ),
  peer(
    'peer-node-naive-hit-large',
    'node-naive',
    (env) => startNaiveSubject(env, 'peer-node-naive-hit-large'),
    hitLarge,
  ),
  peer(
    'peer-node-relay-cold-single-fast',
    'node-relay',
    async (env) => {
      const fast = await env.fastOpenMock();
      return startRelaySubject(env, 'peer-node-relay-cold-single-fast', fast.url, fast);
    },
    coldSingleFast,
  ),
  { name: 'peer-node-relay-chain-cold-fast', subject: 'node-relay', peerProcesses: 1, run: relayChainColdFast },
];

export const SCENARIO_NAMES: readonly string[] = TEMPLATES.map((t) => t.name);

/** `peer-*`, `*-fast`: `*` stands for any run of characters. */
function glob(pattern: string): RegExp {
  return new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
}

/**
 * `--scenario a,b,peer-*,*-fast`: names, or patterns with `*`; every scenario (peers
 * unless `withPeers` is false) when absent. Cache scenarios come once per `processes`
 * setting, adjacent.
 */
export function selectScenarios(
  pattern: string | undefined,
  withPeers: boolean,
  processes: Processes[],
): ScenarioDef[] {
  let picked: Template[];
  if (pattern === undefined) picked = TEMPLATES.filter((s) => withPeers || s.subject === 'dtr-cache');
  else {
    const wanted = pattern
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    const unknown = wanted.filter((w) => !SCENARIO_NAMES.some((n) => glob(w).test(n)));
    if (unknown.length > 0)
      throw new Error(`no scenario matches ${unknown.join(', ')}; known: ${SCENARIO_NAMES.join(', ')}`);
    picked = TEMPLATES.filter((s) => wanted.some((w) => glob(w).test(s.name)));
  }
  return picked.flatMap((t): ScenarioDef[] => {
    const base = { name: t.name, subject: t.subject, ...(t.missing !== undefined ? { missing: t.missing } : {}) };
    if (t.peerProcesses !== undefined) {
      const p = t.peerProcesses;
      return [{ ...base, processes: p, run: (env) => t.run(env, p) }];
    }
    return processes.map((p) => ({ ...base, processes: p, run: (env: BenchEnv) => t.run(env, p) }));
  });
}
