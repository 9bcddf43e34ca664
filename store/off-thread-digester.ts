import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Digester, type Digest } from '../oci/index.js';

/** Bytes queued for a hashing thread before update() makes the producer wait. */
const HIGH_WATER = 16 << 20;
const LOW_WATER = 4 << 20;
/** Hashing threads: one per core (at most 4); parallel uploads hash on different cores. */
const THREADS = Math.max(1, Math.min(4, availableParallelism()));

interface Pending {
  queued: number;
  resume?: () => void;
  resolveDigest?: (hex: string | undefined) => void;
}

interface WriteWaiter {
  resolve: () => void;
  reject: (e: Error) => void;
}

type Reply =
  | { op: 'ack'; id: number; bytes: number }
  | { op: 'written'; id: number; error?: { message: string; code?: string } }
  | { op: 'digest'; id: number; hex: string | undefined }
  | { op: 'stats'; lanes: number; openssl: number };

/** How many streams hashed each way: in SIMD lanes shared with other streams, or alone with OpenSSL. */
export interface HashingStats {
  lanes: number;
  openssl: number;
}

function writeError(error: { message: string; code?: string }): Error {
  return Object.assign(new Error(error.message), error.code ? { code: error.code } : {});
}

const pending = new Map<number, Pending>();
let nextId = 1;

/** One worker thread keeping hash states by id; it keeps the process alive only while it owes answers. */
class HashThread {
  private worker?: Worker;
  private failed = false;
  private outstanding = 0;
  private readonly ids = new Set<number>();
  private readonly statsWaiters: ((stats: HashingStats) => void)[] = [];
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
    this.worker.on('message', (m: Reply) => {
      if (--this.outstanding === 0) this.worker?.unref();
      if (m.op === 'stats') {
        this.statsWaiters.shift()?.({ lanes: m.lanes, openssl: m.openssl });
        return;
      }
      if (m.op === 'written') {
        const waiters = this.writeWaiters.get(m.id);
        const w = waiters?.shift();
        if (waiters?.length === 0) this.writeWaiters.delete(m.id);
        if (m.error) w?.reject(writeError(m.error));
        else w?.resolve();
        return;
      }
      const p = pending.get(m.id);
      if (!p) return;
      if (m.op === 'ack') {
        p.queued -= m.bytes;
        if (p.resume && p.queued <= LOW_WATER) {
          const resume = p.resume;
          p.resume = undefined;
          resume();
        }
      } else {
        pending.delete(m.id);
        this.ids.delete(m.id);
        p.resolveDigest?.(m.hex);
      }
    });
    this.worker.on('error', () => {
      // Lost hash states: waiting producers go on, digests fail (callers rehash the bytes from disk).
      this.failed = true;
      this.worker = undefined;
      this.outstanding = 0;
      for (const id of this.ids) {
        const p = pending.get(id);
        p?.resume?.();
        p?.resolveDigest?.(undefined);
        pending.delete(id);
      }
      this.ids.clear();
      for (const w of this.statsWaiters.splice(0)) w({ lanes: 0, openssl: 0 });
      for (const waiters of this.writeWaiters.values()) for (const w of waiters) w.reject(new Error('the hashing thread stopped'));
      this.writeWaiters.clear();
    });
    // After the listeners: adding a 'message' listener refs the worker again.
    this.worker.unref();
    return this.worker;
  }

  available(): boolean {
    return this.start() !== undefined;
  }

  /** Streams given to this thread and not finished. */
  get load(): number {
    return this.ids.size;
  }

  register(id: number): void {
    this.ids.add(id);
  }

  /** Posts a write; the promise settles when the thread answers it (or dies). */
  postWrite(id: number, message: object, transfer: ArrayBuffer[]): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.post(message, transfer)) {
        reject(new Error('the hashing thread stopped'));
        return;
      }
      let waiters = this.writeWaiters.get(id);
      if (!waiters) this.writeWaiters.set(id, (waiters = []));
      waiters.push({ resolve, reject });
    });
  }

  post(message: object, transfer?: ArrayBuffer[]): boolean {
    const worker = this.start();
    if (!worker) return false;
    if (this.outstanding++ === 0) worker.ref();
    worker.postMessage(message, transfer);
    return true;
  }

  drop(id: number): void {
    this.ids.delete(id);
    this.worker?.postMessage({ op: 'drop', id });
  }

  /** This thread's counts (zero when it never started). */
  stats(): Promise<HashingStats> {
    if (!this.worker) return Promise.resolve({ lanes: 0, openssl: 0 });
    return new Promise((resolve) => {
      this.statsWaiters.push(resolve);
      this.post({ op: 'stats' });
    });
  }

  /** A message with no answer (it keeps nothing waiting, so the thread stays unreferenced). */
  tell(message: object): void {
    this.start()?.postMessage(message);
  }
}

const threads = Array.from({ length: THREADS }, () => new HashThread());

/** Streams hashed each way so far, over all hashing threads. */
export async function hashingStats(): Promise<HashingStats> {
  const all = await Promise.all(threads.map((t) => t.stats()));
  return all.reduce((sum, s) => ({ lanes: sum.lanes + s.lanes, openssl: sum.openssl + s.openssl }), { lanes: 0, openssl: 0 });
}

/**
 * The thread for a stream's first bytes: the one with the fewest streams. Streams arriving together
 * spread evenly, so each thread has several to hash side by side in its SIMD lanes.
 */
function leastLoaded(): HashThread | undefined {
  // Unstarted threads count as empty, so a second thread starts only once two streams are open at once.
  const pick = threads.reduce((best, t) => (t.load < best.load ? t : best));
  return pick.available() ? pick : threads.find((t) => t.available());
}

/**
 * A sha256/sha512 digester that hashes on a worker thread, so the thread moving bytes between socket and
 * disk is not also the one hashing them (hashing is most of an upload's CPU). write() has that thread also
 * write the bytes to a local file; update() only hashes (chunks are copied once and handed over) and
 * returns a promise to wait on when the hashing thread falls behind. Falls back to hashing in-thread when
 * no worker can be started.
 */
export class OffThreadDigester {
  readonly algorithm: string;
  size = 0;
  private readonly id = nextId++;
  private readonly local?: Digester;
  /** The least loaded thread when the digester was made; undefined when none could start. */
  private readonly thread?: HashThread;

  constructor(algorithm = 'sha256') {
    this.algorithm = algorithm;
    new Digester(algorithm); // validates the algorithm
    this.thread = leastLoaded();
    if (this.thread) {
      this.thread.register(this.id);
      pending.set(this.id, { queued: 0 });
      this.announce();
    } else this.local = new Digester(algorithm);
  }

  /** Whether write() is served by a hashing thread (else callers write the bytes and feed them to update()). */
  get writesFiles(): boolean {
    return this.local === undefined && pending.has(this.id);
  }

  /**
   * Writes `chunks`, in order, at the end of the open file `fd` (opened for append) on the hashing thread,
   * and hashes them there, so the bytes cross threads once and are never read back. With `handOver`, a
   * chunk that owns its whole memory moves to that thread without a copy and is unusable afterwards;
   * other chunks are copied. Resolves once the bytes are in the file; rejects with the write's error.
   */
  write(fd: number, chunks: readonly Uint8Array[], handOver: boolean): Promise<void> {
    const p = pending.get(this.id);
    if (!p) return Promise.reject(new Error('the hashing thread stopped'));
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
    return this.thread!.postWrite(this.id, { op: 'write', id: this.id, alg: this.algorithm, fd, chunks: moved }, [...transfer]);
  }

  /**
   * Says that bytes may follow soon (an upload was created, or an append starts): the hashing thread
   * counts this stream as company for a moment for big streams deciding how to hash.
   */
  announce(): void {
    if (this.thread && pending.has(this.id)) this.thread.tell({ op: 'open', id: this.id, alg: this.algorithm });
  }

  /** Feeds a chunk; the returned promise (when any) resolves once the hashing thread has caught up. */
  update(chunk: Uint8Array): Promise<void> | undefined {
    this.size += chunk.byteLength;
    if (this.local) {
      this.local.update(chunk);
      return undefined;
    }
    const p = pending.get(this.id);
    if (!p) return undefined; // the hashing thread was lost; digest() will say so
    const copy = new Uint8Array(chunk.byteLength);
    copy.set(chunk);
    p.queued += copy.byteLength;
    this.thread!.post({ op: 'update', id: this.id, alg: this.algorithm, chunk: copy }, [copy.buffer]);
    if (p.queued < HIGH_WATER) return undefined;
    return new Promise((resolve) => (p.resume = resolve));
  }

  /** The digest of everything fed; throws when the hashing thread was lost (rehash the bytes then). */
  async digest(): Promise<Digest> {
    if (this.local) return this.local.digest();
    const p = pending.get(this.id);
    if (!p) throw new Error('hash state lost');
    const hex = await new Promise<string | undefined>((resolve) => {
      p.resolveDigest = resolve;
      if (!this.thread!.post({ op: 'digest', id: this.id, alg: this.algorithm })) resolve(undefined);
    });
    if (hex === undefined) throw new Error('hash state lost');
    return `${this.algorithm}:${hex}` as Digest;
  }

  /** Forgets the state (the ingest failed or went away). */
  dispose(): void {
    const p = pending.get(this.id);
    if (this.local || !p) return;
    p.resume?.();
    pending.delete(this.id);
    this.thread?.drop(this.id);
  }
}
