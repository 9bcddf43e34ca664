/** What the solver reports while it builds; the plain and TTY displays render it. */
export interface StepHandle {
  /** Output of the step's command (RUN), as it arrives. */
  log(chunk: Buffer | string): void;
  /** A note shown with the step (e.g. "pulling busybox"). */
  note(text: string): void;
  cached(): void;
  done(): void;
  error(message: string): void;
  /** The build was interrupted while this step ran (BuildKit's `CANCELED`). */
  cancelled(): void;
}

export interface ProgressDisplay {
  /** Starts a step; `name` is BuildKit's `[stage i/n] INSTR` text. */
  step(name: string): StepHandle;
  /** Prints a line outside any step (a summary, a warning). */
  message(text: string): void;
  /** Flushes and stops any live rendering. */
  close(): void;
}

export function formatSeconds(ms: number): string {
  return (ms / 1000).toFixed(1) + 's';
}

/** Output of a failing command kept for the error message: the last lines only. */
export class TailBuffer {
  private text = '';
  constructor(private readonly limit = 64 * 1024) {}
  push(chunk: Buffer | string): void {
    this.text += chunk.toString();
    if (this.text.length > this.limit) this.text = this.text.slice(-this.limit);
  }
  lines(n: number): string[] {
    const lines = this.text.replace(/\n$/, '').split('\n');
    return lines.slice(-n).filter((l, i, a) => !(a.length === 1 && l === ''));
  }
}
