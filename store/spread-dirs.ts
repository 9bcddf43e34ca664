import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';

/** The file that says a directory was already offered the attribute (kept inside it). */
export const SPREAD_MARKER = '.spread-children';

/** Directories offered it by this process: later calls cost nothing. */
const offered = new Set<string>();

/**
 * Marks `dir`, whose children are large independent trees (snapshots and step dirs; RUN cache mounts and
 * build records under cache/), as the top of a
 * directory hierarchy: ext4's `T` attribute (chattr(1), EXT4_TOPDIR_FL). ext4's Orlov allocator then
 * places each new child directory in a block group it picks for free inodes, instead of in the parent's
 * group, and a child's files follow their directory.
 *
 * Why: on ext4 without a journal, each inode allocation steps over every free inode of the group that was
 * freed in the last minute (minutes while its inode table block is dirty): `recently_deleted()` in
 * fs/ext4/ialloc.c. In the group where a previous build, prune or `rm -rf` freed thousands of inodes, a
 * new file then costs 0.3–0.5 ms instead of ~20 µs. Measured on this machine kind: 2,000 files took
 * 260–750 ms in a plain directory and 35–43 ms in directories under a `T` parent; the bench context's
 * COPY step went from ~1.0 to ~0.3 s. Node has no ioctl, so chattr (e2fsprogs) sets it, once per
 * directory; a marker file records the attempt. Filesystems without the attribute (xfs, tmpfs, overlay)
 * refuse it, and a missing chattr is the same: both are ignored, nothing else depends on it.
 */
export async function spreadChildren(dir: string): Promise<void> {
  if (offered.has(dir)) return;
  offered.add(dir);
  const marker = join(dir, SPREAD_MARKER);
  try {
    await fs.access(marker);
    return;
  } catch {
    // not yet offered
  }
  await new Promise<void>((resolve) => {
    execFile('chattr', ['+T', dir], { timeout: 5_000 }, () => resolve());
  });
  await fs.writeFile(marker, '').catch(() => undefined);
}
