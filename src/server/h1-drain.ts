// HTTP/1.1's part of a graceful stop; HTTP/2 sessions get GOAWAY. node:http's close() ends
// only the connections idle at that moment: one whose answer was under way stayed open
// after it, kept alive, and held the drain until its deadline (and a request it carried
// meanwhile was answered as if nothing were stopping). As Go's Server.Shutdown does, an
// answer that starts during the drain says `Connection: close`, and a connection whose
// answer began with keep-alive before the drain is closed after its last answer.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

export class Http1Drain {
  #draining = false;
  /** HTTP/1.1 answers not finished yet, with their connection. */
  readonly #open = new Map<ServerResponse, Duplex>();

  /** Called with each HTTP/1.1 request before it is handled. */
  track(req: IncomingMessage, res: ServerResponse): void {
    if (this.#draining) {
      res.setHeader('Connection', 'close');
      return;
    }
    this.#open.set(res, req.socket);
    res.once('close', () => this.#open.delete(res));
  }

  /** The drain starts: every connection closes after the answers it has begun. */
  start(): void {
    this.#draining = true;
    for (const [res, socket] of this.#open) {
      // node:http closes the connection after an answer that says so.
      if (!res.headersSent) res.setHeader('Connection', 'close');
      // Finished already: the connection is idle, and node:http's close() ends it.
      else if (!res.writableFinished) res.once('finish', () => this.#closeAfter(res, socket));
    }
  }

  #closeAfter(res: ServerResponse, socket: Duplex): void {
    this.#open.delete(res);
    // A pipelined answer still to go on this connection closes it after itself.
    for (const [other, s] of this.#open) if (s === socket && !other.writableFinished) return;
    socket.end();
  }
}
