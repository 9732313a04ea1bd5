// The supervisor's handle on one serving process: forking it, its start handshake, its
// state, and requests that want an answer (with a deadline: a process that does not
// answer must not hang a scrape or a reload).
import cluster, { type Worker } from 'node:cluster';
import { isFromMember, isAnswer, type Answer, type FromMember, type ToMember } from './messages.js';

export type MemberState = 'starting' | 'ready' | 'gone';

/** A request whose answer did not come in time. */
export class MemberTimeout extends Error {
  readonly code = 'MEMBER_TIMEOUT' as const;
  constructor(index: number, what: string, ms: number) {
    super(`serving process ${index} did not answer ${what} within ${ms} ms`);
    this.name = 'MemberTimeout';
  }
}

export interface MemberEvents {
  /** Every message that is not an answer to a request, nor the start handshake. */
  message(member: MemberProcess, m: Exclude<FromMember, Answer | { t: 'hello' }>): void;
  exit(member: MemberProcess, code: number | null, signal: string | null): void;
}

export class MemberProcess {
  readonly index: number;
  readonly worker: Worker;
  readonly startedAt = Date.now();
  state: MemberState = 'starting';
  readonly #pending = new Map<number, { resolve(a: Answer): void; reject(err: Error): void; timer: NodeJS.Timeout }>();
  #nextId = 1;

  /** Forks the process; `init` is sent when it says hello (its message listener is in place). */
  constructor(index: number, init: () => ToMember, events: MemberEvents) {
    this.index = index;
    this.worker = cluster.fork();
    this.worker.on('message', (m: unknown) => {
      if (!isFromMember(m)) return;
      if (m.t === 'hello') return this.send(init());
      if (!isAnswer(m)) return events.message(this, m);
      const waiting = this.#pending.get(m.id);
      if (waiting === undefined) return; // answered after its deadline
      this.#pending.delete(m.id);
      clearTimeout(waiting.timer);
      waiting.resolve(m);
    });
    this.worker.on('exit', (code: number | null, signal: string | null) => {
      this.state = 'gone';
      for (const [id, waiting] of this.#pending) {
        this.#pending.delete(id);
        clearTimeout(waiting.timer);
        waiting.reject(new Error(`serving process ${this.index} exited`));
      }
      events.exit(this, code, signal);
    });
    // An IPC write to a process that just died: its 'exit' follows and says what happened.
    this.worker.on('error', () => undefined);
  }

  get pid(): number | undefined {
    return this.worker.process.pid;
  }

  send(m: ToMember): void {
    if (this.state !== 'gone' && this.worker.isConnected()) this.worker.send(m);
  }

  /** Sends a request and resolves its answer, or rejects with MemberTimeout. */
  ask<K extends Answer['t']>(
    make: (id: number) => ToMember & { id: number },
    expect: readonly K[],
    timeoutMs: number,
  ): Promise<Extract<Answer, { t: K }>> {
    const id = this.#nextId++;
    const msg = make(id);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new MemberTimeout(this.index, msg.t, timeoutMs));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (a) =>
          (expect as readonly string[]).includes(a.t)
            ? resolve(a as Extract<Answer, { t: K }>)
            : reject(new Error(`serving process ${this.index} answered ${msg.t} with ${a.t}`)),
        reject,
        timer,
      });
      this.send(msg);
    });
  }
}
