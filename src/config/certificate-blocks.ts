// The CERTIFICATE blocks of a PEM file, as the config loader checks them and as a SIGHUP
// re-reads http.tls.clientcas: one reading, so a file that check-config refuses is refused
// on reload too. OpenSSL skips a block it cannot read (or one cut off before its END line)
// without a word, and the node would trust fewer CAs than the file lists.
import { X509Certificate } from 'node:crypto';
import { opensslReason } from '../errors/inspect.js';

export interface CertificateBlocksProblem {
  readonly kind: 'none' | 'unterminated' | 'unparsable';
  /** What is wrong, worded to follow the file's name: `"/certs/ca.pem" ${what}`. */
  readonly what: string;
  /** The parser's error of an unparsable block. */
  readonly cause?: unknown;
}

const BLOCK = /-----BEGIN CERTIFICATE-----[^]*?-----END CERTIFICATE-----/g;
const BEGIN = /-----BEGIN CERTIFICATE-----/g;

/** Null when the text holds at least one CERTIFICATE block, each with an END line and each parsing. */
export function certificateBlocksProblem(text: string): CertificateBlocksProblem | null {
  const blocks = text.match(BLOCK) ?? [];
  const begins = text.match(BEGIN)?.length ?? 0;
  if (begins === 0) return { kind: 'none', what: 'that holds no CERTIFICATE block' };
  if (blocks.length < begins) return { kind: 'unterminated', what: 'with a CERTIFICATE block that has no END line' };
  for (const [i, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch (err) {
      const why = opensslReason(err);
      return {
        kind: 'unparsable',
        what: `whose certificate ${i + 1} of ${blocks.length} does not parse (${why})`,
        cause: err,
      };
    }
  }
  return null;
}
