import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Digester, type Digest } from '../oci/index.js';

/** Bytes queued for a hashing thread before update() makes the producer wait. */
const HIGH_WATER = 16 << 20;
const LOW_WATER = 4 << 20;
/** Hashing threads: one per core (at most 4); parallel uploads hash on different cores. */
const THREADS = Math.max(1, Math.min(4, availableParallelism()));

type Reply =
  | { op: 'ack'; id: number; bytes: number }
  | { op: 'written'; id: number; error?: { message: string; code?: string } }
  | { op: 'digest'; id: number; hex: string | undefined };

/** A digester's state on the main thread while its hash lives on a hashing thread. */
interface Pending {
  /** Bytes sent with update() and not yet acknowledged. */
  queued: number;
  resume?: () => void;
  resolveDigest?: (hex: string | undefined) => void;
}

interface WriteWaiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

function writeError(error: { message: string; code?: string }): Error {
  return Object.assign(new Error(error.message), error.code ? { code: error.code } : {});
}

/** One worker thread keeping hash states by id; it keeps the process alive only while it owes answers. */
class HashThread {
  private worker?: Worker;
  private failed = false;
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
    if (!p) return;
    if (m.op === 'ack') {
      p.queued -= m.bytes;
      if (p.resume && p.queued <= LOW_WATER) {
        const resume = p.resume;
        p.resume = undefined;
        resume();
      }
    } else {
      this.pending.delete(m.id);
      p.resolveDigest?.(m.hex);
    }
  }

  /** The thread died: its hash states are gone. Producers go on, digests fail (callers rehash from disk). */
  private lost(): void {
    this.failed = true;
    this.worker = undefined;
    this.outstanding = 0;
    for (const p of this.pending.values()) {
      p.resume?.();
      p.resolveDigest?.(undefined);
    }
    this.pending.clear();
    for (const waiters of this.writeWaiters.values()) for (const w of waiters) w.reject(new Error('the hashing thread stopped'));
    this.writeWaiters.clear();
  }

  available(): boolean {
    return this.start() !== undefined;
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

/** The thread with the fewest streams; unstarted threads count as empty, so a second starts only for concurrent streams. */
function leastLoaded(): HashThread | undefined {
  const pick = threads.reduce((best, t) => (t.pending.size < best.pending.size ? t : best));
  return pick.available() ? pick : threads.find((t) => t.available());
}

/**
 * A sha256/sha512 digester (OpenSSL) that hashes on a worker thread, so the thread moving bytes between
 * socket and disk is not also the one hashing them (hashing is most of an upload's CPU). write() has that
 * thread also write the bytes to a local file; update() only hashes (chunks are copied once and handed
 * over) and returns a promise to wait on when the hashing thread falls behind. Falls back to hashing
 * in-thread when no worker can be started.
 */
export class OffThreadDigester {
  readonly algorithm: string;
  /** Bytes given to write() or update() so far. */
  size = 0;
  private readonly id = nextId++;
  private readonly local?: Digester;
  /** Undefined when no hashing thread could start. */
  private readonly thread?: HashThread;

  constructor(algorithm = 'sha256') {
    this.algorithm = algorithm;
    new Digester(algorithm); // validates the algorithm
    this.thread = leastLoaded();
    if (this.thread) {
      this.thread.pending.set(this.id, { queued: 0 });
      this.thread.tell({ op: 'open', id: this.id, alg: algorithm });
    } else this.local = new Digester(algorithm);
  }

  private get state(): Pending | undefined {
    return this.thread?.pending.get(this.id);
  }

  /** Whether write() is served by a hashing thread (else callers write the bytes and feed them to update()). */
  get writesFiles(): boolean {
    return this.state !== undefined;
  }

  /**
   * Writes `chunks`, in order, at the end of the open file `fd` (opened for append) on the hashing thread,
   * and hashes them there, so the bytes cross threads once and are never read back. With `handOver`, a
   * chunk that owns its whole memory moves to that thread without a copy and is unusable afterwards;
   * other chunks are copied. Resolves once the bytes are in the file and hashed; rejects with the write's
   * error (errno `code` kept).
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

  /** Feeds a chunk; the returned promise (when any) resolves once the hashing thread has caught up. */
  update(chunk: Uint8Array): Promise<void> | undefined {
    this.size += chunk.byteLength;
    if (this.local) {
      this.local.update(chunk);
      return undefined;
    }
    const p = this.state;
    if (!p) return undefined; // the hashing thread was lost; digest() will say so
    const copy = new Uint8Array(chunk.byteLength);
    copy.set(chunk);
    p.queued += copy.byteLength;
    this.thread!.post({ op: 'update', id: this.id, chunk: copy }, [copy.buffer]);
    if (p.queued < HIGH_WATER) return undefined;
    return new Promise((resolve) => (p.resume = resolve));
  }

  /** The digest of everything fed; throws when the hash state was lost (rehash the bytes then). */
  async digest(): Promise<Digest> {
    if (this.local) return this.local.digest();
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
    const p = this.state;
    if (!p) return;
    p.resume?.();
    this.thread!.pending.delete(this.id);
    this.thread!.tell({ op: 'drop', id: this.id });
  }
}
