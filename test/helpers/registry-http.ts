import http from 'node:http';
import { createRegistryServer, type RegistryServer, type RegistryServerOptions } from '../../registry/index.js';
import { digestOf, MediaType, type Digest } from '../../oci/index.js';
import { tempDir } from './temp.js';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  json<T = any>(): T;
  /** The first error code of a spec error body. */
  code: string | undefined;
}

/** One HTTP request with the path sent exactly as given (fetch would normalize `..` and `//`). */
export function call(
  base: string,
  method: string,
  path: string,
  options: { headers?: Record<string, string | number>; body?: Buffer | string | undefined } = {},
): Promise<Reply> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path, headers: options.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        let code: string | undefined;
        try {
          code = JSON.parse(body.toString('utf8'))?.errors?.[0]?.code;
        } catch {
          code = undefined;
        }
        resolve({ status: res.statusCode!, headers: res.headers, body, json: () => JSON.parse(body.toString('utf8')), code });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

export interface TestRegistry {
  server: RegistryServer;
  url: string;
  host: string;
  call(method: string, path: string, options?: { headers?: Record<string, string | number>; body?: Buffer | string | undefined }): Promise<Reply>;
  close(): Promise<void>;
}

/** A registry on a free loopback port over a fresh store (logs off unless asked). */
export async function startTestRegistry(options: Partial<RegistryServerOptions> = {}): Promise<TestRegistry> {
  const server = createRegistryServer({ storage: tempDir('registry-test-'), port: 0, logLevel: 'silent', ...options });
  const url = await server.listen();
  return { server, url, host: server.host, call: (m, p, o) => call(url, m, p, o), close: () => server.close() };
}

/** Pushes bytes as a blob with the spec's POST + PUT ?digest= sequence; returns the digest. */
export async function pushBlob(reg: TestRegistry, name: string, bytes: Buffer | string, headers: Record<string, string> = {}): Promise<Digest> {
  const data = Buffer.from(bytes);
  const digest = digestOf(data);
  const start = await reg.call('POST', `/v2/${name}/blobs/uploads/`, { headers });
  if (start.status !== 202) throw new Error(`POST upload: ${start.status} ${start.body}`);
  const put = await reg.call('PUT', `${start.headers.location}?digest=${digest}`, {
    headers: { ...headers, 'Content-Type': 'application/octet-stream', 'Content-Length': data.length },
    body: data,
  });
  if (put.status !== 201) throw new Error(`PUT upload: ${put.status} ${put.body}`);
  return digest;
}

/** An OCI image manifest over a config and one layer pushed to `name`. */
export async function pushImage(
  reg: TestRegistry,
  name: string,
  tag: string,
  seed = 'x',
  headers: Record<string, string> = {},
): Promise<{ digest: Digest; bytes: Buffer; config: Digest; layer: Digest }> {
  const configBytes = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, seed });
  const layerBytes = `layer ${seed}`;
  const config = await pushBlob(reg, name, configBytes, headers);
  const layer = await pushBlob(reg, name, layerBytes, headers);
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: config, size: Buffer.byteLength(configBytes) },
      layers: [{ mediaType: MediaType.ociLayerGzip, digest: layer, size: Buffer.byteLength(layerBytes) }],
    }),
  );
  const put = await reg.call('PUT', `/v2/${name}/manifests/${tag}`, { headers: { ...headers, 'Content-Type': MediaType.ociManifest }, body: bytes });
  if (put.status !== 201) throw new Error(`PUT manifest: ${put.status} ${put.body}`);
  return { digest: digestOf(bytes), bytes, config, layer };
}
