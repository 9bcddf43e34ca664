/**
 * The worker side of OffThreadDigester: keeps one OpenSSL hash per stream id, writes the bytes the main
 * thread sends to their file (they arrive here without a copy, so this thread is the one that has them)
 * and hashes them. Every message is answered as soon as it is handled: an answer
 * never waits for bytes still to come.
 */
import { createHash, type Hash } from 'node:crypto';
import { writevSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

type Message =
  | { op: 'open'; id: number; alg: string }
  | { op: 'write'; id: number; fd: number; chunks: Uint8Array[] }
  | { op: 'digest'; id: number }
  | { op: 'drop'; id: number };

type Reply = { op: 'written'; id: number; error?: { message: string; code?: string | undefined } } | { op: 'digest'; id: number; hex: string | undefined };

interface Stream {
  hash: Hash;
  /** A write failed part way: what was hashed and what reached the file may differ. */
  broken: boolean;
}

/** Streams opened and not yet digested or dropped. Writes for an id not here are written, not hashed. */
const streams = new Map<number, Stream>();

function post(reply: Reply): void {
  parentPort!.postMessage(reply);
}

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

function write(m: Extract<Message, { op: 'write' }>): Reply {
  const s = streams.get(m.id);
  try {
    if (s?.broken) throw new Error('an earlier write of this file failed');
    writeAll(m.fd, m.chunks);
  } catch (e) {
    if (s) s.broken = true;
    return { op: 'written', id: m.id, error: { message: (e as Error).message, code: (e as NodeJS.ErrnoException).code } };
  }
  if (s) for (const chunk of m.chunks) s.hash.update(chunk);
  return { op: 'written', id: m.id };
}

parentPort!.on('message', (m: Message) => {
  switch (m.op) {
    case 'open':
      streams.set(m.id, { hash: createHash(m.alg), broken: false });
      return;
    case 'drop':
      streams.delete(m.id);
      return;
    case 'write':
      return post(write(m));
    case 'digest': {
      const s = streams.get(m.id);
      streams.delete(m.id);
      return post({ op: 'digest', id: m.id, hex: s && !s.broken ? s.hash.digest('hex') : undefined });
    }
  }
});
