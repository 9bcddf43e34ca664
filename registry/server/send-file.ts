import { promises as fs, readSync } from 'node:fs';
import type { FileSender } from '../../store/index.js';
import type { Context } from './context.js';

/** Bytes per read; a few buffers are reused for the whole response. */
const CHUNK = 1 << 20;
const BUFFERS = 3;
/** A 1 MiB read from the page cache takes well under this; one that takes longer went to the disk. */
const SLOW_READ_NS = 2_000_000n;

/**
 * Streams a byte range of a local file as the response body, reusing a few buffers instead of allocating
 * one per chunk: with a large heap, the garbage those allocations make costs more than the copying
 * (measured: ~0.75 GB/s with a fresh 1 MiB buffer per read, ~1.9 GB/s reusing three). Node has no
 * sendfile(2); this is the closest. Status and headers come from the Koa context.
 *
 * Reads of blobs come from the page cache nearly always, and are then done inline: a thread-pool hop per
 * MiB costs about a tenth of a pull's CPU, and on a small machine the extra runnable thread slows the
 * client down. A read that turns out slow (it went to the disk) sends the rest of the response through
 * the thread pool, so the event loop waits on the disk at most once per response.
 */
export async function sendFileRange(ctx: Context, path: string, start: number, length: number): Promise<void> {
  const file = await fs.open(path, 'r');
  ctx.respond = false;
  const res = ctx.res;
  res.statusCode = ctx.status;
  for (const [name, value] of Object.entries(ctx.response.headers)) {
    if (value !== undefined) res.setHeader(name, value as string | string[]);
  }
  res.setHeader('Content-Length', length);
  let closed = false;
  const onClose = () => (closed = true);
  res.once('close', onClose);
  const buffers = Array.from({ length: BUFFERS }, () => Buffer.allocUnsafeSlow(CHUNK));
  const writes: (Promise<void> | undefined)[] = new Array(BUFFERS);
  let inline = true;
  const read = async (buffer: Buffer, want: number, position: number): Promise<number> => {
    if (!inline) return (await file.read(buffer, 0, want, position)).bytesRead;
    const began = process.hrtime.bigint();
    const bytesRead = readSync(file.fd, buffer, 0, want, position);
    if (process.hrtime.bigint() - began > SLOW_READ_NS) inline = false;
    return bytesRead;
  };
  const written = (chunk: Buffer) =>
    new Promise<void>((resolve) => {
      // resolve on close too: a client that went away never acknowledges the write
      const done = () => {
        res.off('close', done);
        resolve();
      };
      res.once('close', done);
      res.write(chunk, done);
    });
  try {
    for (let sent = 0, i = 0; sent < length && !closed; i = (i + 1) % BUFFERS) {
      await writes[i];
      if (closed) break;
      const want = Math.min(CHUNK, length - sent);
      const bytesRead = await read(buffers[i]!, want, start + sent);
      if (bytesRead === 0) throw new Error(`${path} ended early (${sent} of ${length} bytes)`);
      sent += bytesRead;
      writes[i] = written(bytesRead === CHUNK ? buffers[i]! : buffers[i]!.subarray(0, bytesRead));
    }
    await Promise.all(writes);
    res.end();
  } catch (e) {
    res.destroy(e as Error);
  } finally {
    res.off('close', onClose);
    await file.close();
  }
}

/**
 * Cuts a response whose client stopped reading: no new write reached its socket for `idleMs`. Writes are
 * up to 1 MiB and a new one starts when an earlier one was taken by the kernel, so a client is cut when it
 * drains less than about 1 MiB per `idleMs` (35 KB/s at the default 30 s). The server
 * has no request timeout (http-server.ts: a large blob over a slow link takes as long as it takes), so a
 * client that stalls would otherwise hold its file or S3 connection for ever. The uploads' body idle
 * timeout (`uploads.body-idle-timeout`) serves downloads too; undefined never cuts. A stalled storage read
 * is cut the same way (S3 reads also time out on their own: s3-get.ts).
 */
export function cutWhenStalled(ctx: Context, idleMs: number | undefined): void {
  if (!idleMs) return;
  const socket = ctx.req.socket;
  let written = socket.bytesWritten;
  let movedAt = Date.now();
  // polled, not socket.setTimeout: the server sets that for keep-alive once the response is done
  const timer = setInterval(
    () => {
      if (socket.bytesWritten !== written) {
        written = socket.bytesWritten;
        movedAt = Date.now();
      } else if (Date.now() - movedAt >= idleMs) {
        socket.destroy(new Error(`the client read nothing of the blob for ${idleMs / 1000} s`));
      }
    },
    Math.max(50, Math.min(idleMs / 4, 5000)),
  );
  timer.unref();
  ctx.res.once('close', () => clearInterval(timer));
}

/**
 * Sends a blob range straight from the storage (S3: s3-get.ts) as the response body, past Koa: the
 * sender writes reused buffers to the socket (see FileSender). Status and headers come from the Koa
 * context. A failure midway cuts the connection (the status line is gone already).
 */
export async function sendFromStorage(ctx: Context, sender: FileSender): Promise<void> {
  ctx.length = sender.length;
  ctx.respond = false;
  const res = ctx.res;
  res.statusCode = ctx.status;
  for (const [name, value] of Object.entries(ctx.response.headers)) {
    if (value !== undefined) res.setHeader(name, value as string | string[]);
  }
  try {
    await sender.writeTo(res);
    res.end();
  } catch (e) {
    res.destroy(e as Error);
  }
}
