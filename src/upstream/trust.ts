// CA trust for upstream TLS: the system roots plus the PEM files listed in `cas`
// (DTR docs: "A list of absolute paths to PEM-encoded CA certificates of upstream registries").
import { readFile } from 'node:fs/promises';
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';

/**
 * One TLS context for every upstream connection. Passing `ca` instead made each new
 * connection parse the whole list again (addCACerts: ~7 % of the main thread under load).
 */
export async function loadUpstreamTrust(casPaths: readonly string[]): Promise<SecureContext> {
  const extra = await Promise.all(casPaths.map((p) => readFile(p, 'utf8')));
  return createSecureContext({ ca: [...rootCertificates, ...extra] });
}
