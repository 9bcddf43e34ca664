import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Digester, type Digest } from '../oci/index.js';

/** Hashing threads: one per core (at most 4); parallel uploads hash on different cores. */
const THREADS = Math.max(1, Math.min(4, availableParallelism()));

type Reply = { op: 'written'; id: number; error?: { message: string; code?: string | undefined } } | { op: 'digest'; id: number; hex: string | undefined };

/** A digester's state on the main thread while its hash lives on a hashing thread. */
interface Pending {
  resolveDigest?: (hex: string | undefined) => void;
}

interface WriteWaiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

function writeError(error: { message: string; code?: string | undefined }): Error {
  return Object.assign(new Error(error.message), error.code ? { code: error.code } : {});
}

/** One worker thread keeping hash states by id; it keeps the process alive only while it owes answers. */
class HashThread {
  private worker: Worker | undefined;
  private failed = false;
  /** The thread has started running; until then its streams' bytes are written and hashed by their callers. */
  online = false;
  private outstanding = 0;
  /** Digesters on this thread, by id, until digested or disposed. */
  readonly pending = new Map<number, Pending>();
  /**
   * Writes posted and not yet answered, by id, oldest first (the thread answers them in order). Kept
   * apart from `pending` so a disposed digester's writes are still answered: the caller must not close
   * the file while this thread may still write to its descriptor.
   */
  private readonly writeWaiters = new Map<number, WriteWaiter[]>();

  private start(): Worker | undefined {
    if (this.worker || this.failed) return this.worker;
    try {
      // execArgv: [] so flags of the main process (e.g. --input-type) do not break the worker's start.
      this.worker = new Worker(new URL('./hash-thread.js', import.meta.url), { execArgv: [] });
    } catch {
      this.failed = true;
      return undefined;
    }
    this.worker.once('online', () => {
      this.online = true;
    });
    this.worker.on('message', (m: Reply) => this.answer(m));
    this.worker.on('error', () => this.lost());
    // After the listeners: adding a 'message' listener refs the worker again.
    this.worker.unref();
    return this.worker;
  }

  private answer(m: Reply): void {
    if (--this.outstanding === 0) this.worker?.unref();
    if (m.op === 'written') {
      const waiters = this.writeWaiters.get(m.id);
      const w = waiters?.shift();
      if (waiters?.length === 0) this.writeWaiters.delete(m.id);
      if (m.error) w?.reject(writeError(m.error));
      else w?.resolve();
      return;
    }
    const p = this.pending.get(m.id);
    this.pending.delete(m.id);
    p?.resolveDigest?.(m.hex);
  }

  /** The thread died: its hash states are gone. Writes fail, digests too (callers rehash from disk). */
  private lost(): void {
    this.failed = true;
    this.online = false;
    this.worker = undefined;
    this.outstanding = 0;
    for (const p of this.pending.values()) p.resolveDigest?.(undefined);
    this.pending.clear();
    for (const waiters of this.writeWaiters.values()) for (const w of waiters) w.reject(new Error('the hashing thread stopped'));
    this.writeWaiters.clear();
  }

  available(): boolean {
    return this.start() !== undefined;
  }

  /** Starts the thread; resolves once it runs or could not start. */
  running(): Promise<void> {
    const worker = this.start();
    if (!worker || this.online) return Promise.resolve();
    // held while starting, so that a caller awaiting this is not left with an event loop that has ended
    worker.ref();
    return new Promise((resolve) => {
      // bounded: a thread that neither runs nor fails in 5 s leaves its callers to write and hash in place
      const timer = setTimeout(() => settled(), 5_000);
      const settled = () => {
        clearTimeout(timer);
        if (this.outstanding === 0) this.worker?.unref();
        resolve();
      };
      worker.once('online', settled);
      worker.once('error', settled);
    });
  }

  /** Asked to start (it may still be starting, or have failed). */
  get started(): boolean {
    return this.worker !== undefined || this.failed;
  }

  /** Posts a message the thread answers; false when the thread is gone. */
  post(message: object, transfer?: ArrayBuffer[]): boolean {
    const worker = this.start();
    if (!worker) return false;
    if (this.outstanding++ === 0) worker.ref();
    worker.postMessage(message, transfer);
    return true;
  }

  /** Posts a write; the promise settles when the thread answers it (or dies). */
  postWrite(id: number, message: object, transfer: ArrayBuffer[]): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.post(message, transfer)) return reject(new Error('the hashing thread stopped'));
      let waiters = this.writeWaiters.get(id);
      if (!waiters) this.writeWaiters.set(id, (waiters = []));
      waiters.push({ resolve, reject });
    });
  }

  /** A message with no answer (it keeps nothing waiting, so the thread stays unreferenced). */
  tell(message: object): void {
    this.start()?.postMessage(message);
  }
}

const threads = Array.from({ length: THREADS }, () => new HashThread());
let nextId = 1;

/** Blobs this large (bytes) are worth a hashing thread: below, writing and hashing in place costs less than its start. */
export const THREAD_WORTHY_BYTES = 8 << 20;

/**
 * Starts a hashing thread now, for what is about to write large blobs (a server taking uploads, a RUN
 * step's layer), so that they find it running. Until then blobs are written and hashed by their callers.
 * Resolves once the thread runs or could not start (callers need not wait).
 */
export function warmHashThread(): Promise<void> {
  return threads[0]!.running();
}

/**
 * The thread with the fewest streams; unstarted threads count as empty, so a second starts only for
 * concurrent streams. None before a first thread was asked for (warmHashThread): a thread costs 40–60 ms
 * to start and as much again to stop at exit if it is still starting, more than a small blob's hashing.
 */
function leastLoaded(): HashThread | undefined {
  if (!threads[0]!.started) return undefined;
  const pick = threads.reduce((best, t) => (t.pending.size < best.pending.size ? t : best));
  return pick.available() ? pick : threads.find((t) => t.available());
}

/**
 * A sha256/sha512 digester (OpenSSL) on a worker thread that also writes the bytes it hashes to a local
 * file, so the thread moving bytes from socket to disk is not also the one hashing them (hashing is most
 * of an upload's CPU) and the bytes cross threads once, never read back. Without a worker thread
 * (`writesFiles` false) callers write the bytes themselves and hash them otherwise.
 */
export class OffThreadDigester {
  readonly algorithm: string;
  /** Bytes given to write() so far. */
  size = 0;
  private readonly id = nextId++;
  /** Undefined when no hashing thread could start. */
  private readonly thread: HashThread | undefined;

  constructor(algorithm = 'sha256') {
    this.algorithm = algorithm;
    new Digester(algorithm); // validates the algorithm
    this.thread = leastLoaded();
    if (!this.thread) return;
    this.thread.pending.set(this.id, {});
    this.thread.tell({ op: 'open', id: this.id, alg: algorithm });
  }

  private get state(): Pending | undefined {
    return this.thread?.pending.get(this.id);
  }

  /**
   * Whether write() is served by a hashing thread: not before the thread runs (it stops being when the
   * thread dies or after dispose()). A thread takes ~40–60 ms to start, far more than writing and hashing
   * a small blob in place, so a caller asks at the start of each append and writes the bytes itself while
   * the thread is still starting (they are then hashed at commit). The first small layers of a build and
   * the first upload after a start do not wait for the thread; the large ones after them use it.
   */
  get writesFiles(): boolean {
    return this.state !== undefined && this.thread!.online;
  }

  /**
   * Writes `chunks`, in order, at the end of the open file `fd` (opened for append) on the hashing thread,
   * and hashes them there. With `handOver`, a chunk that owns its whole memory moves to that thread
   * without a copy and is unusable afterwards; other chunks are copied. Resolves once the bytes are in the
   * file and hashed (never waiting for more bytes); rejects with the write's error (errno `code` kept).
   */
  write(fd: number, chunks: readonly Uint8Array[], handOver: boolean): Promise<void> {
    if (!this.state) return Promise.reject(new Error('the hashing thread stopped'));
    const moved: Uint8Array[] = [];
    const transfer = new Set<ArrayBuffer>();
    for (const chunk of chunks) {
      this.size += chunk.byteLength;
      const buffer = chunk.buffer;
      const owned = handOver && buffer instanceof ArrayBuffer && chunk.byteOffset === 0 && chunk.byteLength === buffer.byteLength && !transfer.has(buffer);
      const view = owned ? chunk : new Uint8Array(chunk);
      moved.push(view);
      transfer.add(view.buffer as ArrayBuffer);
    }
    return this.thread!.postWrite(this.id, { op: 'write', id: this.id, fd, chunks: moved }, [...transfer]);
  }

  /** The digest of everything written; throws when the hash state was lost or a write failed (rehash the bytes then). */
  async digest(): Promise<Digest> {
    const p = this.state;
    if (!p) throw new Error('hash state lost');
    const hex = await new Promise<string | undefined>((resolve) => {
      p.resolveDigest = resolve;
      if (!this.thread!.post({ op: 'digest', id: this.id })) resolve(undefined);
    });
    if (hex === undefined) throw new Error('hash state lost');
    return `${this.algorithm}:${hex}` as Digest;
  }

  /** Forgets the state (the ingest failed or went away). Writes already posted are still answered. */
  dispose(): void {
    if (!this.state) return;
    this.thread!.pending.delete(this.id);
    this.thread!.tell({ op: 'drop', id: this.id });
  }
}
