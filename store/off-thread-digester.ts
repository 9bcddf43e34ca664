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

type Reply = { op: 'ack'; id: number; bytes: number } | { op: 'digest'; id: number; hex: string | undefined };

const pending = new Map<number, Pending>();
let nextId = 1;

/** One worker thread keeping hash states by id; it keeps the process alive only while it owes answers. */
class HashThread {
  private worker?: Worker;
  private failed = false;
  private outstanding = 0;
  private readonly ids = new Set<number>();

  private start(): Worker | undefined {
    if (this.worker || this.failed) return this.worker;
    try {
      // execArgv: [] so flags of the main process (e.g. --input-type) do not break the worker's start.
      this.worker = new Worker(new URL('./hash-thread.js', import.meta.url), { execArgv: [] });
    } catch {
      this.failed = true;
      return undefined;
    }
    this.worker.unref();
    this.worker.on('message', (m: Reply) => {
      if (--this.outstanding === 0) this.worker?.unref();
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
    });
    return this.worker;
  }

  available(): boolean {
    return this.start() !== undefined;
  }

  register(id: number): void {
    this.ids.add(id);
    pending.set(id, { queued: 0 });
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
}

const threads = Array.from({ length: THREADS }, () => new HashThread());

/**
 * A sha256/sha512 digester that hashes on a worker thread, so the thread moving bytes between socket and
 * disk is not also the one hashing them (hashing is most of an upload's CPU). Chunks are copied once and
 * handed over; update() returns a promise to wait on when the hashing thread falls behind. Falls back to
 * hashing in-thread when no worker can be started.
 */
export class OffThreadDigester {
  readonly algorithm: string;
  size = 0;
  private readonly id = nextId++;
  private readonly local?: Digester;
  private readonly thread: HashThread;

  constructor(algorithm = 'sha256') {
    this.algorithm = algorithm;
    new Digester(algorithm); // validates the algorithm
    this.thread = threads[this.id % threads.length]!;
    if (this.thread.available()) this.thread.register(this.id);
    else this.local = new Digester(algorithm);
  }

  /** Whether updateFromFile is served by a hashing thread (else callers feed chunks). */
  get hashesFiles(): boolean {
    return this.local === undefined && pending.has(this.id);
  }

  /** Feeds a byte range of a file already written; the hashing thread reads it itself. Ranges come in order. */
  updateFromFile(path: string, offset: number, length: number): void {
    this.size += length;
    if (!pending.has(this.id)) return; // the hashing thread was lost; digest() will say so
    this.thread.post({ op: 'range', id: this.id, alg: this.algorithm, path, offset, length });
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
    this.thread.post({ op: 'update', id: this.id, alg: this.algorithm, chunk: copy }, [copy.buffer]);
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
      if (!this.thread.post({ op: 'digest', id: this.id, alg: this.algorithm })) resolve(undefined);
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
    this.thread.drop(this.id);
  }
}
