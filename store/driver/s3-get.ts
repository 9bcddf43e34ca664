import net from 'node:net';
import type { Writable } from 'node:stream';
import type { FileSender } from './storage-driver.js';

/**
 * A GetObject on its own connection whose bytes reach the client socket without garbage: the S3 socket
 * reads into a few reused buffers (net's `onread`), and each filled buffer is written to the client as
 * it is, and reused once that write was called back. Node's HTTP client gives every 64 KiB socket read a
 * new buffer; at hundreds of MB/s the freed buffers go back to the OS and are faulted in again (measured
 * through a replica, 128 MiB: ~30,000 page faults and ~0.5 s of CPU per pull through the SDK, ~0.06 s
 * this way, less than distribution's ~0.1 s).
 */

/** Bytes one socket read may bring, and one write to the client carry. */
const BUFFER_BYTES = 1 << 20;
/** Writes to the client one response may have in flight (not yet called back) before its S3 socket pauses: its read-ahead. */
const WRITES_IN_FLIGHT = 4;
/** Idle buffers kept for the next responses (the rest are left to the garbage collector). */
const IDLE_KEPT = 16;
/** Largest response head, and largest error body read. */
const HEAD_LIMIT = 64 << 10;

const idleBuffers: Buffer[] = [];

function takeBuffer(): Buffer {
  return idleBuffers.pop() ?? Buffer.allocUnsafeSlow(BUFFER_BYTES);
}

function giveBuffer(b: Buffer): void {
  if (idleBuffers.length < IDLE_KEPT) idleBuffers.push(b);
}

/** What the caller signed: where to connect and the request head. */
export interface SignedGet {
  host: string;
  port: number;
  /** Path and query, URI-encoded as signed. */
  path: string;
  /** Every header the request sends (host, x-amz-*, authorization, range). */
  headers: Record<string, string>;
  /** Milliseconds to connect and receive the response head; then the most S3 may stay silent while we read. */
  connectTimeoutMs: number;
  idleTimeoutMs: number;
}

/** The response head of a GET, with its body still waiting in the socket (or, for errors, read). */
export interface OpenedGet {
  status: number;
  headers: Map<string, string>;
  /** 2xx: the sender of the body; else undefined. */
  sender?: ObjectSender;
  /** Non-2xx: the body (at most HEAD_LIMIT bytes), S3's XML error. */
  errorBody?: string;
}

/**
 * Sends the request and resolves at the response head: a 2xx with a Content-Length body (not chunked)
 * comes with a sender holding the connection, paused; any other status comes with its body read.
 * Rejects with a one-line error on connection failures and timeouts.
 */
export function openGet(req: SignedGet): Promise<OpenedGet> {
  return new Promise((resolve, reject) => {
    // The buffer the socket reads into next. Until the body flows, a read is copied out and its buffer
    // read into again; then the sender hands out the buffers (ObjectSender.nextBuffer).
    let spare: Buffer | undefined = takeBuffer();
    let head: Buffer | undefined = Buffer.alloc(0);
    let opened: OpenedGet | undefined;
    let errorChunks: Buffer[] = [];
    let errorBytes = 0;
    let errorRemaining = Infinity;
    let sender: ObjectSender | undefined;
    let settled = false;
    const fail = (e: Error) => {
      if (sender) return sender.fail(e);
      socket.destroy();
      if (!settled) {
        settled = true;
        reject(e);
      }
    };
    const finishError = () => {
      socket.destroy();
      settled = true;
      resolve({ ...opened!, errorBody: Buffer.concat(errorChunks, errorBytes).toString('utf8') });
    };
    const socket = net.connect({
      host: req.host,
      port: req.port,
      noDelay: true,
      onread: {
        buffer: () => {
          if (sender) return sender.nextBuffer();
          spare ??= takeBuffer();
          return spare;
        },
        callback: (n: number, buf: Uint8Array): boolean => {
          let bytes = Buffer.from(buf.buffer, buf.byteOffset, n);
          if (sender) return sender.received(bytes);
          if (opened) {
            // an error's body
            errorRemaining -= bytes.length;
            if (errorBytes < HEAD_LIMIT) {
              errorChunks.push(Buffer.from(bytes.subarray(0, HEAD_LIMIT - errorBytes)));
              errorBytes += Math.min(bytes.length, HEAD_LIMIT - errorBytes);
            }
            if (errorRemaining <= 0) finishError();
            return true;
          }
          head = Buffer.concat([head!, bytes]);
          const end = head.indexOf('\r\n\r\n');
          if (end < 0) {
            if (head.length > HEAD_LIMIT) fail(new Error(`the response head is over ${HEAD_LIMIT} bytes`));
            return true;
          }
          const lines = head.subarray(0, end).toString('latin1').split('\r\n');
          const rest = Buffer.from(head.subarray(end + 4));
          head = undefined;
          const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
          if (!status) {
            fail(new Error(`not an HTTP response: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`));
            return false;
          }
          const headers = new Map<string, string>();
          for (const line of lines.slice(1)) {
            const colon = line.indexOf(':');
            if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
          }
          opened = { status: Number(status[1]), headers };
          const length = headers.has('content-length') && !headers.has('transfer-encoding') ? Number(headers.get('content-length')) : undefined;
          if (opened.status >= 200 && opened.status < 300) {
            socket.setTimeout(req.idleTimeoutMs);
            settled = true;
            if (length === undefined || !Number.isSafeInteger(length)) {
              // chunked: not what S3 answers to a GetObject; the caller goes the SDK's way
              socket.destroy();
              resolve(opened);
              return false;
            }
            sender = new ObjectSender(socket, spare!, length, rest);
            spare = undefined;
            resolve({ ...opened, sender });
            return false;
          }
          errorRemaining = length ?? Infinity;
          bytes = rest;
          errorRemaining -= bytes.length;
          errorChunks = [bytes.subarray(0, HEAD_LIMIT)];
          errorBytes = errorChunks[0]!.length;
          if (errorRemaining <= 0) finishError();
          return true;
        },
      },
    });
    socket.setTimeout(req.connectTimeoutMs);
    socket.on('timeout', () => {
      if (sender) sender.timedOut(req.idleTimeoutMs);
      else fail(new Error(`no answer within ${req.connectTimeoutMs} ms`));
    });
    socket.on('error', (e) => fail(e));
    socket.on('end', () => {
      if (opened && !sender && !settled) finishError();
    });
    socket.on('close', () => {
      if (sender) sender.closed();
      else if (opened && !settled) finishError();
      else fail(new Error('the connection closed before the response head'));
    });
    let text = `GET ${req.path} HTTP/1.1\r\n`;
    for (const [name, value] of Object.entries(req.headers)) text += `${name}: ${value}\r\n`;
    socket.write(`${text}connection: close\r\n\r\n`, 'latin1');
  });
}

/** A 2xx body, paused in its socket until writeTo (see openGet). */
export class ObjectSender implements FileSender {
  private out: Writable | undefined;
  /** Writes to `out` not yet called back. */
  private inFlight = 0;
  private remaining: number;
  private paused = true;
  private error: Error | undefined;
  private done: { resolve: () => void; reject: (e: Error) => void } | undefined;

  /** `spare`: the buffer the socket reads into next (it goes back to the idle ones at the end). */
  constructor(
    private readonly socket: net.Socket,
    private spare: Buffer | undefined,
    readonly length: number,
    private early: Buffer,
  ) {
    this.remaining = length;
    socket.pause();
  }

  writeTo(out: Writable): Promise<void> {
    if (this.out) throw new Error('ObjectSender.writeTo called twice');
    this.out = out;
    return new Promise<void>((resolve, reject) => {
      this.done = { resolve, reject };
      if (this.error) return this.settle();
      out.once('close', this.onClientClose);
      const early = this.early;
      this.early = Buffer.alloc(0);
      if (early.length > 0 && !this.received(early)) return;
      if (this.remaining > 0) return this.resume();
      this.allReceived();
      this.socket.resume();
      this.settle();
    });
  }

  cancel(): void {
    this.fail(new Error('cancelled'));
  }

  private readonly onClientClose = () => {
    if (this.remaining > 0 || this.inFlight > 0) this.fail(new Error('the client closed the connection'));
  };

  private resume(): void {
    if (!this.paused || this.error) return;
    this.paused = false;
    this.socket.resume();
  }

  /** The buffer for the socket's next read: never one still being written. */
  nextBuffer(): Buffer {
    this.spare ??= takeBuffer();
    return this.spare;
  }

  /**
   * Bytes from the socket: in the buffer nextBuffer gave (written to `out` as they are), or, before the
   * body flows, a copy of those that came with the head. False pauses the socket.
   */
  received(bytes: Buffer): boolean {
    if (this.error) return false;
    if (!this.out) {
      // before writeTo (the socket is paused): kept, and taken again by writeTo
      this.early = Buffer.concat([this.early, bytes]);
      return false;
    }
    if (bytes.length > this.remaining) {
      this.fail(new Error(`S3 sent more than the ${this.length} bytes it announced`));
      return false;
    }
    this.remaining -= bytes.length;
    // A read into the spare buffer hands it over to the write; early bytes are a copy of their own.
    const buffer = this.spare !== undefined && bytes.buffer === this.spare.buffer ? this.spare : undefined;
    if (buffer) this.spare = undefined;
    this.inFlight++;
    // The callback means the stream is done with the bytes (written to the kernel, or dropped on an
    // error): only then is the buffer read into again.
    this.out.write(bytes, () => {
      if (buffer) giveBuffer(buffer);
      this.inFlight--;
      if (this.inFlight < WRITES_IN_FLIGHT) this.resume();
      this.settle();
    });
    if (this.remaining === 0) {
      this.allReceived();
      this.settle();
      // read on: the next thing S3 sends is the end of the connection
      return true;
    }
    if (this.inFlight >= WRITES_IN_FLIGHT) {
      this.paused = true;
      return false;
    }
    return true;
  }

  /** Resolves writeTo once every byte was written and called back; rejects on the first error. */
  private settle(): void {
    if (!this.done) return;
    if (this.error) {
      this.done.reject(this.error);
      this.done = undefined;
      this.release();
    } else if (this.remaining === 0 && this.inFlight === 0) {
      this.done.resolve();
      this.done = undefined;
      this.release();
    }
  }

  private release(): void {
    this.out?.off('close', this.onClientClose);
  }

  /**
   * Every byte came. S3 closes the connection now (the request asked it to), so the TIME_WAIT is on its
   * side: closing first here would hold one of this host's ephemeral ports for a minute per GET. A
   * connection S3 leaves open is cut after a moment.
   */
  private allReceived(): void {
    this.socket.setTimeout(0);
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  fail(e: Error): void {
    if (this.error) return;
    this.error = e;
    this.socket.destroy();
    this.settle();
  }

  timedOut(ms: number): void {
    // Paused, the silence is the client's (its own timeouts apply); reading, it is S3's.
    if (!this.paused) this.fail(new Error(`S3 sent nothing for ${ms} ms`));
  }

  closed(): void {
    if (this.remaining > 0) this.fail(new Error(`the connection closed after ${this.length - this.remaining} of ${this.length} bytes`));
    // closed, the socket reads into nothing any more
    if (this.spare) giveBuffer(this.spare);
    this.spare = undefined;
  }
}
