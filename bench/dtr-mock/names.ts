// Validation of the path parts a registry request carries (distribution spec,
// "Pulling manifests"/"Pulling blobs"; docs/protocol.md §5). Nothing reaches storage
// or the file system before it passed through here.
import { isRepositoryName } from '../../src/distribution/name.js';
import { MockError } from './errors.js';

/** The distribution name grammar: the cache's own, so the two cannot disagree. */
export { isRepositoryName as isName };

const DIGEST_RE = /^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export function isDigest(digest: string): boolean {
  return DIGEST_RE.test(digest);
}

export function isTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

export function checkName(name: string): string {
  if (!isRepositoryName(name)) throw new MockError('NAME_INVALID', { detail: { name } });
  return name;
}

export function checkDigest(digest: string): string {
  if (!isDigest(digest)) throw new MockError('DIGEST_INVALID', { message: 'invalid digest', detail: { digest } });
  return digest;
}

/** `sha256:<hex>` → `['sha256', '<hex>']`; only for validated digests. */
export function splitDigest(digest: string): [alg: 'sha256' | 'sha512', hex: string] {
  const i = digest.indexOf(':');
  const alg = digest.slice(0, i);
  return [alg === 'sha512' ? 'sha512' : 'sha256', digest.slice(i + 1)];
}
