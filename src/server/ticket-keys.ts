// TLS session ticket keys (RFC 5077; TLS 1.3 resumption, RFC 8446 §4.6.1). A client resumes
// only on a server that holds the key its ticket was sealed with, so every serving process
// of a node uses the same keys, and they are replaced regularly: a stolen key opens the
// sessions resumed with it only until the next rotation. Node holds one key set at a time,
// so a rotation costs the clients holding older tickets one full handshake.
import { randomBytes } from 'node:crypto';

/** Node's ticket key set: 16 bytes of name, 16 of HMAC key, 16 of AES key. */
export const TICKET_KEYS_BYTES = 48;
/** Tickets live for the server's sessionTimeout (300 s); an hour bounds what a stolen key opens. */
export const TICKET_ROTATION_MS = 60 * 60_000;

export class TicketKeys {
  #current: Buffer = randomBytes(TICKET_KEYS_BYTES);
  #timer: NodeJS.Timeout | null = null;
  readonly #listeners: Array<(keys: Buffer) => void> = [];

  get current(): Buffer {
    return this.#current;
  }

  /** Calls `listener` with every new key set. */
  onRotate(listener: (keys: Buffer) => void): void {
    this.#listeners.push(listener);
  }

  rotate(): void {
    this.set(randomBytes(TICKET_KEYS_BYTES));
  }

  /** Takes a key set made elsewhere (a serving process gets its node's from the supervisor). */
  set(keys: Buffer): void {
    if (keys.length !== TICKET_KEYS_BYTES) throw new RangeError(`ticket keys are ${TICKET_KEYS_BYTES} bytes`);
    this.#current = keys;
    for (const l of this.#listeners) l(keys);
  }

  start(periodMs = TICKET_ROTATION_MS): void {
    this.#timer ??= setInterval(() => this.rotate(), periodMs).unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
