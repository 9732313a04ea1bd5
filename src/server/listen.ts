// Binds a server to host:port ('' = every interface, as Go reads ":5000") and resolves
// with the address actually bound (port 0 picks a free port). With reusePort, several
// processes bind the same port, each with its own accept queue (SO_REUSEPORT, Linux).
import type { Server } from 'node:net';

export function listenOn(
  server: Server,
  host: string,
  port: number,
  opts: { reusePort?: boolean } = {},
): Promise<{ port: number; host: string }> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const where = { port, ...(host === '' ? {} : { host }), ...(opts.reusePort === true ? { reusePort: true } : {}) };
    server.listen(where, () => {
      server.off('error', reject);
      const addr = server.address();
      if (addr === null || typeof addr === 'string') return reject(new Error('no TCP address'));
      resolve({ port: addr.port, host: addr.address });
    });
  });
}
