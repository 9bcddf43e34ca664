/**
 * Compression before a push takes seconds per hundred megabytes; this shows it as it goes: on a terminal
 * one line redrawn in place, otherwise a line per layer at most every 2 seconds and when it is done.
 */
import type { Digest } from '../oci/index.js';
import { formatSize } from './format.js';

export function compressionReporter(
  out: NodeJS.WritableStream & { isTTY?: boolean },
  label = 'Compressing',
): (layer: Digest, done: number, total: number) => void {
  const last = new Map<Digest, number>();
  return (layer, done, total) => {
    const now = Date.now();
    const finished = done >= total;
    const text = `${layer.slice(7, 19)}: ${label} ${formatSize(done)}/${formatSize(total)}`;
    if (out.isTTY) {
      out.write(`\r\x1b[K${text}${finished ? '\n' : ''}`);
      return;
    }
    const before = last.get(layer);
    if (!finished && before !== undefined && now - before < 2000) return;
    if (finished && before === -1) return;
    last.set(layer, finished ? -1 : now);
    out.write(`${text}\n`);
  };
}
