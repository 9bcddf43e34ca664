import { formatSeconds, TailBuffer, type ProgressDisplay, type StepHandle } from './progress.js';

interface Row {
  id: number;
  name: string;
  started: number;
  ended?: number;
  state: 'running' | 'done' | 'cached' | 'error' | 'cancelled';
  output: TailBuffer;
  note?: string;
}

const LIVE_OUTPUT_LINES = 6;

/**
 * A live display like BuildKit's: finished steps scroll up with their time, running steps stay at the
 * bottom with a ticking timer and the last lines of their output; redrawn ten times a second.
 */
export class TtyProgress implements ProgressDisplay {
  private counter = 0;
  private readonly rows: Row[] = [];
  private drawnLines = 0;
  private readonly timer: NodeJS.Timeout;
  private readonly started = Date.now();
  private seen = 0;
  private finished = 0;
  private closed = false;

  constructor(private readonly out: NodeJS.WriteStream) {
    this.timer = setInterval(() => this.render(), 100);
    this.timer.unref();
  }

  private width(): number {
    return Math.max(40, this.out.columns || 100);
  }

  private clip(s: string): string {
    const w = this.width();
    return s.length > w ? s.slice(0, w - 1) : s;
  }

  private render(): void {
    let text = this.drawnLines ? `\x1b[${this.drawnLines}A\r\x1b[J` : '';
    // Finished rows at the top are printed once and leave the live area.
    while (this.rows.length && this.rows[0]!.state !== 'running') {
      const row = this.rows.shift()!;
      text += this.clip(this.line(row)) + '\n';
      if (row.state === 'error') for (const l of row.output.lines(LIVE_OUTPUT_LINES * 2)) text += this.clip(`  > ${l}`) + '\n';
    }
    const live: string[] = [`[+] Building ${formatSeconds(Date.now() - this.started)} (${this.finished}/${this.seen})${this.closed ? ' FINISHED' : ''}`];
    for (const row of this.rows) {
      live.push(this.line(row));
      if (row.state === 'running') for (const l of row.output.lines(LIVE_OUTPUT_LINES)) live.push(`  > ${l}`);
    }
    text += live.map((l) => this.clip(l)).join('\n') + '\n';
    this.drawnLines = live.length;
    this.out.write(text);
  }

  private line(row: Row): string {
    const time = formatSeconds((row.ended ?? Date.now()) - row.started);
    const status =
      row.state === 'cached'
        ? 'CACHED'
        : row.state === 'error'
          ? 'ERROR'
          : row.state === 'cancelled'
            ? 'CANCELED'
            : row.state === 'done'
              ? `${time}`
              : `${time}${row.note ? ' ' + row.note : ''}`;
    const mark = row.state === 'running' ? '=>' : row.state === 'error' ? '=> ERROR' : '=>';
    return `${mark} ${row.name}  ${status}`;
  }

  step(name: string): StepHandle {
    const row: Row = { id: ++this.counter, name, started: Date.now(), state: 'running', output: new TailBuffer() };
    this.rows.push(row);
    this.seen++;
    const finish = (state: Row['state']) => {
      if (row.state !== 'running') return;
      this.finished++;
      row.state = state;
      row.ended = Date.now();
      this.render();
    };
    return {
      log: (chunk) => row.output.push(chunk),
      note: (text) => (row.note = text),
      cached: () => finish('cached'),
      done: () => finish('done'),
      error: () => finish('error'),
      cancelled: () => finish('cancelled'),
    };
  }

  message(text: string): void {
    this.render();
    const drawn = this.drawnLines;
    this.out.write(`${drawn ? `\x1b[${drawn}A\r\x1b[J` : ''}${text}\n`);
    this.drawnLines = 0;
    this.render();
  }

  close(): void {
    clearInterval(this.timer);
    this.closed = true;
    this.render();
  }
}
