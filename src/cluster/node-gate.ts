// A serving process's side of the node-wide per-IP limit (ip-table.ts). A connection over
// this process's own count is refused at once; any other is admitted and reported to the
// supervisor, which answers only to refuse it. The refusal comes one IPC round trip after
// the accept, before a client's TLS handshake has usually been read.
import type { Socket } from 'node:net';
import { clientIp, PerIpLimiter, type ConnectionGate, type GuardHooks } from '../server/guards.js';
import type { FromMember } from './messages.js';

export class NodeGate implements ConnectionGate {
  readonly #local: PerIpLimiter;
  readonly #send: (m: FromMember) => void;
  readonly #open = new Map<number, { socket: Socket; ip: string; hooks: GuardHooks }>();
  #next = 1;

  constructor(maxPerIp: number, send: (m: FromMember) => void) {
    this.#local = new PerIpLimiter(maxPerIp);
    this.#send = send;
  }

  admit(socket: Socket, hooks: GuardHooks): boolean {
    if (!this.#local.admit(socket, hooks)) return false;
    const conn = this.#next++;
    const ip = clientIp(socket);
    this.#open.set(conn, { socket, ip, hooks });
    this.#send({ t: 'conn-open', conn, ip });
    socket.once('close', () => {
      this.#open.delete(conn);
      this.#send({ t: 'conn-close', conn });
    });
    return true;
  }

  /** The supervisor found the node over the limit for this connection's IP. */
  refuse(conn: number): void {
    const c = this.#open.get(conn);
    if (c === undefined) return; // closed meanwhile
    c.socket.destroy();
    c.hooks.refused?.('per-ip', c.ip);
  }
}
