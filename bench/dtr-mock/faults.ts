// Per-digest faults of the mock origin, to play a failing DTR in tests:
// wrong bytes, a transfer cut midway, 503s, a refused connection.
import { MockError } from './errors.js';
import { isDigest } from './names.js';

export interface Fault {
  /** Serve wrong bytes of the right length. */
  corrupt?: boolean;
  /** Destroy the socket after this many body bytes of each response. */
  cutAfter?: number;
  /** Answer 503 UNAVAILABLE this many times (then normally), or always. */
  status503?: number | 'always';
  /** Destroy the socket as soon as the request arrives. */
  refuse?: boolean;
}

/** Validates a fault from JSON (`POST /_mock/config`). */
export function parseFault(v: unknown): Fault | null {
  if (v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v))
    throw new MockError('INVALID_REQUEST', { detail: 'fault must be an object or null' });
  const o = v as Record<string, unknown>;
  const f: Fault = {};
  for (const k of Object.keys(o)) {
    if (!['corrupt', 'cutAfter', 'status503', 'refuse'].includes(k)) {
      throw new MockError('INVALID_REQUEST', { detail: `unknown fault ${k}` });
    }
  }
  if (o['corrupt'] !== undefined) {
    if (typeof o['corrupt'] !== 'boolean') throw new MockError('INVALID_REQUEST', { detail: 'corrupt: boolean' });
    f.corrupt = o['corrupt'];
  }
  if (o['refuse'] !== undefined) {
    if (typeof o['refuse'] !== 'boolean') throw new MockError('INVALID_REQUEST', { detail: 'refuse: boolean' });
    f.refuse = o['refuse'];
  }
  const cut = o['cutAfter'];
  if (cut !== undefined) {
    if (typeof cut !== 'number' || !Number.isInteger(cut) || cut < 0) {
      throw new MockError('INVALID_REQUEST', { detail: 'cutAfter: integer >= 0' });
    }
    f.cutAfter = cut;
  }
  const s = o['status503'];
  if (s !== undefined) {
    if (s !== 'always' && (typeof s !== 'number' || !Number.isInteger(s) || s < 0)) {
      throw new MockError('INVALID_REQUEST', { detail: "status503: integer >= 0 or 'always'" });
    }
    f.status503 = s;
  }
  return f;
}

export class Faults {
  private readonly byDigest = new Map<string, Fault>();

  set(digest: string, fault: Fault | null): void {
    if (!isDigest(digest)) throw new MockError('DIGEST_INVALID', { message: 'invalid digest', detail: { digest } });
    if (fault === null) this.byDigest.delete(digest);
    else this.byDigest.set(digest, { ...fault });
  }

  get(digest: string): Fault | undefined {
    return this.byDigest.get(digest);
  }

  clear(): void {
    this.byDigest.clear();
  }

  /** Whether this request gets a 503; counts a numbered fault down. */
  take503(digest: string): boolean {
    const f = this.byDigest.get(digest);
    if (f?.status503 === undefined) return false;
    if (f.status503 === 'always') return true;
    if (f.status503 <= 0) return false;
    f.status503 -= 1;
    return true;
  }

  snapshot(): Record<string, Fault> {
    return Object.fromEntries([...this.byDigest].map(([d, f]) => [d, { ...f }]));
  }
}
