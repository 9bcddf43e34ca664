import http from 'node:http';

/** How a request that was left open ended: an answer, or its connection closing without one. */
export type Outcome = { status: number; code: string | undefined; headers: http.IncomingHttpHeaders } | { closed: true };

export interface OpenRequest {
  req: http.ClientRequest;
  /** Settles once the server answered (the answer's status and error code) or the connection closed. */
  outcome: Promise<Outcome>;
}

/**
 * Starts a request whose body the caller writes (or does not) with `req.write`: for stalled, slow and
 * streamed uploads. Nothing is sent until the caller writes; `headers` decide Content-Length or chunked.
 */
export function openRequest(base: string, method: string, path: string, headers: Record<string, string | number>): OpenRequest {
  const url = new URL(base);
  const req = http.request({ host: url.hostname, port: url.port, method, path, headers, agent: false });
  const outcome = new Promise<Outcome>((resolve) => {
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      const done = () => {
        let code: string | undefined;
        try {
          code = JSON.parse(Buffer.concat(chunks).toString('utf8'))?.errors?.[0]?.code;
        } catch {
          code = undefined;
        }
        resolve({ status: res.statusCode!, code, headers: res.headers });
      };
      res.on('end', done);
      res.on('error', done);
      res.on('aborted', done);
    });
    req.on('error', () => answered || resolve({ closed: true }));
    req.on('close', () => answered || resolve({ closed: true }));
  });
  req.flushHeaders();
  return { req, outcome };
}

/** Bytes an upload session holds, from its status GET's `Range` (`0-0` is read as none: uploads here are never 1 byte). */
export function rangeBytes(range: string | string[] | undefined): number {
  const m = /^0-(\d+)$/.exec(String(range));
  if (!m) throw new Error(`not an upload Range header: ${String(range)}`);
  return m[1] === '0' ? 0 : Number(m[1]) + 1;
}
