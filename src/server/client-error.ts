// Requests that node:http's HTTP/1.1 parser refuses never reach the router. They get the
// registry error JSON here, as every other error does (docs/protocol.md §6), instead of
// node's bare status lines.
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { RegistryError, methodNotAllowed } from '../errors/registry.js';
import { API_VERSION } from './respond.js';

/** A header list over `http.limits.maxheadersize`: HTTP/1.1 from the parser, HTTP/2 from server.ts. */
export function headersTooLarge(): RegistryError {
  return new RegistryError('UNSUPPORTED', { status: 431, message: 'request header fields too large' });
}

/** An Expect the server cannot meet (RFC 9110 §10.1.1). */
export function expectationFailed(): RegistryError {
  return new RegistryError('UNSUPPORTED', { status: 417, message: 'unsupported expectation: only 100-continue is' });
}

/** An HTTP/1.1 request without Host (RFC 9112 §3.2), which node:http's parser lets through. */
export function missingHost(): RegistryError {
  return new RegistryError('UNSUPPORTED', { status: 400, message: 'malformed HTTP request: no Host header' });
}

/**
 * CONNECT (RFC 9110 §9.3.6) asks for a tunnel, which a registry never opens. node:http and
 * http2 hand it to a 'connect' listener, not to the request handler: without one, HTTP/1.1
 * closes the connection unanswered and HTTP/2 answers a bare 405 with neither `Allow`
 * (RFC 9110 §15.5.6) nor the error body (docs/protocol.md §6).
 */
export function connectRefused(): RegistryError {
  return methodNotAllowed(['GET', 'HEAD'], 'CONNECT is not supported: this cache opens no tunnels');
}

/** What the parser's error means for the client; llhttp's codes and node's own. */
function refusalFor(code: string | undefined): RegistryError {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return headersTooLarge();
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new RegistryError('UNSUPPORTED', { status: 413, message: 'chunk extensions too large' });
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new RegistryError('UNSUPPORTED', {
        status: 408,
        message: 'request not received in time (http.limits.headerstimeout, requesttimeout)',
      });
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
    ...Object.entries({ ...API_VERSION, ...err.headers }).map(([k, v]) => `${k}: ${v}`),
    'Connection: close',
  ];
  return `${lines.join('\r\n')}\r\n\r\n${head ? '' : body}`;
}

/** Sockets already answered: the parser reports every later read of a refused request again. */
const answered = new WeakSet<Duplex>();

/** How long a refused client has to read its answer before the connection is destroyed. */
const LINGER_MS = 1_000;

/**
 * The server's 'clientError' listener: answers the refused request and ends the connection,
 * destroyed at the latest LINGER_MS later (a close with unread bytes is a reset, which can
 * make the client drop the answer). Returns the answer's status (null when none was written).
 */
export function answerClientError(err: Error & { code?: string; rawPacket?: unknown }, socket: Duplex): number | null {
  if (answered.has(socket)) return null;
  answered.add(socket);
  // Only the HTTP/1.1 parser's refusals are answered: http2's server also reports a failed
  // TLS handshake here, where there is no HTTP to speak. As node's own handler, never write
  // into a response already under way on this socket.
  const fromParser = err.code?.startsWith('HPE_') === true || err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (!fromParser || !socket.writable || inFlight?.headersSent === true) {
    socket.destroy();
    return null;
  }
  const refusal = refusalFor(err.code);
  const head = Buffer.isBuffer(err.rawPacket) && err.rawPacket.subarray(0, 5).toString('latin1') === 'HEAD ';
  socket.end(rawAnswer(refusal, head));
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
  return refusal.status;
}

/**
 * The 'connect' listener's answer on HTTP/1.1, where node:http has detached the socket from
 * its parser: the raw 405, then the connection ends (nothing after a CONNECT is HTTP).
 */
export function answerConnect(socket: Duplex): void {
  if (answered.has(socket)) return;
  answered.add(socket);
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(rawAnswer(connectRefused(), false));
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}
