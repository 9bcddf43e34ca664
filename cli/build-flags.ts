/**
 * The build flags docker and buildx users type that need more than a value: --annotation, --add-host,
 * --ssh, a context on standard input, URL contexts, --load into dockerd, and the check warnings BuildKit
 * prints after a build.
 */
import { execFile } from 'node:child_process';
import { createReadStream, promises as fs } from 'node:fs';
import http from 'node:http';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { checkDockerfile, type CheckProblem } from '../builder/frontend/index.js';
import { writeImageArchive } from '../builder/image/index.js';
import { parseNamedContext, type NamedContext } from '../builder/solver/index.js';
import { defaultPlatform, formatPlatform, parsePlatform } from '../oci/index.js';
import { tempName, type Store } from '../store/index.js';
import { UsageError } from './command.js';

const exec = promisify(execFile);

/**
 * `--annotation` as buildx takes it: `KEY=VALUE` and `manifest:KEY=VALUE` (also `manifest[linux/amd64]:…`)
 * annotate the image manifest. BuildKit refuses index annotations for a single-platform export, and so do we.
 */
export function parseAnnotations(specs: string[], platform?: string): Record<string, string> {
  const out: Record<string, string> = {};
  const here = platform ? parsePlatform(platform) : defaultPlatform();
  for (const spec of specs) {
    let types = ['manifest'];
    let kv = spec;
    const colon = spec.indexOf(':');
    const firstEq = spec.indexOf('=');
    if (colon > 0 && (firstEq < 0 || colon < firstEq)) {
      const parts = spec.slice(0, colon).split(',');
      if (parts.every((t) => /^(manifest|index|manifest-descriptor|index-descriptor)(\[[^\]]*\])?$/.test(t))) {
        types = parts;
        kv = spec.slice(colon + 1);
      }
    }
    const eq = kv.indexOf('=');
    if (eq <= 0) throw new UsageError(`--annotation "${spec}": expected KEY=VALUE, manifest:KEY=VALUE or manifest[PLATFORM]:KEY=VALUE`);
    for (const t of types) {
      const tm = /^([a-z-]+)(?:\[([^\]]*)\])?$/.exec(t)!;
      const kind = tm[1]!;
      if (kind === 'index' || kind === 'index-descriptor') {
        throw new UsageError(
          `--annotation "${spec}": index annotations not supported for single platform export (as in BuildKit: tsbuild builds one platform, with no image index)`,
        );
      }
      if (kind === 'manifest-descriptor')
        throw new UsageError(`--annotation "${spec}": manifest-descriptor annotations are not supported by tsbuild; use manifest:KEY=VALUE`);
      if (tm[2] !== undefined) {
        let p;
        try {
          p = parsePlatform(tm[2]);
        } catch {
          throw new UsageError(`--annotation "${spec}": ${tm[2]} is not a platform`);
        }
        // an annotation for another platform does not apply to this build
        if (formatPlatform(p) !== formatPlatform(here)) continue;
      }
      out[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
  }
  return out;
}

/** `--add-host HOST:IP` (or `HOST=IP`, as newer docker), IPv6 addresses included; `host-gateway` is refused. */
export function parseAddHosts(specs: string[]): Array<{ host: string; ip: string }> {
  return specs.map((spec) => {
    const sep = spec.includes('=') ? spec.indexOf('=') : spec.indexOf(':');
    const host = sep < 0 ? '' : spec.slice(0, sep);
    let ip = sep < 0 ? '' : spec.slice(sep + 1);
    if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
    if (!host || !ip) throw new UsageError(`--add-host "${spec}": expected HOST:IP`);
    if (ip === 'host-gateway')
      throw new UsageError(`--add-host "${spec}": host-gateway is dockerd's address; RUN steps share the host's network here, so use 127.0.0.1`);
    if (!isIP(ip)) throw new UsageError(`--add-host "${spec}": ${ip} is not an IP address`);
    return { host, ip };
  });
}

/**
 * `--ssh default|ID[=SOCKET]`: the agent sockets RUN --mount=type=ssh reaches. `default` alone is
 * $SSH_AUTH_SOCK. A key file (buildx also takes those) is refused: run ssh-agent and ssh-add the key.
 */
export async function parseSsh(specs: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const id = eq < 0 ? spec : spec.slice(0, eq);
    if (!id) throw new UsageError(`--ssh "${spec}": expected default or ID=SOCKET`);
    const paths =
      eq < 0
        ? []
        : spec
            .slice(eq + 1)
            .split(',')
            .filter(Boolean);
    if (paths.length === 0) {
      const sock = process.env.SSH_AUTH_SOCK;
      if (!sock) throw new UsageError(`--ssh ${spec}: SSH_AUTH_SOCK is not set; start ssh-agent or give ${id}=SOCKET`);
      paths.push(sock);
    }
    if (paths.length > 1) throw new UsageError(`--ssh "${spec}": one agent socket per id`);
    const path = paths[0]!;
    const st = await fs.stat(path).catch(() => undefined);
    if (!st) throw new UsageError(`--ssh ${id}: ${path} does not exist`);
    if (!st.isSocket()) throw new UsageError(`--ssh ${id}: ${path} is not an agent socket (key files are not supported: run ssh-agent and ssh-add the key)`);
    out.set(id, path);
  }
  return out;
}

/** docker's remote contexts: URLs and git addresses. tsbuild builds local directories (or a tar on stdin) only. */
export async function refuseRemoteContext(context: string): Promise<void> {
  const remote =
    /^(https?|git|ssh):\/\//i.test(context) ||
    /^git@[^:]+:/.test(context) ||
    (/^github\.com\//.test(context) && !(await fs.stat(context).catch(() => undefined)));
  if (remote) {
    throw new UsageError(
      `build context ${context}: URL and git contexts are not supported by tsbuild; clone or download it and pass the directory (or pipe a tar: tsbuild build -t REF - < context.tar)`,
    );
  }
}

/**
 * `tsbuild build -` : standard input holds the context as a tar (plain, gzip, bzip2, xz or zstd), or —
 * as with docker — just a Dockerfile and no context. Unpacked into a temp dir the caller removes.
 */
export async function contextFromStdin(store: Store): Promise<{ dir: string; dockerfileText?: string; remove(): Promise<void> }> {
  if (process.stdin.isTTY) throw new UsageError('build context "-" reads a tar (or a Dockerfile) from standard input, which is a terminal: pipe one in');
  const dir = tempName(join(await store.localDir('tmp'), 'stdin-context'));
  await fs.mkdir(join(dir, 'context'), { recursive: true });
  const remove = () => fs.rm(dir, { recursive: true, force: true });
  try {
    const file = join(dir, 'input');
    await pipeline(process.stdin, (await fs.open(file, 'w')).createWriteStream());
    const head = Buffer.alloc(512);
    const fh = await fs.open(file, 'r');
    const { bytesRead } = await fh.read(head, 0, 512, 0);
    await fh.close();
    const compressed = [
      [0x1f, 0x8b],
      [0x42, 0x5a, 0x68],
      [0xfd, 0x37, 0x7a, 0x58, 0x5a],
      [0x28, 0xb5, 0x2f, 0xfd],
    ].some((m) => m.every((b, i) => head[i] === b));
    const ustar = bytesRead >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar';
    if (!compressed && !ustar) {
      // docker build - < Dockerfile: the input is the Dockerfile, the context is empty
      const text = await fs.readFile(file, 'utf8');
      await fs.rm(file);
      return { dir: join(dir, 'context'), dockerfileText: text, remove };
    }
    try {
      await exec('tar', ['-x', '--no-same-permissions', '-f', file, '-C', join(dir, 'context')], { maxBuffer: 1 << 20 });
    } catch (e) {
      throw new Error(
        `the build context on standard input is not a readable tar: ${((e as { stderr?: string }).stderr || (e as Error).message).trim().split('\n')[0]}`,
      );
    }
    await fs.rm(file);
    return { dir: join(dir, 'context'), remove };
  } catch (e) {
    await remove();
    throw e;
  }
}

/** dockerd's API socket: $DOCKER_HOST when it is a unix:// address, else /var/run/docker.sock. */
function dockerSocket(): string {
  const host = process.env.DOCKER_HOST;
  if (host?.startsWith('unix://')) return host.slice(7);
  if (host) throw new Error(`--load: DOCKER_HOST=${host} is not a unix socket; tsbuild loads into a local dockerd only`);
  return '/var/run/docker.sock';
}

/**
 * `--load`: the image goes into dockerd as `docker load` sends it — a docker archive POSTed to
 * /images/load over the API socket. Returns dockerd's own report (`Loaded image: app:v1`).
 */
export async function loadIntoDocker(store: Store, image: { digest: string; mediaType: string; size: number; names: string[] }): Promise<string[]> {
  const socket = dockerSocket();
  if (!(await fs.stat(socket).catch(() => undefined))?.isSocket()) throw new Error(`--load: dockerd is not running (no API socket at ${socket})`);
  const file = tempName(join(await store.localDir('tmp'), 'load.tar'));
  try {
    await writeImageArchive(store, [image as Parameters<typeof writeImageArchive>[1][number]], file, 'docker');
    const { size } = await fs.stat(file);
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.request(
        { socketPath: socket, method: 'POST', path: '/images/load?quiet=1', headers: { 'Content-Type': 'application/x-tar', 'Content-Length': size } },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () =>
            res.statusCode === 200 ? resolve(text) : reject(new Error(`--load: dockerd answered ${res.statusCode}: ${text.trim().split('\n')[0]}`)),
          );
          res.on('error', reject);
        },
      );
      req.on('error', (e) => reject(new Error(`--load: cannot reach dockerd at ${socket}: ${e.message}`)));
      createReadStream(file).on('error', reject).pipe(req);
    });
    // dockerd streams JSON messages; an error arrives as {"errorDetail":…} with status 200
    const lines: string[] = [];
    for (const line of body.split(/\r?\n/).filter(Boolean)) {
      let msg: { stream?: string; error?: string };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        continue;
      }
      if (msg.error) throw new Error(`--load: dockerd refused the image: ${msg.error}`);
      if (msg.stream) lines.push(msg.stream.trim());
    }
    return lines.filter(Boolean);
  } finally {
    await fs.rm(file, { force: true });
  }
}

/** BuildKit prints the Dockerfile's check warnings after a build that succeeded. */
export function checkWarnings(text: string, opts: { file: string; buildArgs: Record<string, string>; target?: string; platform?: string }): string {
  let problems: CheckProblem[];
  try {
    problems = checkDockerfile(text, opts).filter((p) => p.severity !== 'error');
  } catch {
    return '';
  }
  if (problems.length === 0) return '';
  const lines = [`\n ${problems.length} warning${problems.length > 1 ? 's' : ''} found (use tsbuild build --check for details):`];
  for (const p of problems) lines.push(` - ${p.rule}: ${p.message} (line ${p.line})`);
  return lines.join('\n') + '\n';
}

/** The flags above, checked before anything is built: a bad one is a one-line error, never ignored. */
export async function parseBuildExtras(req: {
  annotations: string[];
  addHosts: string[];
  ssh: string[];
  buildContexts: string[];
  platform?: string | undefined;
}): Promise<{
  annotations?: Record<string, string>;
  extraHosts?: Array<{ host: string; ip: string }>;
  ssh?: Map<string, string>;
  namedContexts?: Map<string, NamedContext>;
}> {
  const annotations = parseAnnotations(req.annotations, req.platform);
  const extraHosts = parseAddHosts(req.addHosts);
  const ssh = await parseSsh(req.ssh);
  const namedContexts = new Map<string, NamedContext>();
  for (const spec of req.buildContexts) {
    try {
      const [name, c] = await parseNamedContext(spec);
      namedContexts.set(name, c);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  return {
    ...(Object.keys(annotations).length ? { annotations } : {}),
    ...(extraHosts.length ? { extraHosts } : {}),
    ...(ssh.size ? { ssh } : {}),
    ...(namedContexts.size ? { namedContexts } : {}),
  };
}

/** Building needs root: overlay mounts and runc containers (rootless builds are not supported). One sentence, before anything is touched. */
export function requireRoot(): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error(
      `tsbuild build needs root (uid 0) for overlay mounts and runc containers, and runs as uid ${process.getuid()}; rootless builds are not supported: run it as root or with sudo`,
    );
  }
}
