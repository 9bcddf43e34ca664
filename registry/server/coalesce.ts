import { Transform, type TransformCallback } from 'node:stream';

/**
 * Gathers the socket's 16–64 KiB reads into ~1 MiB chunks before they reach the store: one hash update
 * and one file write per MiB instead of dozens, a large share of an upload's CPU time. The readable side
 * is in object mode so each gathered chunk is handed on as is, never concatenated again.
 */
export class Coalesce extends Transform {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(private readonly target = 1 << 20) {
    super({ readableObjectMode: true, readableHighWaterMark: 2, writableHighWaterMark: target });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.parts.push(chunk);
    this.size += chunk.length;
    if (this.size >= this.target) this.emitParts();
    cb();
  }

  override _flush(cb: TransformCallback): void {
    if (this.size > 0) this.emitParts();
    cb();
  }

  private emitParts(): void {
    const out = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    this.push(out);
  }
}
