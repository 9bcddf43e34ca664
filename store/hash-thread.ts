/** The worker side of OffThreadDigester: keeps one hash per id and feeds it what the main thread sends. */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

type Message =
  | { op: 'update'; id: number; alg: string; chunk: Uint8Array }
  | { op: 'range'; id: number; alg: string; path: string; offset: number; length: number }
  | { op: 'digest'; id: number; alg: string } | { op: 'drop'; id: number };

const hashes = new Map<number, Hash>();
const scratch = Buffer.allocUnsafe(1 << 20);
const broken = new Set<number>();

/** Reads a range back from the page cache (this thread may block) and hashes it. */
function hashRange(hash: Hash, path: string, offset: number, length: number): void {
  const fd = openSync(path, 'r');
  try {
    for (let done = 0; done < length; ) {
      const n = readSync(fd, scratch, 0, Math.min(scratch.length, length - done), offset + done);
      if (n === 0) throw new Error(`${path} is shorter than expected`);
      hash.update(scratch.subarray(0, n));
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}

parentPort!.on('message', (m: Message) => {
  if (m.op === 'drop') {
    hashes.delete(m.id);
    broken.delete(m.id);
    return;
  }
  let hash = hashes.get(m.id);
  if (!hash) {
    hash = createHash(m.alg);
    hashes.set(m.id, hash);
  }
  if (m.op === 'range') {
    try {
      if (!broken.has(m.id)) hashRange(hash, m.path, m.offset, m.length);
    } catch {
      // the ingest went away (cancelled) or was cut short: its digest is unknown, the caller rehashes
      broken.add(m.id);
    }
    parentPort!.postMessage({ op: 'ack', id: m.id, bytes: 0 });
  } else if (m.op === 'update') {
    hash.update(m.chunk);
    parentPort!.postMessage({ op: 'ack', id: m.id, bytes: m.chunk.byteLength });
  } else {
    hashes.delete(m.id);
    const hex = broken.delete(m.id) ? undefined : hash.digest('hex');
    parentPort!.postMessage({ op: 'digest', id: m.id, hex });
  }
});
