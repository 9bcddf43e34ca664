import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

export interface TlsFiles {
  cert: string;
  key: string;
}

export interface HttpTimeouts {
  /** Time allowed for a request's headers to arrive. */
  headersTimeoutMs: number;
  /** How long an idle keep-alive connection stays open. */
  keepAliveTimeoutMs: number;
}

/**
 * The Node server under the app: plain HTTP, or HTTPS with a certificate. Node's default 5-minute
 * request timeout would cut a large blob upload over a slow link, so whole requests are unbounded;
 * only headers are timed (slow-loris guard) and idle keep-alive connections are closed eventually.
 */
export function createHttpServer(handler: http.RequestListener, tls: TlsFiles | undefined, timeouts: HttpTimeouts): http.Server {
  let server: http.Server;
  if (tls) {
    let cert: Buffer;
    let key: Buffer;
    try {
      cert = readFileSync(tls.cert);
      key = readFileSync(tls.key);
    } catch (e) {
      throw new Error(`cannot read TLS certificate or key: ${(e as Error).message}`);
    }
    server = https.createServer({ cert, key, keepAlive: true }, handler);
  } else {
    server = http.createServer({ keepAlive: true }, handler);
  }
  server.requestTimeout = 0;
  server.timeout = 0;
  server.headersTimeout = timeouts.headersTimeoutMs;
  server.keepAliveTimeout = timeouts.keepAliveTimeoutMs;
  return server;
}
