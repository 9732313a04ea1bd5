// Finds a serving process that no longer answers. One whose event loop is stuck (an endless
// loop, SIGSTOP, a native deadlock) has not exited, so nothing replaces it; yet it still holds
// its SO_REUSEPORT socket, and the kernel keeps giving it its share of the node's new
// connections, which then hang. The supervisor pings every ready process; one that misses
// MISSES pings in a row is reported as stuck (the supervisor kills it, and replaces it as it
// replaces any process that dies).
import { MemberTimeout, type MemberProcess } from './member-process.js';

/** How often each process is asked. */
export const PING_EVERY_MS = 5_000;
/** How long its answer may take: less than the interval, so each round finds the last one settled. */
const ANSWER_MS = 4_000;
/**
 * Pings missed in a row before a process counts as stuck (SILENT_MS: 14 s of silence). A busy
 * process answers within milliseconds (its event-loop delay stays well under a second even
 * under a stampede), so only a process that serves nobody gets there.
 */
export const MISSES = 3;
/** From the first ping left unanswered to the last deadline missed: when a process is reported. */
export const SILENT_MS = (MISSES - 1) * PING_EVERY_MS + ANSWER_MS;

export class Watchdog {
  readonly #members: () => readonly MemberProcess[];
  readonly #stuck: (member: MemberProcess, silentMs: number) => void;
  readonly #missed = new WeakMap<MemberProcess, number>();
  readonly #asking = new WeakSet<MemberProcess>();
  #timer: NodeJS.Timeout | null = null;

  /** `members`: the processes to watch now (ready ones); `stuck` is told once per process. */
  constructor(members: () => readonly MemberProcess[], stuck: (member: MemberProcess, silentMs: number) => void) {
    this.#members = members;
    this.#stuck = stuck;
  }

  start(): void {
    this.#timer ??= setInterval(() => this.#round(), PING_EVERY_MS).unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  #round(): void {
    for (const m of this.#members()) {
      if (this.#asking.has(m)) continue;
      this.#asking.add(m);
      m.ask((id) => ({ t: 'ping', id }), ['pong'], ANSWER_MS).then(
        () => {
          this.#asking.delete(m);
          this.#missed.delete(m);
        },
        (err: unknown) => {
          this.#asking.delete(m);
          // An exit is not a hang: the exit handler replaces the process.
          if (!(err instanceof MemberTimeout) || this.#timer === null) return;
          const missed = (this.#missed.get(m) ?? 0) + 1;
          this.#missed.set(m, missed);
          if (missed === MISSES) this.#stuck(m, SILENT_MS);
        },
      );
    }
  }
}
