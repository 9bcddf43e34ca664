/**
 * The worker side of OffThreadDigester: keeps one hash per id, feeds it what the main thread sends, and
 * for appends to local files also writes the bytes (they arrive here without a copy, so this thread is
 * the one that has them).
 *
 * Hashes are OpenSSL's, except for big sha256 streams that arrive together: those share the SIMD lanes
 * of Sha256Lanes, which hash four streams in the time OpenSSL hashes under three one by one. A
 * stream whose first batch is full (so more is coming) takes a lane when at least MIN_LANE_STREAMS such
 * streams are on this thread; while streams announced but not yet sending could make up the number, it
 * waits for them up to DECIDE_MS; otherwise it hashes with OpenSSL at once. A stream keeps its
 * choice to its end (hash states cannot move between the two).
 */
import { createHash, type Hash } from 'node:crypto';
import { writevSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { Sha256Lanes, type LaneStream } from './sha256-lanes.js';

type Message =
  | { op: 'update'; id: number; alg: string; chunk: Uint8Array }
  | { op: 'write'; id: number; alg: string; fd: number; chunks: Uint8Array[] }
  | { op: 'digest'; id: number; alg: string }
  | { op: 'open'; id: number; alg: string }
  | { op: 'drop'; id: number }
  | { op: 'stats' };

type Reply =
  | { op: 'ack'; id: number; bytes: number }
  | { op: 'written'; id: number; error?: { message: string; code?: string } }
  | { op: 'digest'; id: number; hex: string | undefined }
  | { op: 'stats'; lanes: number; openssl: number };

/** A first batch this big says the stream goes on (the main thread sends batches of 1 MiB). */
const BIG_BATCH = 1 << 20;
/**
 * How long a big stream waits for announced streams to send their first batch before it hashes alone.
 * Streams started together by one client reach their first MiB up to ~80 ms apart on a loaded machine;
 * a stream with no company announced does not wait at all.
 */
const DECIDE_MS = 250;
/** How long an announced stream that sent nothing yet counts as company. */
const COMING_MS = 250;
/**
 * Streams needed to share the lanes: four full lanes hash about 1.45× OpenSSL's bytes per second, three
 * about 1.0× (so three take OpenSSL), one alone about 0.35×.
 */
const MIN_LANE_STREAMS = 4;

interface Stream {
  id: number;
  alg: string;
  /** Undefined while undecided (waiting for company), with the bytes in `held`. */
  mode?: 'openssl' | 'lanes';
  hash?: Hash;
  lane?: LaneStream;
  held: Uint8Array[];
  /** Whether bytes arrived yet (the first ones decide the mode). */
  started: boolean;
  /** A big stream waiting for company decides by then (ms since the epoch). */
  deadline?: number;
  /** When the stream was last announced: until its bytes come it counts as company for COMING_MS. */
  announced?: number;
  /** Bytes fed to the hash (or held); a reply waits in `replies` until its bytes were taken in. */
  fed: number;
  replies: { through: number; reply: Reply }[];
  /** An earlier write failed: the digest is unknown (the caller rehashes from disk). */
  broken: boolean;
}

const streams = new Map<number, Stream>();
/** Made when the first big sha256 stream comes (emitting and compiling the kernel takes ~17 ms). */
let lanes: Sha256Lanes | undefined;
let lanesTried = false;

function laneEngine(): Sha256Lanes | undefined {
  if (!lanesTried) {
    lanesTried = true;
    lanes = Sha256Lanes.create();
  }
  return lanes;
}
let decideTimer: NodeJS.Timeout | undefined;
let pumping = false;

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

function streamOf(id: number, alg: string): Stream {
  let s = streams.get(id);
  if (!s) {
    s = { id, alg, held: [], started: false, fed: 0, replies: [], broken: false };
    streams.set(id, s);
  }
  return s;
}

/** Bytes the stream's hash has taken in so far (held bytes count only once a mode is chosen). */
function taken(s: Stream): number {
  if (s.mode === 'lanes') return s.lane!.consumed;
  if (s.mode === 'openssl') return s.fed;
  return 0;
}

/** Posts the stream's replies whose bytes were taken in, in order. */
function settle(s: Stream): void {
  const done = taken(s);
  while (s.replies.length > 0 && (s.replies[0]!.through <= done || s.broken)) post(s.replies.shift()!.reply);
}

function feed(s: Stream, chunks: Uint8Array[]): void {
  for (const chunk of chunks) s.fed += chunk.byteLength;
  if (s.mode === 'openssl') for (const chunk of chunks) s.hash!.update(chunk);
  else if (s.mode === 'lanes') for (const chunk of chunks) lanes!.feed(s.lane!, chunk);
  else s.held.push(...chunks);
}

/** Streams that took each way of hashing, for tests and diagnostics. */
const chosen = { lanes: 0, openssl: 0 };

function choose(s: Stream, mode: 'openssl' | 'lanes'): void {
  s.mode = mode;
  if (mode === 'lanes') s.lane = lanes!.open();
  if (!s.lane) {
    s.mode = 'openssl';
    s.hash = createHash(s.alg);
  }
  chosen[s.mode]++;
  const held = s.held;
  s.held = [];
  s.fed = 0;
  feed(s, held);
  settle(s);
}

const laneStreams = () => [...streams.values()].filter((s) => s.mode === 'lanes');

/**
 * Undecided big streams take lanes once at least MIN_LANE_STREAMS big streams are here. While streams
 * that were announced but sent nothing yet could still make up the number, they wait (each until its
 * deadline); otherwise they hash with OpenSSL at once.
 */
function decide(): void {
  const all = [...streams.values()];
  const waiting = all.filter((s) => s.mode === undefined && s.deadline !== undefined);
  if (waiting.length === 0) return;
  const big = waiting.length + all.filter((s) => s.mode === 'lanes').length;
  const now = Date.now();
  const coming = all.filter((s) => !s.started && s.announced !== undefined && now - s.announced < COMING_MS).length;
  for (const s of waiting) {
    if (big >= MIN_LANE_STREAMS) choose(s, 'lanes');
    else if (big + coming < MIN_LANE_STREAMS || s.deadline! <= now) choose(s, 'openssl');
  }
  if (decideTimer) clearTimeout(decideTimer);
  decideTimer = undefined;
  const next = Math.min(...waiting.filter((s) => s.mode === undefined).map((s) => s.deadline!));
  if (Number.isFinite(next)) decideTimer = setTimeout(decide, Math.max(1, next - now));
  schedulePump();
}

/** A stream's first bytes: OpenSSL unless it is a big sha256 stream and lanes may have room for it. */
function firstBytes(s: Stream, bytes: number): void {
  const engine = s.alg === 'sha256' && bytes >= BIG_BATCH ? laneEngine() : undefined;
  if (!engine || engine.free === 0) choose(s, 'openssl');
  else s.deadline = Date.now() + DECIDE_MS;
  decide();
}

function schedulePump(): void {
  if (pumping || !lanes || lanes.ready === 0) return;
  pumping = true;
  setImmediate(pump);
}

/** Whether pump() may wait for lanes without bytes; set again by each arriving message. */
let mayWait = true;

/**
 * Hashes one slice of every lane with bytes, then yields so that messages can arrive. When some lane
 * streams have nothing queued it first waits a moment (once per arriving message) for their next batch:
 * hashing one lane alone costs as much as hashing four.
 */
function pump(): void {
  pumping = false;
  const ready = lanes!.ready;
  if (ready === 0) return;
  if (ready < laneStreams().length && mayWait) {
    mayWait = false;
    pumping = true;
    setTimeout(pump, 1);
    return;
  }
  lanes!.step();
  for (const s of laneStreams()) settle(s);
  schedulePump();
}

/** Hashes everything the stream was fed and answers the digest; frees its lane. */
function finish(s: Stream): string | undefined {
  if (s.mode === undefined) choose(s, 'openssl');
  streams.delete(s.id);
  if (s.mode === 'lanes') {
    const digest = lanes!.finish(s.lane!);
    settle(s);
    return s.broken ? undefined : Buffer.from(digest).toString('hex');
  }
  settle(s);
  return s.broken ? undefined : s.hash!.digest('hex');
}

function drop(id: number): void {
  const s = streams.get(id);
  if (!s) return;
  streams.delete(id);
  if (s.lane) lanes!.close(s.lane);
  s.held = [];
  // The bytes were written: their answers go out (the main thread matches them to its writes).
  for (const { reply } of s.replies.splice(0)) post(reply);
  decide();
}

parentPort!.on('message', (m: Message) => {
  if (m.op === 'drop') return drop(m.id);
  if (m.op === 'stats') return post({ op: 'stats', ...chosen });
  const s = streamOf(m.id, m.alg);
  if (m.op === 'open') {
    s.announced = Date.now(); // bytes may follow: company for big streams deciding
    return;
  }
  const first = !s.started && m.op !== 'digest';
  s.started = true;
  mayWait = true;
  if (m.op === 'write') {
    let error: { message: string; code?: string } | undefined;
    try {
      if (s.broken) throw new Error('an earlier write of this file failed');
      writeAll(m.fd, m.chunks);
    } catch (e) {
      s.broken = true;
      error = { message: (e as Error).message, code: (e as NodeJS.ErrnoException).code };
    }
    const bytes = m.chunks.reduce((n, c) => n + c.byteLength, 0);
    if (!s.broken) feed(s, m.chunks);
    s.replies.push({ through: s.fed, reply: { op: 'written', id: m.id, error } });
    if (first) firstBytes(s, bytes);
    settle(s);
    schedulePump();
  } else if (m.op === 'update') {
    feed(s, [m.chunk]);
    s.replies.push({ through: s.fed, reply: { op: 'ack', id: m.id, bytes: m.chunk.byteLength } });
    if (first) firstBytes(s, m.chunk.byteLength);
    settle(s);
    schedulePump();
  } else {
    post({ op: 'digest', id: m.id, hex: finish(s) });
    decide();
  }
});
