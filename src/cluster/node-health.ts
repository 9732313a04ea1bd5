// One /debug/health for a node of several processes, from its serving processes' reports.
import type { HealthReport, HealthStatus } from '../metrics/health.js';

export interface MemberHealth {
  index: number;
  pid: number | null;
  state: 'starting' | 'ready' | 'gone';
  /** null: a ready process that did not answer in time. */
  report: HealthReport | null;
}

export interface NodeHealthReport {
  status: 200 | 503;
  body: {
    status: HealthStatus;
    checks: HealthReport['body']['checks'];
    processes: Array<{ index: number; pid: number | null; state: string; status: HealthStatus | null }>;
  };
}

type Checks = HealthReport['body']['checks'];

/**
 * The node can serve when none of its listening processes says otherwise and at least one
 * listens. A process being replaced does not make the node unavailable (the others serve);
 * one that listens but does not answer does (connections that land on it hang).
 */
export function nodeHealth(members: readonly MemberHealth[], draining: boolean): NodeHealthReport {
  const ready = members.filter((m) => m.state === 'ready');
  const reports = ready.flatMap((m) => (m.report === null ? [] : [m.report]));
  const silent = ready.length - reports.length;
  const checks = mergeChecks(reports, draining);
  const ok = reports.length > 0 && silent === 0 && !checks.draining && reports.every((r) => r.status === 200);
  return {
    status: ok ? 200 : 503,
    body: {
      status: !ok ? 'unavailable' : reports.some((r) => r.body.status === 'degraded') ? 'degraded' : 'ok',
      checks,
      processes: members.map((m) => ({
        index: m.index,
        pid: m.pid,
        state: m.state === 'ready' && m.report === null ? 'not answering' : m.state,
        status: m.report?.body.status ?? null,
      })),
    },
  };
}

/** One set of checks: the first failure of each kind, the newest result of each upstream. */
function mergeChecks(reports: readonly HealthReport[], draining: boolean): Checks {
  const all = reports.map((r) => r.body.checks);
  const store = all.find((c) => !c.store.ok)?.store ??
    all.find((c) => c.store.full === true)?.store ??
    all[0]?.store ?? { ok: false, detail: 'no serving process answered', checkedAt: new Date().toISOString() };
  const keys = all.find((c) => !c.keys.ok)?.keys ?? all[0]?.keys ?? { ok: false, loaded: false, count: 0 };
  const upstreams = new Map<string, Checks['upstreams'][number]>();
  for (const u of all.flatMap((c) => c.upstreams)) {
    const seen = upstreams.get(u.url);
    if (seen === undefined || (u.at !== null && (seen.at === null || u.at > seen.at))) upstreams.set(u.url, u);
  }
  return { store, keys, draining: draining || all.some((c) => c.draining), upstreams: [...upstreams.values()] };
}
