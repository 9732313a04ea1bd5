// The origin's front door, as both tiers see it: a TCP pass-through to the DTR mock that
// can be shut. Shut, it stops listening and drops every open connection, so the tiers get
// what a dead origin gives (connection refused, transfers cut), while the mock itself keeps
// its keys, its stored blobs and its counts of what it served.
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export class OriginGate {
  url = '';
  #port = 0;
  #server: Server | null = null;
  readonly #sockets = new Set<Socket>();

  constructor(readonly targetPort: number) {}

  /** Listens (on the same port as before, once it has one). */
  async open(): Promise<string> {
    if (this.#server !== null) return this.url;
    const server = createServer((down) => this.#pipe(down));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
    this.url = `https://localhost:${this.#port}`;
    return this.url;
  }

  /** The origin goes down: no listener, every open connection dropped. */
  async shut(): Promise<void> {
    const server = this.#server;
    if (server === null) return;
    this.#server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }

  get isOpen(): boolean {
    return this.#server !== null;
  }

  #pipe(down: Socket): void {
    const up = connect(this.targetPort, '127.0.0.1');
    for (const s of [down, up]) {
      this.#sockets.add(s);
      s.once('close', () => this.#sockets.delete(s));
      s.on('error', () => {
        down.destroy();
        up.destroy();
      });
    }
    down.pipe(up);
    up.pipe(down);
  }
}
