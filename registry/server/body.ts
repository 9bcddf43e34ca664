import type { IncomingMessage } from 'node:http';
import { RegistryError } from './errors.js';

/**
 * Reads a small request body (a manifest) into memory, refusing more than `limit` bytes with 413. Past
 * the limit the rest is drained, not destroyed, so the client gets to read the 413 on a live connection.
 */
export function readSmallBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooBig = () => new RegistryError('SIZE_INVALID', `manifest is larger than the ${limit}-byte limit`, { limit }, 413);
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(tooBig());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    req.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total <= limit) chunks.push(chunk);
      else chunks.length = 0;
    });
    req.once('end', () => (total > limit ? reject(tooBig()) : resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total))));
    req.once('error', reject);
  });
}
