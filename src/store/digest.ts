// Validation of blob digests (distribution spec, "Pulling blobs"; docs/protocol.md §5).
// Everything that later becomes a path on disk or an upstream URL passes through here
// first, so nothing else needs to escape.
import { RegistryError } from '../errors/registry.js';

export type Algorithm = 'sha256' | 'sha512';

const HEX_LENGTH: Record<Algorithm, number> = { sha256: 64, sha512: 128 };

export interface Digest {
  readonly algorithm: Algorithm;
  readonly hex: string;
  /** `<algorithm>:<hex>`, the canonical form. */
  readonly value: string;
}

/** Parses `sha256:<64 lowercase hex>` or `sha512:<128 lowercase hex>`; anything else is DIGEST_INVALID. */
export function parseDigest(raw: string): Digest {
  const colon = raw.indexOf(':');
  const algorithm = raw.slice(0, colon);
  const hex = raw.slice(colon + 1);
  if (colon < 0 || (algorithm !== 'sha256' && algorithm !== 'sha512')) {
    throw new RegistryError('DIGEST_INVALID', {
      message: 'unsupported digest algorithm',
      detail: { digest: raw.slice(0, 140) },
    });
  }
  // Uppercase hex is refused: digests are compared as strings everywhere (claims, paths, ETags).
  if (hex.length !== HEX_LENGTH[algorithm] || !/^[0-9a-f]+$/.test(hex)) {
    throw new RegistryError('DIGEST_INVALID', { message: 'invalid digest', detail: { digest: raw.slice(0, 140) } });
  }
  return { algorithm, hex, value: raw };
}
