// Unit tests of the node's shared pieces (src/cluster): the node-wide per-IP count, the
// budgets divided among processes, the node's health from its processes' reports, and the
// shared TLS ticket keys.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { processBudget } from '../../src/cluster/budget.js';
import { IpTable } from '../../src/cluster/ip-table.js';
import { nodeHealth, type MemberHealth } from '../../src/cluster/node-health.js';
import type { HealthReport } from '../../src/metrics/health.js';
import { TICKET_KEYS_BYTES, TicketKeys } from '../../src/server/ticket-keys.js';

describe('IpTable: connections per client IP, across processes', () => {
  it('admits up to the limit over all processes, then refuses without counting', () => {
    const t = new IpTable(3);
    assert.equal(t.open(1, 1, '10.0.0.1'), true);
    assert.equal(t.open(2, 1, '10.0.0.1'), true);
    assert.equal(t.open(2, 2, '10.0.0.1'), true);
    assert.equal(t.open(1, 2, '10.0.0.1'), false);
    assert.equal(t.open(1, 3, '10.0.0.2'), true, 'another IP has its own count');
    assert.equal(t.count('10.0.0.1'), 3);
    // Closing the refused one changes nothing; closing an admitted one makes room.
    t.close(1, 2);
    assert.equal(t.count('10.0.0.1'), 3);
    t.close(2, 1);
    assert.equal(t.count('10.0.0.1'), 2);
    assert.equal(t.open(1, 4, '10.0.0.1'), true);
  });

  it("a process that is gone takes its connections' counts with it", () => {
    const t = new IpTable(2);
    t.open(1, 1, '10.0.0.1');
    t.open(2, 1, '10.0.0.1');
    t.open(2, 2, '10.0.0.2');
    t.forget(2);
    assert.equal(t.count('10.0.0.1'), 1);
    assert.equal(t.count('10.0.0.2'), 0);
    t.close(2, 1); // a late close from the dead process
    assert.equal(t.count('10.0.0.1'), 1);
  });
});

describe('processBudget: the node budgets divided', () => {
  it('worker threads add up to about the core count; small-blob memory to 32 MiB, read buffers to 8, buffered fills to 32', () => {
    const b = (processes: number, cores: number) => processBudget(processes, cores);
    assert.deepEqual(b(1, 2), {
      threads: 1,
      smallBlobBytes: 32 << 20,
      readBufferBytes: 8 << 20,
      bufferedFillBytes: 32 << 20,
    });
    assert.deepEqual(b(2, 2), {
      threads: 1,
      smallBlobBytes: 16 << 20,
      readBufferBytes: 4 << 20,
      bufferedFillBytes: 16 << 20,
    });
    assert.equal(b(1, 8).threads, 4, 'at most four per process');
    assert.equal(b(2, 8).threads, 3);
    assert.equal(b(8, 8).threads, 1);
    assert.equal(b(16, 8).threads, 1, 'at least one');
    for (const [p, c] of [
      [2, 2],
      [4, 4],
      [8, 8],
      [32, 32],
      [4, 16],
    ] as const) {
      const total = p * b(p, c).threads;
      assert.ok(total <= c, `${p} processes on ${c} cores: ${total} threads`);
      assert.ok(p * b(p, c).smallBlobBytes <= 32 << 20);
      assert.ok(p * b(p, c).readBufferBytes <= 8 << 20);
      assert.ok(p * b(p, c).bufferedFillBytes <= 32 << 20);
    }
  });
});

function report(ok: boolean, draining = false): HealthReport {
  const at = new Date(0).toISOString();
  return {
    status: ok && !draining ? 200 : 503,
    body: {
      status: ok && !draining ? 'ok' : 'unavailable',
      checks: {
        store: { ok, detail: ok ? 'writable' : 'EROFS: read-only file system', checkedAt: at },
        keys: { ok: true, loaded: true, count: 1 },
        draining,
        upstreams: [{ url: 'https://o', role: 'upstream', ok: true, at, detail: 'ok' }],
      },
    },
  };
}

describe('nodeHealth: one /debug/health for the node', () => {
  const ready = (index: number, r: HealthReport | null): MemberHealth => ({
    index,
    pid: 100 + index,
    state: 'ready',
    report: r,
  });

  it('200 when every listening process is healthy, also while one is being replaced', () => {
    const h = nodeHealth([ready(0, report(true)), { index: 1, pid: null, state: 'starting', report: null }], false);
    assert.equal(h.status, 200);
    assert.deepEqual(h.body.processes, [
      { index: 0, pid: 100, state: 'ready', status: 'ok' },
      { index: 1, pid: null, state: 'starting', status: null },
    ]);
  });

  it('503 when a process is unhealthy or does not answer, when draining, or when none listens', () => {
    const bad = nodeHealth([ready(0, report(true)), ready(1, report(false))], false);
    assert.equal(bad.status, 503);
    assert.equal(bad.body.checks.store.detail, 'EROFS: read-only file system', 'the failing check is shown');
    const silent = nodeHealth([ready(0, report(true)), ready(1, null)], false);
    assert.equal(silent.status, 503);
    assert.equal(silent.body.processes[1]?.state, 'not answering');
    const draining = nodeHealth([ready(0, report(true))], true);
    assert.equal(draining.status, 503);
    assert.equal(draining.body.checks.draining, true);
    assert.equal(nodeHealth([{ index: 0, pid: null, state: 'gone', report: null }], false).status, 503);
  });
});

describe('TicketKeys', () => {
  it('rotate and set tell every listener; a key set of the wrong size is refused', () => {
    const keys = new TicketKeys();
    const seen: Buffer[] = [];
    keys.onRotate((k) => seen.push(k));
    const first = keys.current;
    assert.equal(first.length, TICKET_KEYS_BYTES);
    keys.rotate();
    assert.notDeepEqual(keys.current, first);
    const given = Buffer.alloc(TICKET_KEYS_BYTES, 7);
    keys.set(given);
    assert.deepEqual(seen, [seen[0], given]);
    assert.equal(keys.current, given);
    assert.throws(() => keys.set(Buffer.alloc(16)), RangeError);
  });
});
