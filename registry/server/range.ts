import { RegistryError } from './errors.js';

export interface ByteSpan {
  start: number;
  /** Inclusive. */
  end: number;
}

/**
 * A `Range: bytes=...` request header against a blob of `size` bytes. Undefined means "send it all"
 * (no header, or several ranges, which a server may answer whole). A malformed or unsatisfiable range
 * is a 416 carrying `Content-Range: bytes *\/size`, as RFC 9110 asks.
 */
export function parseRangeHeader(header: string | undefined, size: number): ByteSpan | undefined {
  if (header === undefined || header === '') return undefined;
  const unsatisfiable = () =>
    new RegistryError('RANGE_INVALID', `range "${header.slice(0, 100)}" cannot be satisfied for a blob of ${size} bytes`, undefined, 416, {
      'Content-Range': `bytes */${size}`,
    });
  const m = /^bytes=(.+)$/.exec(header.trim());
  if (!m) throw unsatisfiable();
  if (m[1]!.includes(',')) return undefined;
  const spec = /^\s*(\d*)-(\d*)\s*$/.exec(m[1]!);
  if (!spec || (spec[1] === '' && spec[2] === '')) throw unsatisfiable();
  let start: number;
  let end: number;
  if (spec[1] === '') {
    const suffix = Number(spec[2]);
    if (suffix === 0) throw unsatisfiable();
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(spec[1]);
    end = spec[2] === '' ? size - 1 : Math.min(Number(spec[2]), size - 1);
    if (spec[2] !== '' && Number(spec[2]) < start) throw unsatisfiable();
  }
  if (!Number.isSafeInteger(start) || start >= size) throw unsatisfiable();
  return { start, end };
}

/**
 * An upload chunk's `Content-Range` (`<start>-<end>`, as the spec writes it; `bytes <start>-<end>/<total>`
 * is accepted too). Malformed → 400 BLOB_UPLOAD_INVALID.
 */
export function parseContentRange(header: string | undefined): ByteSpan | undefined {
  if (header === undefined || header === '') return undefined;
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!m) throw new RegistryError('BLOB_UPLOAD_INVALID', `Content-Range "${header.slice(0, 100)}" is not <start>-<end>`);
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) {
    throw new RegistryError('BLOB_UPLOAD_INVALID', `Content-Range "${header.slice(0, 100)}" ends before it starts`);
  }
  return { start, end };
}

/** The `Range` header of an upload's progress: bytes 0 through size-1 ("0-0" for an empty upload, as distribution sends). */
export function uploadedRange(size: number): string {
  return `0-${Math.max(0, size - 1)}`;
}
