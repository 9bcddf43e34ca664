import { Worker } from 'node:worker_threads';
import { Digester, type Digest } from '../oci/index.js';

/** Bytes queued for the hashing thread before update() makes the producer wait. */
const HIGH_WATER = 16 << 20;
const LOW_WATER = 4 << 20;

interface Pending {
  queued: number;
  resume?: () => void;
  resolveDigest?: (hex: string | undefined) => void;
}

let worker: Worker | undefined;
let workerFailed = false;
let nextId = 1;
const pending = new Map<number, Pending>();
/** Messages the worker has not answered yet: the worker keeps the process alive only while there are some. */
let outstanding = 0;

function sent(): void {
  if (outstanding++ === 0) worker?.ref();
}

function answered(): void {
  if (--outstanding === 0) worker?.unref();
}

function sharedWorker(): Worker | undefined {
  if (worker || workerFailed) return worker;
  try {
    // execArgv: [] so flags of the main process (e.g. --input-type) do not break the worker's start.
    worker = new Worker(new URL('./hash-thread.js', import.meta.url), { execArgv: [] });
  } catch {
    workerFailed = true;
    return undefined;
  }
  worker.unref();
  worker.on('message', (m: { op: 'ack'; id: number; bytes: number } | { op: 'digest'; id: number; hex: string }) => {
    answered();
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
      p.resolveDigest?.(m.hex);
    }
  });
  worker.on('error', () => {
    // Lost hash states: waiting producers go on, digests fail (callers rehash the bytes from disk).
    workerFailed = true;
    worker = undefined;
    outstanding = 0;
    for (const p of pending.values()) {
      p.resume?.();
      p.resolveDigest?.(undefined);
    }
    pending.clear();
  });
  return worker;
}

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
  private readonly worker?: Worker;

  constructor(algorithm = 'sha256') {
    this.algorithm = algorithm;
    new Digester(algorithm); // validates the algorithm
    this.worker = sharedWorker();
    if (!this.worker) this.local = new Digester(algorithm);
    else pending.set(this.id, { queued: 0 });
  }

  /** Feeds a chunk; the returned promise (when any) resolves once the hashing thread has caught up. */
  update(chunk: Uint8Array): Promise<void> | undefined {
    this.size += chunk.byteLength;
    if (this.local) {
      this.local.update(chunk);
      return undefined;
    }
    const copy = new Uint8Array(chunk.byteLength);
    copy.set(chunk);
    const p = pending.get(this.id);
    if (!p) return undefined; // the hashing thread was lost; digest() will say so
    p.queued += copy.byteLength;
    sent();
    this.worker!.postMessage({ op: 'update', id: this.id, alg: this.algorithm, chunk: copy }, [copy.buffer]);
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
      sent();
      this.worker!.postMessage({ op: 'digest', id: this.id, alg: this.algorithm });
    });
    if (hex === undefined) throw new Error('hash state lost');
    return `${this.algorithm}:${hex}` as Digest;
  }

  /** Forgets the state (the ingest failed or went away). */
  dispose(): void {
    if (this.local || !pending.has(this.id)) return;
    pending.get(this.id)!.resume?.();
    pending.delete(this.id);
    this.worker!.postMessage({ op: 'drop', id: this.id });
  }
}
