import {
  BlobNotFoundError,
  DigestMismatchError,
  IngestNotFoundError,
  IngestOffsetError,
  IngestSupersededError,
  InvalidPathError,
  ManifestNotFoundError,
  SizeMismatchError,
  SourceError,
  SourceIdleError,
  StoreError,
} from '../../store/index.js';
import { DigestError } from '../../oci/index.js';

/** The distribution spec's error codes with the HTTP status each one travels with. */
export const ErrorCodes = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  // distribution's additions that clients know
  RANGE_INVALID: 416,
  PAGINATION_NUMBER_INVALID: 400,
  TAG_INVALID: 400,
  UNKNOWN: 500,
  UNAVAILABLE: 503,
} as const;
export type ErrorCode = keyof typeof ErrorCodes;

/** An error answered as `{"errors":[{code,message,detail}]}`. */
export class RegistryError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly detail?: unknown,
    status?: number,
    /** Extra response headers (Range on 416, WWW-Authenticate on 401, Allow on 405). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'RegistryError';
    this.status = status ?? ErrorCodes[code];
  }
}

/**
 * Maps what store/ and oci/ throw to the spec's vocabulary. Anything else is a 500: an error the store
 * did not expect (EIO, ENOSPC) must never pass for a client mistake.
 */
export function toRegistryError(e: unknown): RegistryError {
  if (e instanceof RegistryError) return e;
  if (e instanceof BlobNotFoundError) return new RegistryError('BLOB_UNKNOWN', 'blob unknown to registry', { digest: e.digest });
  if (e instanceof ManifestNotFoundError) return new RegistryError('MANIFEST_UNKNOWN', 'manifest unknown', { name: e.repository, reference: e.reference });
  if (e instanceof IngestNotFoundError) return new RegistryError('BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry', { id: e.id });
  if (e instanceof DigestMismatchError)
    return new RegistryError('DIGEST_INVALID', 'provided digest did not match uploaded content', { expected: e.expected, actual: e.actual });
  if (e instanceof SizeMismatchError)
    return new RegistryError('SIZE_INVALID', 'provided length did not match content length', { expected: e.expected, actual: e.actual });
  if (e instanceof IngestOffsetError) {
    return new RegistryError('RANGE_INVALID', 'upload chunk does not start where the upload ends', { expected: e.expected, given: e.given }, 416, {
      Range: `0-${Math.max(0, e.expected - 1)}`,
    });
  }
  if (e instanceof DigestError) return new RegistryError('DIGEST_INVALID', e.message);
  if (e instanceof InvalidPathError) return new RegistryError('NAME_INVALID', e.message);
  // The request whose body stopped (or was taken over) is answered and its connection closed: the
  // client may still be sending, or never send again.
  const resync = 'GET the upload for its offset and resume from there';
  if (e instanceof IngestSupersededError) {
    return new RegistryError('BLOB_UPLOAD_INVALID', `a newer request on this upload took over from this one; ${resync}`, { id: e.id }, undefined, {
      Connection: 'close',
    });
  }
  if (e instanceof SourceIdleError) {
    return new RegistryError('BLOB_UPLOAD_INVALID', `the request body sent nothing for ${e.idleMs / 1000} s; ${resync}`, undefined, undefined, {
      Connection: 'close',
    });
  }
  if (e instanceof SourceError)
    return new RegistryError('BLOB_UPLOAD_INVALID', `the upload was interrupted; ${resync}`, undefined, undefined, { Connection: 'close' });
  if (redisUnreachable(e)) {
    return new RegistryError('UNAVAILABLE', "the registry's shared state (Redis) is unreachable; retry shortly", {
      message: (e as Error).message,
    });
  }
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return new RegistryError('UNKNOWN', 'the registry has no storage space left', { code }, 507);
  const message = e instanceof Error ? e.message : String(e);
  return new RegistryError('UNKNOWN', 'internal server error', { message });
}

/**
 * ioredis's failures when Redis cannot be reached (replicas on S3: registry/repository/scaleout.ts): no
 * connection (its offline queue is off), retries used up, or no answer in time. Matched by name and
 * message because ioredis throws plain Errors for most of them.
 */
function redisUnreachable(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  return (
    e.name === 'MaxRetriesPerRequestError' ||
    /^(Connection is closed\.|Stream isn't writeable and enableOfflineQueue options is false|Command timed out)/.test(e.message)
  );
}

/** Whether an error came from the store (its own failure kinds), not from the stream it was reading. */
export function isStoreError(e: unknown): boolean {
  return e instanceof StoreError;
}
