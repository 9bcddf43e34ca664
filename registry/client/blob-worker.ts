/**
 * A worker thread that downloads one large blob straight into the store: hashing (the CPU-heavy part of
 * a pull) then runs in parallel for parallel layers instead of queueing on the main thread. The main
 * thread keeps auth, retries and endpoint choice; this side only does "GET into the ingest" and "commit".
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Transform, type TransformCallback } from 'node:stream';
import { DigestMismatchError, SizeMismatchError, Store, type Ingest } from '../../store/index.js';
import { readBody, Transport, type TransportOptions } from './transport.js';
import { endCleanly } from './blob-fetch.js';

export interface WorkerData {
  root: string;
  transport: TransportOptions;
}

export type WorkerRequest =
  | { id: number; type: 'fetch'; url: string; headers: Record<string, string>; verifyTls: boolean }
  | { id: number; type: 'commit'; digest: string; size: number }
  | { id: number; type: 'cancel' };

export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  actual?: string;
}

export type WorkerReply =
  | { id: number; type: 'response'; status: number; headers: Record<string, string | string[] | undefined>; body?: Uint8Array; size: number; streamError?: SerializedError }
  | { id: number; type: 'done' }
  | { id: number; type: 'error'; error: SerializedError }
  | { type: 'progress'; bytes: number };

function serialize(e: unknown): SerializedError {
  const err = e as Error & { code?: string; actual?: string };
  return { name: err?.name ?? 'Error', message: err?.message ?? String(e), ...(err?.code ? { code: err.code } : {}), ...(err?.actual ? { actual: err.actual } : {}) };
}

class Progress extends Transform {
  private last = 0;
  constructor(private count: number) {
    super({ highWaterMark: 1 << 20 });
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.count += chunk.length;
    if (Date.now() - this.last > 100) {
      this.last = Date.now();
      parentPort!.postMessage({ type: 'progress', bytes: this.count } satisfies WorkerReply);
    }
    cb(null, chunk);
  }
}

const data = workerData as WorkerData;
const storePromise = Store.open(data.root, { noSweep: true });
const transport = new Transport(data.transport);
let ingest: Ingest | undefined;

async function fetchInto(msg: Extract<WorkerRequest, { type: 'fetch' }>): Promise<WorkerReply> {
  const store = await storePromise;
  ingest ??= await store.ingests.create();
  let offset = await ingest.size();
  const headers = { ...msg.headers, ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) };
  const res = await transport.request({ method: 'GET', url: new URL(msg.url), headers, verifyTls: msg.verifyTls });
  const start = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
  const usable = res.status === 200 || (res.status === 206 && offset > 0 && start && Number(start[1]) === offset);
  if (!usable) {
    const body = await readBody(res, 64 * 1024).catch(() => Buffer.alloc(0));
    // A 206 for the wrong range: start over on the next attempt.
    if (res.status === 206) {
      await ingest.cancel();
      ingest = undefined;
      return { id: msg.id, type: 'response', status: 503, headers: {}, size: 0, body: Buffer.from('range answered from the wrong offset') };
    }
    return { id: msg.id, type: 'response', status: res.status, headers: res.headers, body, size: offset };
  }
  if (res.status === 200 && offset > 0) {
    await ingest.cancel(); // the server ignored the range
    ingest = await store.ingests.create();
    offset = 0;
  }
  const progress = new Progress(offset);
  endCleanly(res.body, progress);
  let streamError: SerializedError | undefined;
  try {
    await ingest.append(progress, { handOver: true }); // response-body chunks pass through Progress and are used by nobody else
  } catch (e) {
    streamError = serialize(e);
  }
  return { id: msg.id, type: 'response', status: res.status, headers: res.headers, size: await ingest.size(), ...(streamError ? { streamError } : {}) };
}

parentPort!.on('message', async (msg: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    if (msg.type === 'fetch') reply = await fetchInto(msg);
    else if (msg.type === 'commit') {
      if (!ingest) throw new Error('nothing was downloaded');
      const current = ingest;
      ingest = undefined;
      await current.commit(msg.digest as never, msg.size);
      reply = { id: msg.id, type: 'done' };
    } else {
      await ingest?.cancel();
      ingest = undefined;
      transport.close();
      reply = { id: msg.id, type: 'done' };
    }
  } catch (e) {
    if (e instanceof DigestMismatchError || e instanceof SizeMismatchError) ingest = undefined;
    reply = { id: msg.id, type: 'error', error: serialize(e) };
  }
  parentPort!.postMessage(reply);
});
