import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** A content digest such as `sha256:<64 hex>`; validated at the boundary, trusted afterwards. */
export type Digest = string & { readonly __digest: unique symbol };
/** The digest of a layer's uncompressed tar stream (a config's rootfs.diff_ids entry). */
export type DiffID = Digest;
/** The chain of diffIDs of a layer and its parents, as the OCI image spec defines it. */
export type ChainID = Digest;

export class DigestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DigestError';
  }
}

const algorithms: Record<string, { hex: RegExp; node: string }> = {
  sha256: { hex: /^[a-f0-9]{64}$/, node: 'sha256' },
  sha512: { hex: /^[a-f0-9]{128}$/, node: 'sha512' },
};

/** Parses `alg:hex`, rejecting unknown algorithms and malformed encodings with a one-line reason. */
export function parseDigest(value: string): Digest {
  const colon = value.indexOf(':');
  if (colon <= 0) throw new DigestError(`invalid digest "${value}": expected <algorithm>:<hex>`);
  const alg = value.slice(0, colon);
  const hex = value.slice(colon + 1);
  if (!/^[a-z0-9]+(?:[.+_-][a-z0-9]+)*$/.test(alg)) throw new DigestError(`invalid digest "${value}": malformed algorithm`);
  const known = algorithms[alg];
  if (!known) throw new DigestError(`unsupported digest algorithm "${alg}" in "${value}" (supported: sha256, sha512)`);
  if (!known.hex.test(hex)) throw new DigestError(`invalid digest "${value}": ${alg} needs ${alg === 'sha256' ? 64 : 128} lowercase hex characters`);
  return value as Digest;
}

export function isDigest(value: string): value is Digest {
  try {
    parseDigest(value);
    return true;
  } catch {
    return false;
  }
}

export function digestAlgorithm(d: Digest): string {
  return d.slice(0, d.indexOf(':'));
}

export function digestHex(d: Digest): string {
  return d.slice(d.indexOf(':') + 1);
}

export function digestOf(data: string | Uint8Array, algorithm = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}` as Digest;
}

/** Incremental digest computation for streamed content. */
export class Digester {
  readonly algorithm: string;
  private readonly hash: Hash;
  size = 0;
  constructor(algorithm = 'sha256') {
    if (!algorithms[algorithm]) throw new DigestError(`unsupported digest algorithm "${algorithm}"`);
    this.algorithm = algorithm;
    this.hash = createHash(algorithms[algorithm].node);
  }
  update(chunk: Uint8Array): void {
    this.size += chunk.length;
    this.hash.update(chunk);
  }
  digest(): Digest {
    return `${this.algorithm}:${this.hash.digest('hex')}` as Digest;
  }
}

/** A pass-through stream that digests what flows through it; read `.digest()` after it ends. */
export class DigestStream extends Transform {
  private readonly digester: Digester;
  private result?: Digest;
  constructor(algorithm = 'sha256') {
    super();
    this.digester = new Digester(algorithm);
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.digester.update(chunk);
    cb(null, chunk);
  }
  get size(): number {
    return this.digester.size;
  }
  digest(): Digest {
    this.result ??= this.digester.digest();
    return this.result;
  }
}
