/** The worker side of OffThreadDigester: keeps one hash per id and feeds it what the main thread sends. */
import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

type Message = { op: 'update'; id: number; alg: string; chunk: Uint8Array } | { op: 'digest'; id: number; alg: string } | { op: 'drop'; id: number };

const hashes = new Map<number, Hash>();

parentPort!.on('message', (m: Message) => {
  if (m.op === 'drop') {
    hashes.delete(m.id);
    return;
  }
  let hash = hashes.get(m.id);
  if (!hash) {
    hash = createHash(m.alg);
    hashes.set(m.id, hash);
  }
  if (m.op === 'update') {
    hash.update(m.chunk);
    parentPort!.postMessage({ op: 'ack', id: m.id, bytes: m.chunk.byteLength });
  } else {
    hashes.delete(m.id);
    parentPort!.postMessage({ op: 'digest', id: m.id, hex: hash.digest('hex') });
  }
});
