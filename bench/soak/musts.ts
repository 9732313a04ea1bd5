// What a soak run must show: no bad body ever, every blob served once the
// faults stop, no spool left behind, flat memory and descriptors, no crash, no hung request,
// and every scheduled fault really happened (a soak whose faults did not fire proves nothing).
import type { Must, SoakReport } from './report.js';

export function judgeMusts(r: SoakReport, diskFullSkipped: boolean): Must[] {
  const musts: Must[] = [];
  const must = (name: string, ok: boolean, detail: string): void => void musts.push({ name, ok, detail });

  must(
    'bad bodies = 0',
    r.badBodies === 0,
    r.badBodies === 0
      ? `${r.successes} bodies checked`
      : `${r.badBodies} clean answers with wrong bytes, e.g. ${JSON.stringify(r.badBodySamples[0])}`,
  );
  must(
    'every blob served right after the faults',
    r.sweep.served === r.sweep.blobs,
    r.sweep.failures.length === 0
      ? `${r.sweep.blobs} of ${r.sweep.blobs}`
      : `${r.sweep.failures.length} failed, e.g. ${r.sweep.failures
          .slice(0, 3)
          .map((f) => `${f.digest.slice(0, 19)}… ${f.result}`)
          .join('; ')}`,
  );
  const left = Object.entries(r.tiers).filter(([, t]) => t.spoolFilesLeft.length > 0);
  must(
    'spool files left behind = 0',
    left.length === 0,
    left.length === 0
      ? 'both spool directories empty'
      : left.map(([n, t]) => `${n}: ${t.spoolFilesLeft.join(', ')}`).join('; '),
  );
  must(
    'no crash',
    r.crashes.length === 0,
    r.crashes.length === 0 ? 'no tier died unasked' : r.crashes.map((c) => `${c.tier} exited ${c.exit}`).join('; '),
  );
  must(
    'no hung request',
    r.hungRequests === 0,
    r.hungRequests === 0
      ? 'every request ended within 30 s + 1 s per MiB'
      : `${r.hungRequests} took longer, e.g. ${JSON.stringify(r.hungSamples[0])}`,
  );
  for (const [name, t] of Object.entries(r.tiers)) {
    const f = t.flat;
    if (!f.judged || f.rss === null || f.fds === null) {
      musts.push({ name: `${name} RSS and FDs flat`, ok: true, detail: `not judged: ${f.note ?? ''}` });
      continue;
    }
    must(
      `${name} RSS and FDs flat`,
      f.rss.ok && f.fds.ok,
      `RSS ${Math.round(f.rss.start / 1048576)} → ${Math.round(f.rss.end / 1048576)} MiB (limit ${Math.round(f.rss.limit / 1048576)}), FDs ${f.fds.start} → ${f.fds.end} (limit ${f.fds.limit})`,
    );
  }
  const missed = r.faults.filter(
    (f) => f.startedAt === null || (f.kind === 'disk-full' && f.detail['skipped'] !== undefined && !diskFullSkipped),
  );
  const noEffect = r.faults.filter(
    (f) =>
      (f.kind.startsWith('link') &&
        Number(f.detail['cut'] ?? 0) + Number(f.detail['stalled'] ?? 0) + Number(f.detail['flipped'] ?? 0) === 0) ||
      (f.kind.startsWith('kill') && f.detail['newPid'] === undefined),
  );
  must(
    'every scheduled fault happened',
    missed.length === 0 && noEffect.length === 0,
    missed.length + noEffect.length === 0
      ? `${r.faults.length} faults${diskFullSkipped ? ' (disk full skipped: no tmpfs)' : ''}`
      : `did not run: ${missed.map((f) => f.kind).join(', ') || '-'}; no effect: ${noEffect.map((f) => f.kind).join(', ') || '-'}`,
  );
  return musts;
}
