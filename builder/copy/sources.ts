import { promises as fs, type Stats } from 'node:fs';
import { posix } from 'node:path';
import { compilePattern, hasWildcards, byteOrder, presentInTree, type WalkFilter } from '../context/index.js';
import { decodeName, fsPath, readdirNames } from '../snapshot/index.js';
import { resolveInRoot } from './root-path.js';

/** A file tree COPY/ADD reads from: the build context, a stage's or an image's rootfs. */
export interface SourceRoot {
  root: string;
  /** The context's .dockerignore (paths relative to root). */
  filter?: WalkFilter;
  /** COPY --from keeps owners; context files become root-owned (or --chown). */
  preserveOwnership: boolean;
  /** Describes the root in errors ("build context", "stage builder"). */
  label: string;
}

/** One matched local source. */
export interface PathSource {
  kind: 'path';
  /** As written (after wildcard expansion), relative to the root, e.g. `src/app.js`. */
  written: string;
  /** The real path relative to the root after following symlinks in scope ('.' for the root). */
  rel: string;
  stat: Stats;
  /** For --parents: the path below the pivot (`/./`) or the root, kept under the destination. */
  parentsPath: string;
}

function toRel(root: string, host: string): string {
  const rel = posix.relative(root, host);
  return rel === '' ? '.' : rel;
}

async function statInRoot(source: SourceRoot, written: string): Promise<PathSource | undefined> {
  const host = await resolveInRoot(source.root, written);
  const rel = toRel(source.root, host);
  const st = await fs.stat(fsPath(host)).catch(() => undefined);
  if (!st) return undefined;
  const writtenRel = posix.normalize(written).replace(/^\/+/, '') || '.';
  // An excluded directory with re-included entries below it is still there, holding just those.
  if (source.filter && !((await presentInTree(source.root, writtenRel, source.filter)) && (await presentInTree(source.root, rel, source.filter))))
    return undefined;
  const pivot = written.indexOf('/./');
  const parentsPath = (pivot >= 0 ? written.slice(pivot + 3) : writtenRel).replace(/^\/+/, '');
  return { kind: 'path', written: writtenRel, rel, stat: st, parentsPath: posix.normalize(parentsPath || '.') };
}

/** Expands one wildcard source component by component (Go filepath.Match per segment). */
async function expandWildcards(source: SourceRoot, pattern: string, doubleStar: boolean): Promise<string[]> {
  const parts = posix
    .normalize('/' + pattern)
    .split('/')
    .filter(Boolean);
  let current: string[] = [''];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const next: string[] = [];
    if (doubleStar && part === '**') {
      // Zero or more directories.
      const all: string[] = [];
      const visit = async (dir: string) => {
        all.push(dir);
        const host = await resolveInRoot(source.root, dir || '/');
        const entries = await fs.readdir(fsPath(host), { withFileTypes: true, encoding: 'buffer' }).catch(() => []);
        const named = entries.map((e) => ({ name: decodeName(e.name), isDirectory: e.isDirectory() }));
        for (const e of named.sort((a, b) => byteOrder(a.name, b.name))) {
          const child = dir ? `${dir}/${e.name}` : e.name;
          if (!e.isDirectory) continue;
          if (source.filter && !(await presentInTree(source.root, child, source.filter))) continue;
          await visit(child);
        }
      };
      for (const c of current) await visit(c);
      current = all;
      continue;
    }
    if (!hasWildcards(part)) {
      current = current.map((c) => (c ? `${c}/${part}` : part));
      continue;
    }
    const re = compilePattern(part);
    for (const c of current) {
      const host = await resolveInRoot(source.root, c || '/');
      const names = await readdirNames(host).catch(() => [] as string[]);
      for (const name of names.sort(byteOrder)) {
        if (!re.test(name)) continue;
        const child = c ? `${c}/${name}` : name;
        if (source.filter && !(await presentInTree(source.root, child, source.filter))) continue;
        next.push(child);
      }
    }
    current = next;
  }
  return current.filter((c) => c !== '');
}

/**
 * Resolves COPY/ADD source arguments to files in the root. A plain path must exist (and not be
 * .dockerignored); a wildcard must match at least one path.
 */
export async function resolvePathSources(source: SourceRoot, written: string, instruction: string, doubleStar = false): Promise<PathSource[]> {
  if (hasWildcards(written)) {
    const matches = await expandWildcards(source, written, doubleStar);
    const out: PathSource[] = [];
    for (const m of matches) {
      const s = await statInRoot(source, m);
      if (s) out.push(s);
    }
    if (out.length === 0) throw new Error(`${instruction} failed: no source files were specified: "${written}" matches nothing in the ${source.label}`);
    return out;
  }
  const found = await statInRoot(source, written);
  if (!found) {
    throw new Error(
      `${instruction} failed: "${written}" not found in the ${source.label}${source.filter ? ' (or excluded by .dockerignore)' : ''}: check the path`,
    );
  }
  return [found];
}
