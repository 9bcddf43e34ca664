import type { IncomingMessage } from 'node:http';
import { RegistryError } from './errors.js';

/** Reads a small request body (a manifest) into memory, refusing more than `limit` bytes with 413. */
export async function readSmallBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooBig = () => new RegistryError('SIZE_INVALID', `manifest is larger than the ${limit}-byte limit`, { limit }, 413);
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) throw tooBig();
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > limit) throw tooBig();
    chunks.push(chunk as Buffer);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
}
