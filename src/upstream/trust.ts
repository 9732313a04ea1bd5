// CA trust for upstream TLS: the system roots plus the PEM files listed in `cas`
// (DTR docs: "A list of absolute paths to PEM-encoded CA certificates of upstream registries").
import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';

export async function loadTrustedCas(casPaths: readonly string[]): Promise<string[]> {
  const extra = await Promise.all(casPaths.map((p) => readFile(p, 'utf8')));
  return [...rootCertificates, ...extra];
}
