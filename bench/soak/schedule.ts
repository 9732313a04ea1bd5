// The faults, in order, on a schedule scaled to the length of the load: each starts and
// ends at a fixed share of it, so a 30 s run and a 10 minute one go through the same story.
// The last tenth is calm, so the end of the run shows how the chain recovers.
import type { LinkFault } from './link.js';

export type FaultKind =
  'link-cut' | 'kill-regional' | 'link-stall' | 'kill-edge' | 'link-flip' | 'origin-down' | 'disk-full' | 'link-mixed';

export interface PlannedFault {
  kind: FaultKind;
  /** Start and end as shares of the load's length. For a kill: the kill, then the restart. */
  from: number;
  to: number;
}

export const SCHEDULE: readonly PlannedFault[] = [
  { kind: 'link-cut', from: 0.06, to: 0.16 },
  { kind: 'kill-regional', from: 0.18, to: 0.22 },
  { kind: 'link-stall', from: 0.24, to: 0.34 },
  { kind: 'kill-edge', from: 0.36, to: 0.39 },
  { kind: 'link-flip', from: 0.42, to: 0.52 },
  { kind: 'origin-down', from: 0.55, to: 0.65 },
  { kind: 'disk-full', from: 0.68, to: 0.78 },
  { kind: 'link-mixed', from: 0.8, to: 0.9 },
];

/** The link's faults in each link phase. */
export const LINK_FAULTS: Partial<Record<FaultKind, LinkFault[]>> = {
  'link-cut': ['cut'],
  'link-stall': ['stall'],
  'link-flip': ['flip'],
  'link-mixed': ['cut', 'stall', 'flip'],
};

/** A killed tier stays down at least this long, however short the run. */
export const MIN_DOWN_MS = 1_000;

export interface FaultRecord {
  kind: FaultKind;
  /** Seconds since the load started, as it happened (null: it did not). */
  startedAt: number | null;
  endedAt: number | null;
  /** What the fault did: the spool a kill caught mid-fill, the ballast's size, a skip's reason. */
  detail: Record<string, string | number | boolean | null>;
}

/** What each fault does; the schedule only says when. */
export interface FaultActions {
  begin(kind: FaultKind, rec: FaultRecord, until: number): Promise<void>;
  end(kind: FaultKind, rec: FaultRecord): Promise<void>;
}

export class Scheduler {
  readonly records: FaultRecord[] = SCHEDULE.map((p) => ({ kind: p.kind, startedAt: null, endedAt: null, detail: {} }));
  #phase = 'calm';
  #aborted = false;
  #lateMs = 0;
  #done = false;

  constructor(
    readonly startAt: number,
    readonly lengthMs: number,
    readonly actions: FaultActions,
  ) {}

  /** The fault under way, or 'calm'. */
  get phase(): string {
    return this.#phase;
  }

  abort(): void {
    this.#aborted = true;
    this.#done = true;
  }

  #at(share: number): number {
    return this.startAt + share * this.lengthMs;
  }

  #since(): number {
    return Math.round((Date.now() - this.startAt) / 100) / 10;
  }

  async #sleepUntil(t: number): Promise<void> {
    while (!this.#aborted && Date.now() < t) await new Promise((r) => setTimeout(r, Math.min(250, t - Date.now())));
  }

  /**
   * Runs every fault in order. One that comes late (a slow restart before it, a busy
   * machine) starts at once and keeps its planned length: the load lasts until the last
   * fault has ended and the calm tail has passed (loadEnd).
   */
  async run(): Promise<void> {
    let lateMs = 0;
    for (const rec of this.records) {
      const p = SCHEDULE.find((x) => x.kind === rec.kind) ?? { kind: rec.kind, from: 1, to: 1 };
      await this.#sleepUntil(this.#at(p.from) + lateMs);
      if (this.#aborted) return;
      lateMs = Math.max(lateMs, Date.now() - this.#at(p.from));
      const endAt = this.#at(p.to) + lateMs;
      this.#phase = p.kind;
      rec.startedAt = this.#since();
      try {
        await this.actions.begin(p.kind, rec, endAt);
        await this.#sleepUntil(p.kind.startsWith('kill') ? Math.max(endAt, Date.now() + MIN_DOWN_MS) : endAt);
      } finally {
        await this.actions.end(p.kind, rec);
        rec.endedAt = this.#since();
        this.#phase = 'calm';
      }
      lateMs = Math.max(lateMs, Date.now() - this.#at(p.to));
    }
    this.#lateMs = lateMs;
    this.#done = true;
  }

  /** When the load ends: the planned end, pushed back by however late the faults ran. */
  loadEnd(): number {
    if (!this.#done) return Infinity;
    return this.startAt + this.lengthMs + this.#lateMs;
  }
}
