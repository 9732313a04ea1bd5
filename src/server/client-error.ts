// Requests that node:http's HTTP/1.1 parser refuses never reach the router. They get the
// registry error JSON here, as every other error does (docs/protocol.md §6), instead of
// node's bare status lines.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { RegistryError } from '../errors/registry.js';
import { API_VERSION } from './respond.js';

/** A header list over `http.limits.maxheadersize`: HTTP/1.1 from the parser, HTTP/2 from server.ts. */
export function headersTooLarge(): RegistryError {
  return new RegistryError('UNSUPPORTED', { status: 431, message: 'request header fields too large' });
}

/** What the parser's error means for the client; llhttp's codes and node's own. */
function refusalFor(code: string | undefined): RegistryError {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return headersTooLarge();
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new RegistryError('UNSUPPORTED', { status: 413, message: 'chunk extensions too large' });
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new RegistryError('UNSUPPORTED', { status: 408, message: 'request not received within headerstimeout' });
    default:
      return new RegistryError('UNSUPPORTED', { status: 400, message: 'malformed HTTP request' });
  }
}

/**
 * The raw HTTP/1.1 answer: there is no ServerResponse for a request the parser refused. A
 * HEAD gets no body (RFC 9110 §9.3.2) when the refused bytes show the method; a request
 * refused in a later read of its headers gets the body whatever its method, and the
 * connection closes after it, so no client takes it for the start of another answer.
 */
function rawAnswer(err: RegistryError, head: boolean): string {
  const body = err.body();
  const lines = [
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? ''}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...Object.entries(API_VERSION).map(([k, v]) => `${k}: ${v}`),
    'Connection: close',
  ];
  return `${lines.join('\r\n')}\r\n\r\n${head ? '' : body}`;
}

/**
 * The server's 'clientError' listener: answers the refused request, then closes the
 * connection. Returns the answer's status (null when nothing could be written).
 */
export function answerClientError(err: Error & { code?: string; rawPacket?: unknown }, socket: Duplex): number | null {
  // As node's own handler: never write into a response already under way on this socket.
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  const canWrite = err.code !== 'ECONNRESET' && socket.writable && inFlight?.headersSent !== true;
  const refusal = refusalFor(err.code);
  const head = Buffer.isBuffer(err.rawPacket) && err.rawPacket.subarray(0, 5).toString('latin1') === 'HEAD ';
  if (canWrite) socket.write(rawAnswer(refusal, head));
  socket.destroy();
  return canWrite ? refusal.status : null;
}
