// The access log: one `request` line per request, in the logger's own format (level, time,
// the logger's bindings, the fields, msg), written straight to the logger's destination so
// that it interleaves with every other line. pino's per-record path (serializers, the
// formatter, its walk over the object) cost a small hit about 28 µs of its 130 of CPU; this
// line's fields are known, plain and token-free, so one JSON.stringify does
// (bench/NOTES.md, "The access log").
import { pino, type Logger } from 'pino';

/** What the router logs for each request; undefined fields are left out, as pino does. */
export interface AccessFields {
  method: string | undefined;
  route: string;
  registry: string | undefined;
  repo: string | undefined;
  digest: string | undefined;
  status: number;
  bytes: number;
  ms: number;
  outcome: string | undefined;
  proto: string;
  err: string | undefined;
}

/** Each name of AccessFields once: the Record type has the compiler check that none is missing. */
const ACCESS_NAMES: Readonly<Record<keyof AccessFields, true>> = {
  method: true,
  route: true,
  registry: true,
  repo: true,
  digest: true,
  status: true,
  bytes: true,
  ms: true,
  outcome: true,
  proto: true,
  err: true,
};

/** The names an access log line carries beside the logger's own (log.ts LINE_FIELD_NAMES). */
export const ACCESS_FIELD_NAMES = Object.keys(ACCESS_NAMES) as readonly (keyof AccessFields)[];

interface Destination {
  write(line: string): unknown;
}

const INFO = 30;

export class AccessLog {
  readonly #log: Logger;
  readonly #dest: Destination;
  /** `,"svc":…,"pid":…` and any child bindings (`"proc"`), exactly as pino writes them. */
  readonly #bindings: string;

  constructor(log: Logger) {
    const internals = log as unknown as Record<symbol, unknown>;
    this.#log = log;
    this.#dest = internals[pino.symbols.streamSym] as Destination;
    this.#bindings = String(internals[pino.symbols.chindingsSym] ?? '');
  }

  write(fields: AccessFields): void {
    if (this.#log.levelVal > INFO) return;
    const body = JSON.stringify(fields);
    this.#dest.write(`{"level":${INFO},"time":${Date.now()}${this.#bindings},${body.slice(1, -1)},"msg":"request"}\n`);
  }
}
