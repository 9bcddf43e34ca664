import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const created: string[] = [];
process.once('exit', () => {
  for (const dir of created) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // mounts may still be busy in a failed test; the OS temp cleaner takes it
    }
  }
});

/** A fresh temp dir removed when the process exits. */
export function tempDir(prefix = 'tsbuild-test-'): string {
  const dir = mkdtempSync(join(process.env.TSBUILD_TEST_TMP ?? tmpdir(), prefix));
  created.push(dir);
  return dir;
}
