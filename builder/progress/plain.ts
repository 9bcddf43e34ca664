import { formatSeconds, type ProgressDisplay, type StepHandle } from './progress.js';

/**
 * BuildKit's plain output: `#N [stage i/n] INSTR`, then `#N 0.123 output line` for each line of
 * output, and `#N DONE 0.4s` / `#N CACHED` / `#N ERROR: ...` / `#N CANCELED`.
 */
export class PlainProgress implements ProgressDisplay {
  private counter = 0;

  constructor(private readonly out: NodeJS.WritableStream) {}

  step(name: string): StepHandle {
    const id = ++this.counter;
    const started = Date.now();
    const out = this.out;
    out.write(`#${id} ${name}\n`);
    let partial = '';
    let finished = false;
    const once = (f: () => void) => () => {
      if (finished) return;
      finished = true;
      f();
    };
    const flush = (final: boolean) => {
      const lines = partial.split('\n');
      partial = final ? '' : lines.pop()!;
      for (const line of final ? lines.filter((l, i) => l !== '' || i < lines.length - 1) : lines) {
        out.write(`#${id} ${formatSeconds(Date.now() - started).replace('s', '')} ${line.replace(/\r/g, '')}\n`);
      }
    };
    return {
      log(chunk) {
        partial += chunk.toString();
        flush(false);
      },
      note(text) {
        out.write(`#${id} ${text}\n`);
      },
      cached: once(() => out.write(`#${id} CACHED\n\n`)),
      cancelled: once(() => {
        flush(true);
        out.write(`#${id} CANCELED\n\n`);
      }),
      done: once(() => {
        flush(true);
        out.write(`#${id} DONE ${formatSeconds(Date.now() - started)}\n\n`);
      }),
      error(message) {
        once(() => {
          flush(true);
          out.write(`#${id} ERROR: ${message}\n\n`);
        })();
      },
    };
  }

  message(text: string): void {
    this.out.write(text + '\n');
  }

  close(): void {}
}
