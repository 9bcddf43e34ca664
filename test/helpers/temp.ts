import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh temp dir removed when the process exits. */
export function tempDir(prefix = 'tsbuild-test-'): string {
  const dir = mkdtempSync(join(process.env.TSBUILD_TEST_TMP ?? tmpdir(), prefix));
  process.once('exit', () => {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // mounts may still be busy in a failed test; the OS temp cleaner takes it
    }
  });
  return dir;
}
