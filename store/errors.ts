/** Errors store/ raises; callers map them to their own vocabulary (registry error codes, CLI lines). */
export class StoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

export class PathNotFoundError extends StoreError {
  constructor(readonly path: string) {
    super(`path not found: ${path}`);
  }
}

export class InvalidPathError extends StoreError {}

export class BlobNotFoundError extends StoreError {
  constructor(readonly digest: string) {
    super(`blob not found: ${digest}`);
  }
}

export class DigestMismatchError extends StoreError {
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`digest mismatch: expected ${expected}, content has ${actual}`);
  }
}

export class SizeMismatchError extends StoreError {
  constructor(
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`size mismatch: expected ${expected} bytes, got ${actual}`);
  }
}

export class IngestNotFoundError extends StoreError {
  constructor(readonly id: string) {
    super(`upload ${id} not found (it may have expired or completed)`);
  }
}

/** An append that does not start where the ingest currently ends. */
export class IngestOffsetError extends StoreError {
  constructor(
    readonly expected: number,
    readonly given: number,
  ) {
    super(`upload offset ${given} does not match current size ${expected}`);
  }
}

export class ImageNotFoundError extends StoreError {
  constructor(readonly reference: string) {
    super(`image not found: ${reference}`);
  }
}

export class ManifestNotFoundError extends StoreError {
  constructor(
    readonly repository: string,
    readonly reference: string,
  ) {
    super(`manifest unknown: ${repository}:${reference}`);
  }
}

/**
 * The stream being appended failed, closed before its end, or went silent. What arrived before it
 * stopped is kept: the ingest resumes after it.
 */
export class SourceError extends StoreError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message);
    if (options && 'cause' in options) this.cause = options.cause;
  }
}

/** The source sent nothing for `idleMs` milliseconds while the append waited for it. */
export class SourceIdleError extends SourceError {
  constructor(readonly idleMs: number) {
    super(`the source sent nothing for ${idleMs} ms`);
  }
}

/** A newer operation on the same ingest (another append, a commit, a cancel) took over from this append. */
export class IngestSupersededError extends StoreError {
  constructor(readonly id: string) {
    super(`a newer request on upload ${id} took over from this one`);
  }
}
