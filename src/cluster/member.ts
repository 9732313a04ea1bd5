// One serving process of a node (a node:cluster worker): it waits for the supervisor's
// `init`, runs the whole cache (TLS, routes, tokens, hits, fills) on the shared port, and
// answers the supervisor: reloads, ticket keys, per-IP refusals, scrapes, health, drain.
import { createLogger, flushLogger } from '../log/log.js';
import { withSecrets } from '../config/secret.js';
import { startCache, type RunningCache } from '../main.js';
import { stopOnce } from '../stop-once.js';
import { TicketKeys } from '../server/ticket-keys.js';
import { parseDigest } from '../store/digest.js';
import { isToMember, type FromMember, type ToMember } from './messages.js';
import { NodeGate } from './node-gate.js';
import { messageOf } from '../errors/inspect.js';
import { adoptStanding } from '../upstream/host.js';

type Init = Extract<ToMember, { t: 'init' }>;

function send(m: FromMember): void {
  // After the supervisor is gone there is no one to tell; the process is about to exit.
  if (process.connected) process.send?.(m);
}

function nextInit(): Promise<Init> {
  return new Promise((resolve) => {
    const onMessage = (m: unknown): void => {
      if (!isToMember(m) || m.t !== 'init') return;
      process.off('message', onMessage);
      resolve(m);
    };
    process.on('message', onMessage);
    send({ t: 'hello' });
  });
}

export async function runMember(): Promise<void> {
  // An orphan would keep serving with no one to replace, reload or stop it: a process whose
  // supervisor died stops at once (nothing unverified is ever published, so nothing is lost).
  process.on('disconnect', () => process.exit(1));
  // Reloads come from the supervisor, which reads the certificate once for every process;
  // a SIGHUP sent to the whole process group must not end this one (its default action).
  process.on('SIGHUP', () => undefined);
  const init = await nextInit();
  const log = createLogger(init.config.log).child({ proc: init.index });
  process.removeAllListeners('disconnect');
  process.on('disconnect', () => {
    log.error('the supervisor is gone: stopping at once');
    void flushLogger(log).finally(() => process.exit(1));
  });
  const gate = new NodeGate(init.config.http.limits.maxConnectionsPerIp, send);
  const tickets = new TicketKeys();
  tickets.set(Buffer.from(init.ticketKeys, 'base64'));
  const cache = await startCache(withSecrets(init.config, init.secrets), {
    log,
    member: {
      tls: init.tls,
      tickets,
      gate,
      port: init.port,
      budget: init.budget,
      removedSpools: init.removedSpools,
      via: init.via,
      nodeKeys: init.nodeKeys,
      onPublished: (digest, size) => send({ t: 'published', digest: digest.value, size }),
      shareCredential: (digest, c) =>
        send({ t: 'fill-credential', digest: digest.value, token: c.token, exp: c.exp, name: c.name }),
      shareHostStanding: (standing) => send({ t: 'host-standing', ...standing }),
    },
  });
  for (const standing of init.hostStandings) adoptStanding(cache.upstreamHosts, standing);
  log.info({ index: init.index, processes: init.processes, ...init.budget }, 'serving process started');

  const stop = stopOnce(log, () => cache.close().then(() => 0));
  // A terminal's Ctrl-C or systemd's SIGTERM reach every process of the group at once.
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('message', (m: unknown) => {
    if (isToMember(m)) handle(cache, m, { gate, tickets, stop, log });
  });
  send({ t: 'listening', port: cache.port });
}

function handle(
  cache: RunningCache,
  m: ToMember,
  deps: { gate: NodeGate; tickets: TicketKeys; stop(why: string): void; log: RunningCache['ctx']['log'] },
): void {
  switch (m.t) {
    case 'init':
      return;
    case 'refuse':
      return deps.gate.refuse(m.conn);
    case 'ticket-keys':
      return deps.tickets.set(Buffer.from(m.keys, 'base64'));
    case 'published':
      // Indexes stay whole in every process, so the evictor's size sum sees every blob.
      cache.ctx.store.add(parseDigest(m.digest), m.size);
      return;
    case 'fill-credential':
      cache.ctx.inflight.offer(m.digest, { token: m.token, exp: m.exp, name: m.name });
      return;
    case 'host-standing':
      return adoptStanding(cache.upstreamHosts, m);
    case 'reload':
      cache.reload(m.tls ?? undefined).then(
        (r) => send({ t: 'reloaded', id: m.id, keys: r.keys }),
        (err: unknown) => send({ t: 'reload-failed', id: m.id, error: messageOf(err) }),
      );
      return;
    case 'scrape':
      void (cache.metrics?.snapshot() ?? Promise.resolve(null)).then((metrics) =>
        send({ t: 'metrics', id: m.id, metrics }),
      );
      return;
    case 'health':
      void cache.health.report().then((report) => send({ t: 'health', id: m.id, report }));
      return;
    case 'keys':
      return send({ t: 'keys', id: m.id, jwks: cache.ctx.keys.loaded ? cache.ctx.keys.toJSON() : null });
    case 'ping':
      return send({ t: 'pong', id: m.id });
    case 'drain':
      return deps.stop('drain');
  }
}
