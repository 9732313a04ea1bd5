// The request and response shapes shared by HTTP/1.1 (node:http) and HTTP/2 (the
// node:http2 compatibility API), so each handler is written once for both.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';

export type Req = IncomingMessage | Http2ServerRequest;
export type Res = ServerResponse | Http2ServerResponse;

/** The parts of a response the handlers use, common to both protocols. */
export interface ResLike {
  readonly headersSent: boolean;
  writeHead(status: number, headers: Record<string, string | number>): unknown;
  write(chunk: Buffer | string, cb?: (err?: Error | null) => void): boolean;
  end(chunk?: Buffer | string): unknown;
  /** HTTP/1.1: sends the headers now rather than with the first body bytes (HTTP/2 sends them at writeHead). */
  flushHeaders?(): void;
  destroy(err?: Error): unknown;
  once(event: 'drain' | 'close', fn: () => void): unknown;
  off(event: 'drain' | 'close', fn: () => void): unknown;
}

export function asRes(res: Res): ResLike {
  return res as unknown as ResLike;
}

export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}
