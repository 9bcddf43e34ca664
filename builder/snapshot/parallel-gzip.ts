import { Transform, type TransformCallback } from 'node:stream';
import { constants, crc32, deflateRaw, type ZlibOptions } from 'node:zlib';
import { promisify } from 'node:util';

const deflate = promisify<Buffer, ZlibOptions, Buffer>(deflateRaw);

const BLOCK = 1024 * 1024;
const DICTIONARY = 32 * 1024;
// gzip header: magic, deflate, no flags, mtime 0, no extra flags, OS = Unix (what zlib itself writes)
const HEADER = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03]);

/**
 * gzip compression on all cores, the way pigz does it: the input is cut into fixed 1 MiB blocks, each
 * deflated on the libuv thread pool with the previous block's last 32 KiB as its dictionary and ending in
 * a sync flush, and the pieces are joined into one ordinary single-member gzip stream (CRC-32 and length
 * trailer computed in order). Block boundaries depend only on byte offsets, so the output is as
 * deterministic as a single-threaded gzip's.
 */
export class ParallelGzip extends Transform {
  private pending: Buffer[] = [];
  private pendingSize = 0;
  private previousTail: Buffer | undefined;
  private readonly inFlight: Array<Promise<Buffer>> = [];
  private crc = 0;
  private length = 0;
  private started = false;

  constructor(
    private readonly level = 6,
    private readonly maxInFlight = 6,
  ) {
    super({ highWaterMark: BLOCK });
  }

  private schedule(block: Buffer, last: boolean): void {
    this.crc = crc32(block, this.crc);
    this.length = (this.length + block.length) % 2 ** 32;
    // an output buffer larger than any block's deflate output: one thread-pool round trip per block
    const options: ZlibOptions = { level: this.level, chunkSize: BLOCK + 64 * 1024, finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH };
    if (this.previousTail) options.dictionary = this.previousTail;
    this.previousTail =
      block.length >= DICTIONARY
        ? block.subarray(block.length - DICTIONARY)
        : Buffer.concat([this.previousTail ?? Buffer.alloc(0), block]).subarray(-DICTIONARY);
    const job = deflate(block, options);
    job.catch(() => undefined); // observed when awaited in order
    this.inFlight.push(job);
  }

  private async drain(until: number): Promise<void> {
    if (!this.started) {
      this.push(HEADER);
      this.started = true;
    }
    while (this.inFlight.length > until) this.push(await this.inFlight.shift()!);
  }

  /** The first n pending bytes (copied only when they span chunks). */
  private takeBytes(n: number): Buffer {
    const first = this.pending[0];
    let block: Buffer;
    if (first !== undefined && first.length >= n) {
      block = first.subarray(0, n);
      if (first.length > n) this.pending[0] = first.subarray(n);
      else this.pending.shift();
    } else {
      block = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const head = this.pending[0];
        if (head === undefined) throw new Error(`parallel gzip: ${n} bytes requested but only ${filled} pending`);
        const used = Math.min(head.length, n - filled);
        head.copy(block, filled, 0, used);
        filled += used;
        if (used === head.length) this.pending.shift();
        else this.pending[0] = head.subarray(used);
      }
    }
    this.pendingSize -= n;
    return block;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.pending.push(chunk);
    this.pendingSize += chunk.length;
    const work = async () => {
      while (this.pendingSize >= BLOCK) {
        this.schedule(this.takeBytes(BLOCK), false);
        await this.drain(this.maxInFlight - 1);
      }
    };
    work().then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    this.schedule(this.pendingSize ? this.takeBytes(this.pendingSize) : Buffer.alloc(0), true);
    this.drain(0)
      .then(() => {
        const trailer = Buffer.alloc(8);
        trailer.writeUInt32LE(this.crc >>> 0, 0);
        trailer.writeUInt32LE(this.length >>> 0, 4);
        this.push(trailer);
        callback();
      })
      .catch(callback);
  }
}
