import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { TlsError, UnreachableError } from './errors.js';

export interface TransportOptions {
  /** How long opening a TCP connection may take before the host counts as unreachable. */
  connectTimeoutMs?: number;
  /** How long a connection may stay silent (no bytes either way) before it is dropped. */
  idleTimeoutMs?: number;
  /** Parallel connections per host. */
  maxSockets?: number;
  userAgent?: string;
}

export interface HttpRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: Buffer | Readable;
  /** Verify the server's certificate (off only for insecure registries). */
  verifyTls?: boolean;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
  url: URL;
}

const certificateErrors = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);
const unreachableErrors = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'CONNECT_TIMEOUT']);

function codedError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/** The host:port a URL talks to, as users write it. */
export function urlHost(url: URL): string {
  return url.host;
}

/**
 * HTTP(S) with keep-alive connection pools, a connect timeout (an unreachable host fails in seconds)
 * and an idle timeout (a stalled transfer fails instead of hanging), and TLS verification per request.
 */
export class Transport {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly userAgent: string;

  constructor(options: TransportOptions = {}) {
    this.connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
    this.userAgent = options.userAgent ?? 'tsbuild';
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 16, maxFreeSockets: 16, scheduling: 'lifo' as const };
    this.httpAgent = new http.Agent(agentOptions);
    this.httpsAgent = new https.Agent(agentOptions);
  }

  request(req: HttpRequest): Promise<HttpResponse> {
    const { url } = req;
    const secure = url.protocol === 'https:';
    const headers: Record<string, string> = { 'user-agent': this.userAgent, ...req.headers };
    if (Buffer.isBuffer(req.body)) headers['content-length'] = String(req.body.length);
    const options: https.RequestOptions = {
      method: req.method,
      headers,
      agent: secure ? this.httpsAgent : this.httpAgent,
      ...(secure ? { rejectUnauthorized: req.verifyTls !== false, ...(isIP(url.hostname.replace(/^\[|\]$/g, '')) ? {} : { servername: url.hostname }) } : {}),
    };
    return new Promise<HttpResponse>((resolve, reject) => {
      let settled = false;
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        reject(this.translate(e, url, secure));
      };
      const outgoing = (secure ? https : http).request(url, options, (res) => {
        settled = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url });
      });
      outgoing.on('error', fail);
      outgoing.on('socket', (socket: Socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(
          () => outgoing.destroy(codedError(`no connection within ${this.connectTimeoutMs / 1000}s`, 'CONNECT_TIMEOUT')),
          this.connectTimeoutMs,
        );
        socket.once('connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      outgoing.setTimeout(this.idleTimeoutMs, () => outgoing.destroy(codedError(`${url.host} sent nothing for ${this.idleTimeoutMs / 1000}s`, 'IDLE_TIMEOUT')));
      const body = req.body;
      if (body === undefined) outgoing.end();
      else if (Buffer.isBuffer(body)) outgoing.end(body);
      else {
        body.once('error', (e) => outgoing.destroy(e));
        body.pipe(outgoing);
      }
    });
  }

  private translate(e: Error, url: URL, secure: boolean): Error {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (unreachableErrors.has(code)) return new UnreachableError(url.host, describeNetworkError(code, e.message));
    if (secure && certificateErrors.has(code)) return new TlsError(url.host, `its certificate is not trusted (${e.message})`);
    if (secure && (code === 'EPROTO' || code.startsWith('ERR_SSL') || /wrong version number|packet length too long/i.test(e.message))) {
      return new TlsError(url.host, `the TLS handshake failed (${e.message.split('\n')[0]}); the server may speak plain HTTP`);
    }
    return e;
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

function describeNetworkError(code: string, message: string): string {
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused; is the registry running and the port right?';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'the host name does not resolve';
    case 'CONNECT_TIMEOUT':
      return `${message}; check the address and the network`;
    default:
      return message;
  }
}

/** Reads a whole (small) response body. */
export async function readBody(res: HttpResponse, limit = 16 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      res.body.destroy();
      throw new Error(`response from ${res.url.host} is larger than ${limit} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Throws away a response body so the connection can be reused. */
export function discard(res: HttpResponse): void {
  res.body.resume();
}

export function header(res: HttpResponse, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}
