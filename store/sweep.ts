import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { TEMP_PATTERN } from './driver/filesystem-driver.js';
import { processAlive } from './image-index.js';

/**
 * Removes what a crashed process left behind under `dir`: temp files whose writer (pid in the name) is
 * gone, and stale locks. Live writers' temp files are left alone.
 */
export async function sweepTempFiles(dir: string): Promise<string[]> {
  const removed: string[] = [];
  const visit = async (path: string, depth: number): Promise<void> => {
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
      } else if (entry.isDirectory() && depth < 12 && entry.name !== 'snapshots') {
        await visit(full, depth + 1);
      }
    }
  };
  await visit(dir, 0);
  return removed;
}
