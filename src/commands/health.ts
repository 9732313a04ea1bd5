// `dtr-cache health`: the container's health check, asking the node that runs on this host
// with the same config.yml. With a debug server (`http.debug.addr`) it asks /debug/health,
// which also answers 503 when the store cannot be written, no trusted keys are loaded, or the
// node is draining. Without one (DTR's own configs have none) it asks the serving port for
// `/v2/`, which a serving node answers 200: so a user's unchanged config gets a working check.
// A node that asks every client for a certificate (http.tls.clientcas) answers no request of
// the check, which has none: there, a TLS handshake the node ends for want of a client
// certificate is its answer (it accepted, and its event loop ran the handshake).
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Config } from '../config/types.js';

/** A check slower than this counts as a failure (Docker's own timeout is set above it). */
const CHECK_TIMEOUT_MS = 4_000;

export interface HealthTarget {
  url: string;
  /** The serving port's certificate names the public host, not the loopback address asked. */
  tls: boolean;
  /** The serving port wants a client certificate (http.tls.clientcas), which the check has not. */
  clientCertRequired: boolean;
}

/** How a node that wants a client certificate ends the handshake of a client with none. */
const NO_CLIENT_CERT = new Set([
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
  'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE',
  'ERR_SSL_TLSV1_ALERT_CERTIFICATE_REQUIRED',
]);

/** Where the check asks: the debug server when configured, else the serving port's `/v2/`. */
export function healthTarget(config: Config): HealthTarget {
  const debug = config.http.debug;
  if (debug !== null)
    return { url: `http://${local(debug.host)}:${debug.port}/debug/health`, tls: false, clientCertRequired: false };
  const tls = config.http.tls;
  return {
    url: `${tls !== null ? 'https' : 'http'}://${local(config.http.host)}:${config.http.port}/v2/`,
    tls: tls !== null,
    clientCertRequired: tls !== null && tls.clientCas.length > 0,
  };
}

/** Whether the node answered healthy (200), and what it answered or why it did not. */
export async function checkHealth(target: HealthTarget): Promise<{ healthy: boolean; why: string }> {
  const send = target.tls ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    const req = send(
      target.url,
      // Loopback only, reading a status code: the name on the certificate is not what is checked.
      { method: 'GET', timeout: CHECK_TIMEOUT_MS, ...(target.tls ? { rejectUnauthorized: false } : {}) },
      (res: IncomingMessage) => {
        res.resume();
        resolve({ healthy: res.statusCode === 200, why: `status ${res.statusCode ?? 0}` });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)));
    req.on('error', (err: Error & { code?: string }) =>
      resolve(
        target.clientCertRequired && NO_CLIENT_CERT.has(err.code ?? '')
          ? { healthy: true, why: 'TLS handshake answered (a client certificate is required)' }
          : { healthy: false, why: err.message },
      ),
    );
    req.end();
  });
}

/** A listen host as a loopback address to connect to: all interfaces ('' or 0.0.0.0, ::) are asked on loopback. */
function local(host: string): string {
  if (host === '' || host === '0.0.0.0') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
