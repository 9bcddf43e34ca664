import { PlainProgress } from './plain.js';
import type { ProgressDisplay, StepHandle } from './progress.js';
import { TtyProgress } from './tty.js';

export { PlainProgress } from './plain.js';
export { TtyProgress } from './tty.js';
export { formatSize } from './size.js';
export { TailBuffer, formatSeconds, type ProgressDisplay, type StepHandle } from './progress.js';

/** Shows nothing (`build --quiet`). */
export class SilentProgress implements ProgressDisplay {
  step(): StepHandle {
    const none = () => undefined;
    return { log: none, note: none, cached: none, done: none, error: none, cancelled: none };
  }
  message(): void {}
  close(): void {}
}

/** `auto` is the live display on a terminal and plain lines otherwise, like `docker build --progress`. */
export function createProgress(mode: 'auto' | 'plain' | 'tty' | 'quiet' | string, out: NodeJS.WritableStream): ProgressDisplay {
  if (mode === 'quiet') return new SilentProgress();
  if (mode !== 'auto' && mode !== 'plain' && mode !== 'tty') throw new Error(`--progress must be auto, plain or tty, not "${mode}"`);
  const stream = out as NodeJS.WriteStream;
  if (mode === 'tty' || (mode === 'auto' && stream.isTTY)) return new TtyProgress(stream);
  return new PlainProgress(out);
}
