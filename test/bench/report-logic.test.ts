// The bench's bookkeeping, without servers: which scenarios a `--scenario`/`--processes`
// selection runs, how ratios and targets are computed when each cache scenario ran once per
// `http.processes` setting, and when a figure is flagged as bound by its driver.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ceilingOf } from '../../bench/scenarios/ceilings.js';
import { parseProcesses } from '../../bench/scenarios/processes.js';
import { addRatios } from '../../bench/scenarios/ratios.js';
import { selectScenarios } from '../../bench/scenarios/registry.js';
import { evaluateTargets } from '../../bench/scenarios/targets.js';
import type { Processes, ScenarioResult } from '../../bench/scenarios/types.js';

test('--processes: auto and whole numbers, in order; anything else is refused', () => {
  assert.deepEqual(parseProcesses('1,auto'), [1, 'auto']);
  assert.deepEqual(parseProcesses(' auto , 4 '), ['auto', 4]);
  for (const bad of ['0', '-1', '1.5', 'two', '', '1,1', 'auto,auto'])
    assert.throws(() => parseProcesses(bad), /--processes/, bad);
});

test('--scenario patterns with *, and each cache scenario once per processes setting, adjacent; peers once', () => {
  const picked = selectScenarios('*-fast', true, [1, 'auto']);
  assert.deepEqual(
    picked.map((d) => `${d.name}@${String(d.processes)}`),
    [
      'cold-single-fast@1',
      'cold-single-fast@auto',
      'chain-cold-fast@1',
      'chain-cold-fast@auto',
      'cold-stampede-fast@1',
      'cold-stampede-fast@auto',
      'peer-distribution-cold-single-fast@1',
      'peer-distribution-cold-stampede-fast@1',
      'peer-nginx-cold-single-fast@auto',
      'peer-nginx-cold-stampede-fast@auto',
      'peer-node-relay-cold-single-fast@1',
      'peer-node-relay-chain-cold-fast@1',
    ],
  );
  assert.deepEqual(
    selectScenarios('hit-small-h1,peer-nginx-*', true, ['auto']).map((d) => d.name),
    [
      'hit-small-h1',
      'peer-nginx-hit-small-h1',
      'peer-nginx-hit-small-h2',
      'peer-nginx-hit-large',
      'peer-nginx-cold-stampede',
      'peer-nginx-cold-single-fast',
      'peer-nginx-cold-stampede-fast',
    ],
  );
  // Without a pattern, peers only when asked.
  assert.ok(selectScenarios(undefined, false, [1]).every((d) => d.subject === 'dtr-cache'));
  assert.throws(() => selectScenarios('nope,*-slow', true, [1]), /no scenario matches nope, \*-slow/);
});

function result(name: string, processes: Processes | null, figures: ScenarioResult['figures']): ScenarioResult {
  return {
    name,
    subject: name.startsWith('peer-') ? 'nginx' : 'dtr-cache',
    status: 'ok',
    note: null,
    params: name === 'cold-single-fast' ? { sizes: '4KiB,1MiB,64MiB,512MiB' } : {},
    figures,
    errors: 0,
    errorSamples: [],
    ratios: [],
    processes,
    ceilings: [],
    durationMs: 1,
    stealPct: 0,
  };
}

test('ratios and targets: one set per processes setting, each against the one peer run', () => {
  const results = [
    result('cold-stampede-fast', 1, { upstreamGets: 1, wallMs: 300, ttfbP99Ms: 50, wallOverDirect: 1.2 }),
    result('cold-stampede-fast', 'auto', { upstreamGets: 1, wallMs: 150, ttfbP99Ms: 20, wallOverDirect: 0.6 }),
    result('peer-nginx-cold-stampede-fast', 'auto', { upstreamGets: 1, wallMs: 200, ttfbP99Ms: 100 }),
  ];
  addRatios(results);
  const wall = (i: number) => results[i]?.ratios.find((r) => r.metric === 'wallMs')?.value;
  assert.equal(wall(0), 1.5);
  assert.equal(wall(1), 0.75);
  assert.deepEqual(results[2]?.ratios, [], 'peers get no ratios');

  const targets = evaluateTargets(results);
  const pick = (id: string, p: Processes) => targets.find((t) => t.id === id && t.processes === p);
  assert.equal(pick('cold-stampede-fast.wall-vs-nginx', 1)?.pass, false);
  assert.equal(pick('cold-stampede-fast.wall-vs-nginx', 'auto')?.pass, true);
  assert.equal(pick('cold-stampede-fast.wall-vs-direct', 1)?.value, 1.2);
  assert.equal(pick('cold-stampede-fast.wall-vs-direct', 'auto')?.pass, true);
  // A target whose figure is missing (no peak RSS here) is not measurable, not failed.
  assert.equal(pick('cold-stampede-fast.peak-rss', 1)?.pass, null);
  assert.ok(
    targets.every((t) => t.scenario === 'cold-stampede-fast'),
    'only the targets of scenarios that ran',
  );
});

test('cold-single-fast targets follow the run sizes: ms over direct for the small ones, ratios for the large', () => {
  const results = [
    result('cold-single-fast', 1, {
      totalMs_4KiB: 14,
      directTotalMs_4KiB: 5,
      totalMs_1MiB: 30,
      directTotalMs_1MiB: 10,
      ttfbMs_64MiB: 20,
      directTtfbMs_64MiB: 15,
      totalMs_64MiB: 500,
      directTotalMs_64MiB: 200,
      ttfbMs_512MiB: 30,
      directTtfbMs_512MiB: 12,
      totalMs_512MiB: 1500,
      directTotalMs_512MiB: 800,
      peakRssMiB: 120,
    }),
  ];
  const targets = evaluateTargets(results);
  const value = (id: string) => targets.find((t) => t.id === id);
  assert.deepEqual(
    [value('cold-single-fast.4KiB.total-over-direct')?.value, value('cold-single-fast.4KiB.total-over-direct')?.pass],
    [9, true],
  );
  assert.deepEqual(
    [value('cold-single-fast.1MiB.total-over-direct')?.value, value('cold-single-fast.1MiB.total-over-direct')?.pass],
    [20, false],
  );
  assert.equal(value('cold-single-fast.64MiB.ttfb-over-direct')?.value, 5);
  assert.equal(value('cold-single-fast.64MiB.total-vs-direct')?.value, 2.5);
  assert.equal(value('cold-single-fast.512MiB.ttfb-over-direct')?.pass, false);
  assert.equal(value('cold-single-fast.512MiB.total-vs-direct')?.value, 1.88);
  assert.equal(value('cold-single-fast.512MiB.vs-distribution')?.pass, null, 'no distribution run');
  assert.equal(value('cold-single-fast.peak-rss')?.pass, true);
});

test('a figure at 90 % of its driver ceiling or above is flagged as driver-bound', () => {
  assert.deepEqual(ceilingOf('reqPerSec', 'wrk', 8_000, 20_000), {
    metric: 'reqPerSec',
    driver: 'wrk',
    value: 20_000,
    ofCeiling: 0.4,
    driverBound: false,
  });
  assert.equal(ceilingOf('reqPerSec', 'wrk', 18_000, 20_000).driverBound, true);
  assert.equal(ceilingOf('h1MiBps', 'wrk', 900, 800).driverBound, true);
  assert.equal(ceilingOf('h1MiBps', 'wrk', 900, null).driverBound, null, 'no ceiling: not known');
});
