import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

export interface ProxiedRequest {
  method: string;
  url: string;
  range?: string;
}

export interface FaultRules {
  /** Flip a byte in every blob body passed through (a mirror serving wrong bytes). */
  corruptBlobs?: boolean;
  /** Cut the connection after this many body bytes of the first blob GET of at least that size (only once). */
  cutBlobAfter?: number;
  /** Answer the first N manifest GETs with 429 and this Retry-After (seconds). */
  tooManyRequests?: { times: number; retryAfter: number };
  /** Drop the connection of the first blob upload (PUT or PATCH) after this many request bytes. */
  cutUploadAfter?: number;
  /** Serve HTTPS with this key and certificate (PEM). */
  tls?: { key: string; cert: string };
}

export interface FaultProxy {
  url: string;
  host: string;
  requests: ProxiedRequest[];
  close(): Promise<void>;
}

/** A loopback HTTP proxy in front of a registry that misbehaves on purpose. */
export async function startFaultProxy(target: string, rules: FaultRules): Promise<FaultProxy> {
  const targetUrl = new URL(target);
  const requests: ProxiedRequest[] = [];
  let cutDone = false;
  let throttled = 0;
  let uploadCut = false;
  const handler: http.RequestListener = (req, res) => {
    requests.push({ method: req.method!, url: req.url!, ...(req.headers.range ? { range: req.headers.range } : {}) });
    const isBlobGet = req.method === 'GET' && /\/blobs\/sha256:/.test(req.url!);
    if (rules.tooManyRequests && req.method === 'GET' && /\/manifests\//.test(req.url!) && throttled < rules.tooManyRequests.times) {
      throttled++;
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
      const outHeaders = { ...up.headers };
      if (outHeaders.location) outHeaders.location = outHeaders.location.replace(targetUrl.origin, `${rules.tls ? 'https' : 'http'}://${req.headers.host}`);
      res.writeHead(up.statusCode!, outHeaders);
      const cut = isBlobGet && up.statusCode === 200 && rules.cutBlobAfter !== undefined && !cutDone && Number(up.headers['content-length'] ?? 0) > rules.cutBlobAfter;
      if (cut) cutDone = true;
      let sent = 0;
      let flipped = false;
      up.on('data', (chunk: Buffer) => {
        if (isBlobGet && rules.corruptBlobs && !flipped && chunk.length > 0 && (up.statusCode === 200 || up.statusCode === 206)) {
          chunk = Buffer.from(chunk);
          chunk[0] = chunk[0]! ^ 0xff;
          flipped = true;
        }
        if (cut) {
          const room = rules.cutBlobAfter! - sent;
          if (room <= 0) return;
          if (chunk.length >= room) {
            res.write(chunk.subarray(0, room), () => res.socket?.destroy());
            sent += room;
            up.destroy();
            return;
          }
        }
        sent += chunk.length;
        res.write(chunk);
      });
      up.on('end', () => res.end());
      up.on('error', () => res.destroy());
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  };
  const server = rules.tls ? https.createServer({ key: rules.tls.key, cert: rules.tls.cert }, handler) : http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${rules.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
