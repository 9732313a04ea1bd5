// What the supervisor and its serving processes say to each other over the IPC channel
// (JSON). Requests that want an answer carry an `id` the answer repeats.
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Config } from '../config/types.js';
import type { HealthReport } from '../metrics/health.js';
import type { TlsMaterial } from '../server/tls.js';
import type { HostStanding } from '../upstream/host.js';
import type { ProcessBudget } from './budget.js';

export type MetricsSnapshot = Array<MetricObjectWithValues<MetricValue<string>>>;

/**
 * A credential of a client that follows another process's fill of this blob: the process
 * downloading it may need it for a retry (fill/fill.ts, Fill.offer). Relayed by the
 * supervisor to the other processes, never logged.
 */
export interface FillCredential {
  t: 'fill-credential';
  digest: string;
  token: string;
  exp: number;
  name: string;
}

/**
 * An upstream host failed or recovered in one process (upstream/host.ts): relayed by the
 * supervisor to the others, which leave a broken host for its back-off too.
 */
export interface HostStandingMessage extends HostStanding {
  t: 'host-standing';
}

/** Supervisor → serving process. */
export type ToMember =
  | {
      t: 'init';
      /** Slot number, 0..processes-1; a replacement takes its predecessor's. */
      index: number;
      processes: number;
      config: Config;
      /** The config's inline secrets (config/secret.ts): JSON carries a Secret as [redacted]. */
      secrets: Record<string, string>;
      tls: TlsMaterial | null;
      /** base64 */
      ticketKeys: string;
      port: number;
      budget: ProcessBudget;
      removedSpools: number;
      via: string;
      /**
       * A replacement's fallback: the JWK Set (public) a running process of the node trusts,
       * used when the replacement cannot load the keys itself (the origin is down); null when
       * no process was running (the node's start: there, no keys means no serving).
       */
      nodeKeys: unknown;
      /** The node's last word on each upstream host: a replacement starts with its penalties. */
      hostStandings: HostStandingMessage[];
    }
  | { t: 'reload'; id: number; tls: TlsMaterial | null }
  | { t: 'ticket-keys'; keys: string }
  /** The node is over the per-IP limit: close this connection (conn-open's number). */
  | { t: 'refuse'; conn: number }
  | { t: 'scrape'; id: number }
  | { t: 'health'; id: number }
  /** The trusted key set, for a replacement (init's nodeKeys). */
  | { t: 'keys'; id: number }
  /** Are you there? (watchdog.ts: a process that stops answering is replaced.) */
  | { t: 'ping'; id: number }
  | { t: 'drain' }
  /** Another process published this blob. */
  | { t: 'published'; digest: string; size: number }
  | FillCredential
  | HostStandingMessage;

/** Serving process → supervisor. */
export type FromMember =
  /** Its message listener is in place: `init` may come. */
  | { t: 'hello' }
  | { t: 'listening'; port: number }
  | { t: 'conn-open'; conn: number; ip: string }
  | { t: 'conn-close'; conn: number }
  | { t: 'published'; digest: string; size: number }
  | FillCredential
  | HostStandingMessage
  | { t: 'reloaded'; id: number; keys: number }
  | { t: 'reload-failed'; id: number; error: string }
  | { t: 'metrics'; id: number; metrics: MetricsSnapshot | null }
  | { t: 'health'; id: number; report: HealthReport }
  | { t: 'keys'; id: number; jwks: unknown }
  | { t: 'pong'; id: number };

export type Answer = Extract<FromMember, { id: number }>;

const TO_MEMBER = new Set<string>([
  'init',
  'reload',
  'ticket-keys',
  'refuse',
  'scrape',
  'health',
  'keys',
  'ping',
  'drain',
  'published',
  'fill-credential',
  'host-standing',
]);
const FROM_MEMBER = new Set<string>([
  'hello',
  'listening',
  'conn-open',
  'conn-close',
  'published',
  'fill-credential',
  'host-standing',
  'reloaded',
  'reload-failed',
  'metrics',
  'health',
  'keys',
  'pong',
]);

function tagged(m: unknown, tags: Set<string>): boolean {
  return typeof m === 'object' && m !== null && 't' in m && typeof m.t === 'string' && tags.has(m.t);
}

/** Our own processes send these; other IPC traffic (node:cluster's internal messages) is not ours. */
export function isToMember(m: unknown): m is ToMember {
  return tagged(m, TO_MEMBER);
}

export function isFromMember(m: unknown): m is FromMember {
  return tagged(m, FROM_MEMBER);
}

export function isAnswer(m: FromMember): m is Answer {
  return 'id' in m;
}
