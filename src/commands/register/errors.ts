// Why `dtr-cache register` stopped; the CLI prints the message and exits 1.
import { DtrCacheError } from '../../errors/base.js';

export type RegisterErrorCode =
  /** Admin credentials missing, or refused by the origin (401/403). */
  | 'CREDENTIALS'
  /** The name is registered already, for another host. */
  | 'HOST_MISMATCH'
  /** The origin refused the request as invalid (400), e.g. a host that is not a URL. */
  | 'REFUSED'
  /** The origin could not be reached, or answered something unexpected. */
  | 'ORIGIN';

export class RegisterError extends DtrCacheError<RegisterErrorCode> {}
