import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, promises as fs, readdirSync, realpathSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatReference, parseNormalized } from '../../oci/reference.js';
import type { ProgressDisplay, StepHandle } from '../progress/progress.js';
import { treeStats } from '../context/tree-stats.js';

/**
 * The no-op rebuild: a build whose every input is as it was when it last finished is answered from a
 * memo, without loading the builder — "process start plus a stat of the context". Each finished build
 * leaves `<root>/cache/noop/<key>` (JSON, shape `NoopRecord`), where the key hashes what the build was
 * asked (Dockerfile bytes, .dockerignore files, build args, target, platform, labels, network, tags, the
 * environment RUN sees, the tsbuild build) and the record holds:
 *
 *   context  a fingerprint of every entry of the context dir — name bytes, mode, owner, size, dev, inode,
 *            mtime, ctime — taken before the build read it (so a file changed during the build misses)
 *   images   the local image names other than the build's own tags, and their digests (a base retagged,
 *            pulled or removed misses)
 *   result   the image (manifest digest, id, media type, size) and the progress steps to show again
 *
 * It answers only when all of that is unchanged, the tags still name the image and its manifest and config
 * are in the store; anything it cannot vouch for (remote sources, ADD of a URL, flags it does not know)
 * takes the full build, whose cache gives the same image. Records reference blobs only through `result`;
 * GC may delete them at any time (a missing record is a full build).
 */
export interface NoopRecord {
  v: 1;
  context: string;
  images: string;
  result: { digest: string; imageId: string; mediaType: string; size: number };
  /** Progress steps of the build: name, and whether a rebuild shows it CACHED (steps that made layers). */
  steps: Array<[string, boolean]>;
}

export interface NoopRequest {
  root: string;
  contextDir: string;
  /** The Dockerfile's path (its bytes are read), or its text. */
  dockerfile: { path: string } | { text: string };
  tags: string[];
  /** Everything else the build was asked that shapes the image (build args, target, labels, …). */
  options: Record<string, unknown>;
}

/** Environment variables RUN steps see or the build reads. */
const ENV = [
  'SOURCE_DATE_EPOCH',
  'TSBUILD_RUNTIME',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'FTP_PROXY',
  'NO_PROXY',
  'ALL_PROXY',
  'http_proxy',
  'https_proxy',
  'ftp_proxy',
  'no_proxy',
  'all_proxy',
];

/** Dockerfiles whose result depends on more than the context: URLs and git sources fetched by ADD. */
const REMOTE = /^\s*ADD\b[^\n]*(?:https?:\/\/|git@|\.git\b)/im;

function sha(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function readOrEmpty(path: string): Promise<Buffer> {
  return fs.readFile(path).catch(() => Buffer.alloc(0));
}

/** The memo's file for a request, or undefined when the request is one the memo cannot vouch for. */
async function keyOf(req: NoopRequest): Promise<{ file: string; dockerfileText: string } | undefined> {
  const dockerfileText = 'text' in req.dockerfile ? req.dockerfile.text : await fs.readFile(req.dockerfile.path, 'utf8').catch(() => undefined);
  if (dockerfileText === undefined || REMOTE.test(dockerfileText)) return undefined;
  const context = resolve(req.contextDir);
  const ignores = ['path' in req.dockerfile ? `${resolve(req.dockerfile.path)}.dockerignore` : '', join(context, '.dockerignore')];
  // this code's own file: rewritten by every build of tsbuild (tsc's noop.js, or the bundle's chunk)
  const stamp = statSync(fileURLToPath(import.meta.url), { throwIfNoEntry: false });
  const h = createHash('sha256');
  h.update(
    JSON.stringify({
      v: 1,
      stamp: stamp ? `${stamp.size}:${stamp.mtimeMs}` : '',
      context,
      dockerfile: 'path' in req.dockerfile ? resolve(req.dockerfile.path) : '-',
      tags: req.tags,
      options: req.options,
    }),
  );
  h.update('\0' + sha(dockerfileText));
  for (const f of ignores) h.update('\0' + (f ? sha(await readOrEmpty(f)) : ''));
  for (const name of ENV) h.update(`\0${name}=${process.env[name] ?? '\u0000unset'}`);
  return { file: join(resolve(req.root), 'cache', 'noop', h.digest('hex').slice(0, 40)), dockerfileText };
}

/** A context this large is recorded as find(1) lists it (one process, tree-stats.ts), so its next checks take that way. */
const FIND_ENTRIES = 256;

/**
 * Every entry of the context: names as bytes, type, mode, owner, size, identity and times (no contents).
 * `leaveOut` (tsbuild's state root, when it lies inside the context) is not part of it, as in the build.
 * `way`: by lstat calls here (cheaper for small contexts), or listed by find(1) (for large ones; lstat
 * calls when find fails). The strings start with the way that made them, and only equal ways compare.
 */
export async function contextFingerprint(dir: string, leaveOut?: string, way: 'lstat' | 'find' = 'lstat'): Promise<{ context: string; entries: number }> {
  if (way === 'find') {
    try {
      const found = await treeStats(realOrResolved(dir), leaveOut === undefined ? undefined : realOrResolved(leaveOut));
      return { context: `find:${found.hex}`, entries: found.entries };
    } catch {
      // a path that is not UTF-8, find missing or failing: lstat calls below
    }
  }
  const h = createHash('sha256');
  let entries = 0;
  const skip = leaveOut === undefined ? undefined : Buffer.from(realOrResolved(leaveOut));
  const visit = (abs: Buffer, rel: Buffer): void => {
    if (skip?.equals(abs)) return;
    const st = lstatSync(abs);
    entries++;
    h.update(rel);
    h.update(`\0${st.mode}:${st.uid}:${st.gid}:${st.size}:${st.dev}:${st.ino}:${st.mtimeMs}:${st.ctimeMs}\n`);
    if (!st.isDirectory()) return;
    const names = readdirSync(abs, { encoding: 'buffer' }).sort(Buffer.compare);
    for (const n of names) visit(Buffer.concat([abs, Buffer.from('/'), n]), rel.length ? Buffer.concat([rel, Buffer.from('/'), n]) : n);
  };
  visit(Buffer.from(realOrResolved(dir)), Buffer.alloc(0));
  return { context: `lstat:${h.digest('hex')}`, entries };
}

function realOrResolved(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/** The local image names except `tags`, with their digests, as one hash; and what `tags` name now. */
async function imagesState(root: string, tags: string[]): Promise<{ others: string; tagged: Map<string, string> }> {
  // store/image-index.ts's file: when it is not where it was (no images, or another layout), the memo
  // cannot see a base being retagged and answers nothing (the throw ends in a full build)
  const records = JSON.parse(await fs.readFile(join(resolve(root), 'content', 'images', 'index.json'), 'utf8')) as Array<{ name?: string; digest?: string }>;
  if (!Array.isArray(records)) throw new Error('the image index is not a list');
  const own = new Set(tags.map((t) => formatReference(parseNormalized(t))));
  const others = records
    .filter((r) => !own.has(r.name ?? ''))
    .map((r) => `${r.name} ${r.digest}`)
    .sort();
  return { others: sha(others.join('\n')), tagged: new Map(records.filter((r) => own.has(r.name ?? '')).map((r) => [r.name!, r.digest!])) };
}

function blobExists(root: string, digest: string): boolean {
  return statSync(join(resolve(root), 'content', 'blobs', 'sha256', digest.replace(/^sha256:/, '')), { throwIfNoEntry: false }) !== undefined;
}

/** Inputs seen before a build runs: what the memo records once it succeeded. */
export interface NoopSnapshot {
  file: string;
  context: string;
  images: string;
}

/**
 * Looks for the earlier result of the same build. A hit has nothing it depends on changed; a miss
 * carries the inputs as they are now (the snapshot `rememberNoop` records once the build succeeds);
 * neither when the memo cannot vouch for this build.
 */
export async function noopCheck(req: NoopRequest): Promise<{ hit?: NoopRecord; snapshot?: NoopSnapshot }> {
  try {
    const key = await keyOf(req);
    if (!key) return {};
    const images = await imagesState(req.root, req.tags);
    const record = await fs
      .readFile(key.file, 'utf8')
      .then((t) => JSON.parse(t) as NoopRecord)
      .catch(() => undefined);
    const now = await contextFingerprint(req.contextDir, req.root, record?.context?.startsWith('find:') ? 'find' : 'lstat');
    const hit =
      record?.v === 1 &&
      record.images === images.others &&
      record.context === now.context &&
      req.tags.every((t) => images.tagged.get(formatReference(parseNormalized(t))) === record.result.digest) &&
      blobExists(req.root, record.result.digest) &&
      blobExists(req.root, record.result.imageId);
    if (hit) return { hit: record };
    // a miss builds anyway: a large context is recorded as find lists it (taken now, before the build),
    // so that its next checks take the cheaper way without a miss of their own
    const context =
      now.context.startsWith('lstat:') && now.entries >= FIND_ENTRIES ? (await contextFingerprint(req.contextDir, req.root, 'find')).context : now.context;
    return { snapshot: { file: key.file, context, images: images.others } };
  } catch {
    return {};
  }
}

/** Records a finished build, unless the local images changed under it (another process tagged or removed). */
export async function rememberNoop(req: NoopRequest, before: NoopSnapshot, result: NoopRecord['result'], steps: NoopRecord['steps']): Promise<void> {
  const after = await imagesState(req.root, req.tags);
  if (after.others !== before.images) return;
  const record: NoopRecord = { v: 1, context: before.context, images: before.images, result, steps };
  await fs.mkdir(join(before.file, '..'), { recursive: true });
  const tmp = `${before.file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  await fs.writeFile(tmp, JSON.stringify(record));
  await fs.rename(tmp, before.file);
}

/** Whether a rebuild shows a step CACHED: the steps that make layers (BuildKit shows those as hits). */
export function cachedOnRebuild(name: string, cached: boolean): boolean {
  return cached || /^\[[^\]]*\] (RUN|COPY|ADD|WORKDIR)\b/.test(name);
}

/** A progress display that passes everything on and keeps the steps' names and hits (for the memo). */
export function recordingProgress(inner: ProgressDisplay): { display: ProgressDisplay; steps: Array<[string, boolean]> } {
  const steps: Array<[string, boolean]> = [];
  const display: ProgressDisplay = {
    step(name: string): StepHandle {
      const entry: [string, boolean] = [name, false];
      // a pull or a cache import happens once; a rebuild does neither
      if (!/^(pulling |importing cache )/.test(name)) steps.push(entry);
      const handle = inner.step(name);
      return {
        log: (chunk) => handle.log(chunk),
        note: (text) => handle.note(text),
        cached: () => {
          entry[1] = true;
          handle.cached();
        },
        done: () => handle.done(),
        error: (message) => handle.error(message),
        cancelled: () => handle.cancelled(),
      };
    },
    message: (text) => inner.message(text),
    close: () => inner.close(),
  };
  return { display, steps };
}
