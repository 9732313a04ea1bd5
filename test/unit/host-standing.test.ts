// An upstream host's standing told between the processes of a node (upstream/host.ts): a
// failure seen by one process puts the host under penalty in the others, a recovery ends
// it, and a process that saw the host fail after that recovery keeps its own penalty.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSecureContext } from 'node:tls';
import { UpstreamChain } from '../../src/upstream/chain.js';
import { adoptStanding, shareStandings, type HostStanding } from '../../src/upstream/host.js';

function chainAt(clock: { now: number }) {
  return new UpstreamChain(
    { origin: 'https://origin.test', hosts: ['https://tier.test'] },
    {
      secureContext: createSecureContext(),
      connectTimeoutMs: 1_000,
      headersTimeoutMs: 1_000,
      bodyIdleTimeoutMs: 1_000,
      now: () => clock.now,
      viaName: 'test',
    },
  );
}

const urls = (c: UpstreamChain) => c.candidates().map((h) => h.url);

test('a host that failed in one process is under the same penalty in another; its recovery ends it', async (t) => {
  const clock = { now: 1_000_000 };
  const a = chainAt(clock);
  const b = chainAt(clock);
  t.after(() => Promise.all([a.close(), b.close()]));
  const told: HostStanding[] = [];
  shareStandings(a.all, (s) => told.push(s));
  shareStandings(b.all, (s) => adoptStanding(a.all, s));

  const tierA = a.hosts[0]!;
  tierA.recordSuccess();
  assert.equal(told.length, 0, 'a success that ends no penalty is not told');
  tierA.recordFailure('status 503');
  tierA.recordFailure('status 503');
  assert.equal(told.length, 2);
  assert.deepEqual(told[1], {
    url: 'https://tier.test',
    failures: 2,
    retryAt: clock.now + 2_000,
    at: clock.now,
    detail: 'status 503',
  });
  assert.deepEqual(urls(b), ['https://tier.test', 'https://origin.test']);
  adoptStanding(b.all, told[1]!);
  assert.deepEqual(urls(b), ['https://origin.test', 'https://tier.test'], 'the other process leaves the tier too');
  assert.equal(b.hosts[0]!.lastResult?.detail, 'status 503');
  // An older, shorter word does not shorten the penalty.
  adoptStanding(b.all, told[0]!);
  clock.now += 1_500;
  assert.deepEqual(urls(b), ['https://origin.test', 'https://tier.test']);

  // b sees the tier answer: a is told, and asks the tier first again.
  b.hosts[0]!.recordSuccess();
  assert.deepEqual(urls(a), ['https://tier.test', 'https://origin.test']);
  assert.equal(a.hosts[0]!.lastResult?.ok, true);
});

test("a recovery told after this process's own later failure does not end its penalty", async (t) => {
  const clock = { now: 2_000_000 };
  const a = chainAt(clock);
  t.after(() => a.close());
  const tier = a.hosts[0]!;
  tier.recordFailure('connect timeout');
  const recoveredEarlier = { url: tier.url, failures: 0, retryAt: 0, at: clock.now - 10, detail: 'ok' };
  adoptStanding(a.all, recoveredEarlier);
  assert.equal(tier.penalised, true);
  adoptStanding(a.all, { ...recoveredEarlier, at: clock.now + 1 });
  assert.equal(tier.penalised, false);
  // Hosts of other URLs are not touched.
  adoptStanding(a.all, {
    url: 'https://elsewhere.test',
    failures: 5,
    retryAt: clock.now + 60_000,
    at: clock.now,
    detail: 'x',
  });
  assert.equal(a.origin?.penalised, false);
});
