// What each scheduled fault does to the chain: the link's fault mode, kill -9 of a tier
// (caught mid-fill when one is under way) and its restart on the same root and port, the
// origin's gate shut and opened, the edge's disk filled and freed.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { SmallDisk } from './disk.js';
import type { OriginGate } from './gate.js';
import type { FaultLink } from './link.js';
import { LINK_FAULTS, MIN_DOWN_MS, type FaultActions, type FaultKind, type FaultRecord } from './schedule.js';
import type { Tier } from './tier.js';

export interface Chain {
  regional: Tier;
  edge: Tier;
  link: FaultLink;
  gate: OriginGate;
  /** The edge's tmpfs, or why there is none. */
  disk: SmallDisk | string;
  /** Share of blob bodies the link spoils during its phases. */
  linkRate: number;
}

/** Waits (until `deadline`) for a fill in progress: a spool file with bytes in it. */
async function waitMidFill(tier: Tier, deadline: number): Promise<{ spool: string; bytes: number } | null> {
  while (Date.now() < deadline) {
    for (const name of await tier.spools()) {
      const st = await stat(join(tier.layout.spoolDir, name)).catch(() => null);
      if (st !== null && st.size > 0) return { spool: name, bytes: st.size };
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return null;
}

export function chainFaults(c: Chain): FaultActions {
  const linkBefore = { cut: 0, stalled: 0, flipped: 0 };
  let killedAt = 0;
  const tierOf = (kind: FaultKind): Tier => (kind === 'kill-regional' ? c.regional : c.edge);
  return {
    async begin(kind: FaultKind, rec: FaultRecord, until: number): Promise<void> {
      const linkFaults = LINK_FAULTS[kind];
      if (linkFaults !== undefined) {
        Object.assign(linkBefore, {
          cut: c.link.stats.cut,
          stalled: c.link.stats.stalled,
          flipped: c.link.stats.flipped,
        });
        c.link.setMode({ faults: linkFaults, rate: c.linkRate });
        rec.detail['rate'] = c.linkRate;
        return;
      }
      switch (kind) {
        case 'kill-regional':
        case 'kill-edge': {
          const tier = tierOf(kind);
          // Half the window at most is spent waiting for a fill to catch.
          const caught = await waitMidFill(tier, Math.max(Date.now(), until - MIN_DOWN_MS));
          rec.detail['pid'] = tier.pid;
          rec.detail['midFill'] = caught !== null;
          rec.detail['spool'] = caught?.spool ?? null;
          rec.detail['spoolBytes'] = caught?.bytes ?? null;
          await tier.kill9();
          killedAt = Date.now();
          return;
        }
        case 'origin-down':
          await c.gate.shut();
          return;
        case 'disk-full':
          if (typeof c.disk === 'string') {
            rec.detail['skipped'] = c.disk;
            return;
          }
          await c.disk.fill();
          rec.detail['diskUsedBytes'] = c.disk.peakBallast;
          rec.detail['freeBytes'] = await c.disk.freeBytes();
          return;
        default:
          return;
      }
    },

    async end(kind: FaultKind, rec: FaultRecord): Promise<void> {
      if (LINK_FAULTS[kind] !== undefined) {
        c.link.setMode({ faults: [], rate: 0 });
        rec.detail['cut'] = c.link.stats.cut - linkBefore.cut;
        rec.detail['stalled'] = c.link.stats.stalled - linkBefore.stalled;
        rec.detail['flipped'] = c.link.stats.flipped - linkBefore.flipped;
        return;
      }
      switch (kind) {
        case 'kill-regional':
        case 'kill-edge': {
          const tier = tierOf(kind);
          const leftBehind = await tier.spoolFiles();
          rec.detail['spoolFilesWhileDown'] = leftBehind.length;
          // Named, with sizes: what the restarted tier has to clean up or take over.
          rec.detail['spoolsWhileDown'] = (
            await Promise.all(
              leftBehind.map(
                async (n) => `${n}:${(await stat(join(tier.layout.spoolDir, n)).catch(() => null))?.size ?? '?'}`,
              ),
            )
          ).join(' ');
          rec.detail['downMs'] = Date.now() - killedAt;
          const t0 = Date.now();
          await tier.restart();
          rec.detail['restartMs'] = Date.now() - t0;
          rec.detail['newPid'] = tier.pid;
          return;
        }
        case 'origin-down':
          await c.gate.open();
          return;
        case 'disk-full':
          if (typeof c.disk !== 'string') {
            rec.detail['diskUsedBytes'] = c.disk.peakBallast;
            await c.disk.release();
          }
          return;
        default:
          return;
      }
    },
  };
}
