/**
 * The worker side of OffThreadDigester: keeps one hash per id, feeds it what the main thread sends, and
 * for appends to local files also writes the bytes (they arrive here without a copy, so this thread is
 * the one that has them).
 */
import { createHash, type Hash } from 'node:crypto';
import { writevSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

type Message =
  | { op: 'update'; id: number; alg: string; chunk: Uint8Array }
  | { op: 'write'; id: number; alg: string; fd: number; chunks: Uint8Array[] }
  | { op: 'digest'; id: number; alg: string }
  | { op: 'drop'; id: number };

const hashes = new Map<number, Hash>();
/** Ids whose bytes did not all reach their file: their digest is unknown (the caller rehashes from disk). */
const broken = new Set<number>();

/** Writes every chunk in order at the end of `fd` (opened for append), continuing after short writes. */
function writeAll(fd: number, chunks: Uint8Array[]): void {
  let rest = chunks;
  while (rest.length > 0) {
    let written = writevSync(fd, rest.length > 512 ? rest.slice(0, 512) : rest);
    if (written === 0) throw new Error('the file accepts no more bytes');
    let i = 0;
    while (i < rest.length && written >= rest[i]!.byteLength) written -= rest[i++]!.byteLength;
    rest = rest.slice(i);
    if (written > 0) rest[0] = rest[0]!.subarray(written);
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
  if (m.op === 'write') {
    let error: { message: string; code?: string } | undefined;
    try {
      if (broken.has(m.id)) throw new Error('an earlier write of this file failed');
      writeAll(m.fd, m.chunks);
      for (const chunk of m.chunks) hash.update(chunk);
    } catch (e) {
      broken.add(m.id);
      error = { message: (e as Error).message, code: (e as NodeJS.ErrnoException).code };
    }
    parentPort!.postMessage({ op: 'written', id: m.id, error });
  } else if (m.op === 'update') {
    hash.update(m.chunk);
    parentPort!.postMessage({ op: 'ack', id: m.id, bytes: m.chunk.byteLength });
  } else {
    hashes.delete(m.id);
    const hex = broken.delete(m.id) ? undefined : hash.digest('hex');
    parentPort!.postMessage({ op: 'digest', id: m.id, hex });
  }
});
