import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export interface ProxiedRequest {
  method: string;
  url: string;
  range?: string;
  /** The status the upstream answered with (set once it answered; absent for requests refused or cut before). */
  status?: number;
}

export interface FaultRules {
  /** Flip the first byte of every blob body (200 or 206) passed through (a mirror serving wrong bytes). */
  corruptBlobs?: boolean | undefined;
  /**
   * Cut the connection after this many body bytes of the first blob GET of at least that size (only once),
   * or, with `cutEveryBlob`, of every blob GET: then the count is an absolute offset in the blob, so a
   * `Range` resume from there is cut at once and the blob can never be completed through the proxy.
   */
  cutBlobAfter?: number | undefined;
  cutEveryBlob?: boolean | undefined;
  /** Only blobs with these digests are corrupted or cut (default: all). */
  faultDigests?: string[] | undefined;
  /** Answer the first N manifest GETs with 429 and this Retry-After (seconds). */
  tooManyRequests?: { times: number; retryAfter: number };
  /** Drop the connection of the first blob upload (PUT or PATCH) after this many request bytes. */
  cutUploadAfter?: number | undefined;
  /** Serve HTTPS with this key and certificate (PEM). */
  tls?: { key: string; cert: string };
  /** Stop accepting: the listener is closed and open connections destroyed, so connects are refused. */
  refuse?: boolean | undefined;
  /** Answer every request only after this many milliseconds. */
  delayMs?: number | undefined;
  /** Throttle response bodies to this many bytes per second, shared by all responses (one slow link). */
  rateBytesPerSecond?: number | undefined;
  /** Answer every request with this HTTP status (an upstream that errors), without asking the target. */
  errorStatus?: number | undefined;
}

export interface FaultProxy {
  url: string;
  host: string;
  requests: ProxiedRequest[];
  /** The rules in force; change them with `set`. */
  readonly rules: Readonly<FaultRules>;
  /** Changes rules at runtime (merged into the current ones; `undefined` values switch a rule off). */
  set(rules: Partial<FaultRules>): Promise<void>;
  /** Blob GETs of `digest` the target answered with 200 or 206: the upstream fetches of that blob. */
  blobGets(digest: string): number;
  /** Body bytes sent to clients: all responses, or the blob GETs of one digest. */
  bytesOut(digest?: string): number;
  /** Forgets the request log and the counters. */
  reset(): void;
  close(): Promise<void>;
}

const BLOB_GET = /\/blobs\/(sha256:[0-9a-f]{64})(?:$|\?)/;
/** Throttled bodies go out in pieces of this size, so concurrent responses share the link fairly. */
const PIECE = 16 * 1024;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A loopback HTTP proxy in front of a registry that misbehaves on purpose. */
export async function startFaultProxy(target: string, initialRules: FaultRules = {}): Promise<FaultProxy> {
  const targetUrl = new URL(target);
  let rules: FaultRules = { ...initialRules };
  const requests: ProxiedRequest[] = [];
  const gets = new Map<string, number>();
  const bytesByDigest = new Map<string, number>();
  let totalBytes = 0;
  let cutDone = false;
  let throttled = 0;
  let uploadCut = false;
  let linkFreeAt = 0;
  let closed = false;
  const sockets = new Set<Socket>();
  const pending = new Set<http.ClientRequest>();

  /** Waits for the shared link's slot for `bytes` at the current rate. */
  const throttle = async (bytes: number) => {
    const rate = rules.rateBytesPerSecond;
    if (!rate) return;
    const now = Date.now();
    linkFreeAt = Math.max(now, linkFreeAt) + (bytes / rate) * 1000;
    if (linkFreeAt > now) await sleep(linkFreeAt - now);
  };

  const handler: http.RequestListener = async (req, res) => {
    const entry: ProxiedRequest = { method: req.method!, url: req.url!, ...(req.headers.range ? { range: req.headers.range } : {}) };
    requests.push(entry);
    const blobDigest = req.method === 'GET' && !/\/blobs\/uploads\//.test(req.url!) ? BLOB_GET.exec(req.url!)?.[1] : undefined;
    const faulty = blobDigest !== undefined && (!rules.faultDigests || rules.faultDigests.includes(blobDigest));
    let clientGone = false;
    res.on('close', () => (clientGone = !res.writableFinished));
    if (rules.delayMs) {
      await sleep(rules.delayMs);
      if (clientGone || closed) return;
    }
    if (rules.errorStatus) {
      entry.status = rules.errorStatus;
      res.writeHead(rules.errorStatus, { 'content-type': 'application/json' });
      res.end(`{"errors":[{"code":"UNAVAILABLE","message":"fault proxy: upstream answers ${rules.errorStatus}"}]}`);
      return;
    }
    if (rules.tooManyRequests && req.method === 'GET' && /\/manifests\//.test(req.url!) && throttled < rules.tooManyRequests.times) {
      throttled++;
      entry.status = 429;
      res.writeHead(429, { 'retry-after': String(rules.tooManyRequests.retryAfter), 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}');
      return;
    }
    if (rules.cutUploadAfter !== undefined && !uploadCut && (req.method === 'PUT' || req.method === 'PATCH') && /\/blobs\/uploads\//.test(req.url!)) {
      uploadCut = true;
      let seen = 0;
      req.on('data', (c: Buffer) => {
        seen += c.length;
        if (seen >= rules.cutUploadAfter!) req.socket.destroy();
      });
      req.on('end', () => req.socket.destroy());
      return;
    }
    const headers = { ...req.headers, host: targetUrl.host };
    const upstream = http.request({ host: targetUrl.hostname, port: targetUrl.port, method: req.method, path: req.url, headers }, (up) => {
      pending.delete(upstream);
      entry.status = up.statusCode!;
      const outHeaders = { ...up.headers };
      if (outHeaders.location) outHeaders.location = outHeaders.location.replace(targetUrl.origin, `${rules.tls ? 'https' : 'http'}://${req.headers.host}`);
      const ok = up.statusCode === 200 || up.statusCode === 206;
      if (blobDigest && ok) gets.set(blobDigest, (gets.get(blobDigest) ?? 0) + 1);
      // Where the body starts in the blob (a 206 answers a Range), and where it must be cut (absolute).
      const startAt = up.statusCode === 206 ? Number(/bytes (\d+)-/.exec(String(up.headers['content-range']))?.[1] ?? 0) : 0;
      let cutAt: number | undefined;
      if (faulty && ok && rules.cutBlobAfter !== undefined) {
        if (rules.cutEveryBlob) cutAt = rules.cutBlobAfter;
        else if (!cutDone && up.statusCode === 200 && Number(up.headers['content-length'] ?? 0) > rules.cutBlobAfter) {
          cutDone = true;
          cutAt = rules.cutBlobAfter;
        }
      }
      const corrupt = faulty && ok && rules.corruptBlobs;
      res.writeHead(up.statusCode!, outHeaders);
      void (async () => {
        let offset = startAt;
        let flipped = false;
        const send = async (piece: Buffer) => {
          await throttle(piece.length);
          if (clientGone) throw new Error('client gone');
          totalBytes += piece.length;
          if (blobDigest) bytesByDigest.set(blobDigest, (bytesByDigest.get(blobDigest) ?? 0) + piece.length);
          if (!res.write(piece)) {
            await new Promise<void>((resolve) => {
              const done = () => {
                res.off('drain', done);
                res.off('close', done);
                resolve();
              };
              res.on('drain', done);
              res.on('close', done);
            });
          }
        };
        try {
          if (cutAt !== undefined && offset >= cutAt) throw new Error('cut');
          for await (let chunk of up as AsyncIterable<Buffer>) {
            if (corrupt && !flipped && chunk.length > 0) {
              chunk = Buffer.from(chunk);
              chunk[0] = chunk[0]! ^ 0xff;
              flipped = true;
            }
            if (cutAt !== undefined && offset + chunk.length >= cutAt) {
              const room = cutAt - offset;
              for (let i = 0; i < room; i += PIECE) await send(chunk.subarray(i, Math.min(room, i + PIECE)));
              await new Promise<void>((r) => res.write(Buffer.alloc(0), () => r()));
              throw new Error('cut');
            }
            if (rules.rateBytesPerSecond) for (let i = 0; i < chunk.length; i += PIECE) await send(chunk.subarray(i, i + PIECE));
            else await send(chunk);
            offset += chunk.length;
          }
          res.end();
        } catch {
          up.destroy();
          res.socket?.destroy();
          res.destroy();
        }
      })();
    });
    pending.add(upstream);
    upstream.on('error', () => {
      pending.delete(upstream);
      res.destroy();
    });
    req.pipe(upstream);
  };
  const server = rules.tls ? https.createServer({ key: rules.tls.key, cert: rules.tls.cert }, handler) : http.createServer(handler);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('secureConnection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  let listening = false;
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        listening = true;
        resolve();
      });
    });
  const stopListening = () =>
    new Promise<void>((resolve) => {
      for (const r of pending) r.destroy();
      pending.clear();
      for (const s of sockets) s.destroy();
      if (!listening) return resolve();
      listening = false;
      server.close(() => resolve());
      server.closeAllConnections();
    });
  await listen(0);
  const { port } = server.address() as AddressInfo;
  if (rules.refuse) await stopListening();
  return {
    url: `${rules.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    get rules() {
      return rules;
    },
    async set(change) {
      rules = { ...rules, ...change };
      if (rules.refuse && listening) await stopListening();
      else if (!rules.refuse && !listening && !closed) await listen(port);
    },
    blobGets: (digest) => gets.get(digest) ?? 0,
    bytesOut: (digest) => (digest ? (bytesByDigest.get(digest) ?? 0) : totalBytes),
    reset() {
      requests.length = 0;
      gets.clear();
      bytesByDigest.clear();
      totalBytes = 0;
    },
    close: () => {
      closed = true;
      return stopListening();
    },
  };
}
