import type { Readable } from 'node:stream';
import type { Digest, Reference } from '../../oci/index.js';
import { repositoryScope } from './auth.js';
import type { RegistryClient } from './client.js';
import { NotFoundError } from './errors.js';
import { describeEndpoint, endpointRepository, type Endpoint } from './hosts.js';
import { discard, header } from './transport.js';

export interface OpenedBlob {
  /** The bytes from `offset` on; unverified — the caller hashes them (a mirror tees them to clients and the store). */
  stream: Readable;
  /** Where the stream starts (0 when the server ignored the range). */
  offset: number;
  /** The blob's full size when the server said. */
  size?: number;
  endpoint: Endpoint;
}

/** Opens a blob for streaming from the first endpoint that has it (the pull-through mirror's upstream fetch). */
export async function openBlob(
  client: RegistryClient,
  ref: Pick<Reference, 'registry' | 'repository'>,
  digest: Digest,
  options: { offset?: number; endpoints?: Endpoint[] } = {},
): Promise<OpenedBlob> {
  const list = options.endpoints ?? (await client.endpoints(ref.registry));
  let lastError: unknown;
  for (const endpoint of list) {
    const repo = endpointRepository(endpoint, ref.repository);
    try {
      const res = await client.request(endpoint, {
        method: 'GET',
        path: `/v2/${repo}/blobs/${digest}`,
        headers: options.offset ? { range: `bytes=${options.offset}-` } : {},
        scopes: [repositoryScope(repo, ['pull'])],
        followRedirects: true,
      });
      if (res.status === 404) {
        discard(res);
        lastError = new NotFoundError(`blob ${digest} in ${ref.registry}/${ref.repository}`, `${describeEndpoint(endpoint)} does not have it`);
        continue;
      }
      const range = /^bytes (\d+)-\d+\/(\d+)$/.exec(header(res, 'content-range') ?? '');
      const offset = res.status === 206 && range ? Number(range[1]) : 0;
      const size = range ? Number(range[2]) : header(res, 'content-length') ? Number(header(res, 'content-length')) : undefined;
      return { stream: res.body, offset, ...(size !== undefined ? { size } : {}), endpoint };
    } catch (e) {
      lastError = e;
    }
  }
  throw lastError ?? new NotFoundError(`blob ${digest} in ${ref.registry}/${ref.repository}`);
}

/** A blob's size when the endpoint has it in the repository (HEAD); undefined when it answers 404. */
export async function statBlob(client: RegistryClient, endpoint: Endpoint, repository: string, digest: Digest): Promise<number | undefined> {
  const repo = endpointRepository(endpoint, repository);
  const res = await client.request(endpoint, {
    method: 'HEAD',
    path: `/v2/${repo}/blobs/${digest}`,
    scopes: [repositoryScope(repo, ['pull'])],
    followRedirects: true,
  });
  discard(res);
  if (res.status === 404) return undefined;
  const length = header(res, 'content-length');
  return length !== undefined ? Number(length) : undefined;
}
