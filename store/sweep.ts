import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { TEMP_PATTERN } from './driver/filesystem-driver.js';
import { processAlive } from './image-index.js';

/**
 * Directories under the root that hold no temp files of this kind, or whatever users put there, and are
 * not walked: `snapshots` (unpacked layers; the builder sweeps its own temp dirs there), the contents of
 * `RUN --mount=type=cache` dirs (`cache/<32 hex>[-N]`, as large as a package manager's cache) and what is
 * below `tmp/<entry>` (scratch dirs, removed whole by their owner's pid).
 */
function skipped(rel: string): boolean {
  return rel === 'snapshots' || /^cache\/[0-9a-f]{32}(-\d+)?$/.test(rel) || /^tmp\/[^/]+$/.test(rel);
}

/**
 * Removes what a crashed process left behind under `dir`: temp files whose writer (pid in the name) is
 * gone, and stale locks. Live writers' temp files are left alone. Every command runs it at start, so it
 * walks only where temp files are written (see `skipped`): the cost is the store's own metadata, not the
 * layers or caches it holds.
 */
export async function sweepTempFiles(dir: string): Promise<string[]> {
  const removed: string[] = [];
  const visit = async (path: string, depth: number, rel = ''): Promise<void> => {
    let entries;
    try {
      entries = await fs.readdir(path, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const full = join(path, entry.name);
      const m = TEMP_PATTERN.exec(entry.name);
      if (m && !processAlive(Number(m[1]))) {
        await fs.rm(full, { recursive: true, force: true });
        removed.push(full);
      } else if (entry.isDirectory() && depth < 12) {
        const childRel = rel ? `${rel}/${entry.name}` : entry.name;
        if (!skipped(childRel)) await visit(full, depth + 1, childRel);
      }
    }
  };
  await visit(dir, 0);
  return removed;
}
