import type { Readable } from 'node:stream';
import { SourceError, SourceIdleError } from '../errors.js';
import type { AppendControl, FileWriter } from './storage-driver.js';

/** Small reads (a socket's 16–64 KiB) are gathered and written with one call per ~1 MiB: no copying. */
const BATCH_BYTES = 1 << 20;

/** How reading a source ended: at its end, stopped on the source's side (kept what arrived), or aborted. */
type SourceOutcome = { ended: true } | { ended: false; error: Error; aborted: boolean };

/**
 * Feeds every chunk of `source` to `onChunk`, pausing the source while the promise it returns (if any)
 * is pending. 'data' events instead of an async iterator: an upload is thousands of socket reads, and the
 * iterator's promise per chunk was a measurable share of the main thread's work. Resolves with how the
 * source ended: at its end; failed, closed early or idle for `idleMs` while read (a SourceError); or
 * `signal` aborted. Rejects when `onChunk` fails. Never settles while an `onChunk` promise is still
 * pending, so the caller may close what onChunk writes to. Stopping early leaves the source paused.
 */
function forEachChunk(source: Readable, onChunk: (chunk: Buffer) => Promise<void> | undefined, { signal, idleMs }: AppendControl): Promise<SourceOutcome> {
  return new Promise<SourceOutcome>((resolve, reject) => {
    let settled = false;
    let current: Promise<void> | undefined;
    let idle: NodeJS.Timeout | undefined;
    const watchIdle = () => {
      if (idleMs !== undefined) idle = setTimeout(() => stop(new SourceIdleError(idleMs), false), idleMs);
    };
    const detach = () => {
      settled = true;
      clearTimeout(idle);
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onError);
      source.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
    };
    const settle = (outcome: SourceOutcome) => {
      if (settled) return;
      detach();
      if (!outcome.ended) source.pause();
      // A write under way still counts: it may fail, and the caller closes the file only after it.
      if (current) current.then(() => resolve(outcome), reject);
      else resolve(outcome);
    };
    const stop = (error: Error, aborted: boolean) => settle({ ended: false, error, aborted });
    const onData = (chunk: Buffer) => {
      idle?.refresh();
      const waiting = onChunk(chunk);
      if (!waiting) return;
      // Held back by the writes: the source is not idle meanwhile.
      clearTimeout(idle);
      idle = undefined;
      source.pause();
      current = waiting;
      waiting.then(
        () => {
          current = undefined;
          if (settled) return;
          watchIdle();
          source.resume();
        },
        (e: Error) => {
          current = undefined;
          if (settled) return;
          detach();
          source.pause();
          reject(e);
        },
      );
    };
    const onEnd = () => settle({ ended: true });
    const onError = (e: Error) => stop(new SourceError(`the source failed: ${e.message}`, { cause: e }), false);
    const onClose = () => stop(new SourceError('the source closed before its end'), false);
    const onAbort = () => stop(signal!.reason instanceof Error ? signal!.reason : new Error(String(signal!.reason)), true);
    if (signal?.aborted) return resolve({ ended: false, error: signal.reason as Error, aborted: true });
    if (source.readableEnded) return resolve({ ended: true });
    if (source.destroyed) return resolve({ ended: false, error: new SourceError('the source closed before its end'), aborted: false });
    source.on('data', onData);
    source.once('end', onEnd);
    source.once('error', onError);
    source.once('close', onClose);
    signal?.addEventListener('abort', onAbort, { once: true });
    watchIdle();
    source.resume();
  });
}

/**
 * Streams `source` into `writer` in batches of about 1 MiB, at most `writer.maxPending` writes outstanding,
 * and commits; resolves with the file's size. Every driver's appendFrom is this over its writer.
 * - The source ends: the last batch is written, the writer commits.
 * - The source fails, closes early or goes idle (`control.idleMs`): what arrived is written and committed
 *   (the upload resumes after it), then SourceError (SourceIdleError) is thrown.
 * - `control.signal` aborts (a newer request took over): bytes not yet written are dropped, the writer is
 *   cancelled once no write runs (an append keeps what it wrote), and the signal's reason is thrown.
 * - A write fails: the writer is cancelled once no write runs, and the write's error is thrown.
 */
export async function pumpInto(source: Readable, writer: FileWriter, control: AppendControl = {}): Promise<number> {
  // Writes under way, oldest first; each is awaited in turn (the no-op catch only keeps one that fails
  // while nobody waits on it yet from being reported as unhandled).
  const writes: Promise<void>[] = [];
  let batch: Buffer[] = [];
  let batchBytes = 0;
  const flushBatch = async () => {
    const chunks = batch;
    const length = batchBytes;
    batch = [];
    batchBytes = 0;
    while (writes.length >= writer.maxPending) await writes.shift();
    const written = writer.write(chunks, length);
    written.catch(() => undefined);
    writes.push(written);
  };
  let outcome: SourceOutcome;
  try {
    outcome = await forEachChunk(
      source,
      (chunk) => {
        batch.push(chunk);
        batchBytes += chunk.length;
        return batchBytes >= BATCH_BYTES ? flushBatch() : undefined;
      },
      control,
    );
    // Bytes that arrived before the source stopped are kept (the upload resumes after them); an
    // abort means someone else takes over from what is stored, so the rest is dropped.
    if (batchBytes > 0 && !(!outcome.ended && outcome.aborted)) await flushBatch();
    for (const written of writes) await written;
  } catch (e) {
    // The writer is released only when no write can still be running on it.
    await Promise.allSettled(writes);
    await writer.cancel().catch(() => undefined);
    throw e;
  }
  if (!outcome.ended && outcome.aborted) {
    await writer.cancel();
    throw outcome.error;
  }
  const size = await writer.commit();
  if (!outcome.ended) throw outcome.error;
  return size;
}
