/**
 * The terminal view of the registry client's progress events (pull, push): the client only emits
 * events (registry/client/progress-events.ts); how they look on a screen or in a log is the CLI's.
 */
import type { Digest } from '../oci/index.js';
import type { BlobPhase, ProgressEvent, ProgressListener } from '../registry/client/index.js';
import { formatSize } from './format.js';

interface Row {
  digest: Digest;
  phase: BlobPhase;
  current: number;
  total: number;
  startedAt: number;
  note?: string;
}

const phaseText: Record<BlobPhase, string> = {
  waiting: 'Waiting',
  downloading: 'Downloading',
  uploading: 'Pushing',
  exists: 'Already exists',
  mounted: 'Mounted',
  retrying: 'Retrying',
  done: 'Done',
};

/**
 * Shows transfers: on a terminal one redrawn bar per blob (bytes, rate); otherwise one plain line
 * when a blob starts, is retried and finishes, so logs stay readable.
 */
export class ProgressPrinter {
  private readonly rows = new Map<Digest, Row>();
  private drawnLines = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly tty: boolean;

  constructor(
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
    options: { tty?: boolean } = {},
  ) {
    this.tty = options.tty ?? out.isTTY === true;
  }

  readonly listener: ProgressListener = (event) => this.handle(event);

  private handle(event: ProgressEvent): void {
    if (event.type === 'notice' || event.type === 'resolved' || event.type === 'manifest') {
      if (event.type === 'notice') this.line(event.message);
      else if (event.type === 'resolved') this.line(`${event.reference}: resolved to ${event.digest} via ${event.endpoint}`);
      else this.line(`${event.reference}: manifest ${event.digest}`);
      return;
    }
    const short = event.digest.slice(7, 19);
    let row = this.rows.get(event.digest);
    const changed = !row || row.phase !== event.phase;
    if (!row) {
      row = { digest: event.digest, phase: event.phase, current: 0, total: event.total, startedAt: Date.now() };
      this.rows.set(event.digest, row);
    }
    if (changed && (event.phase === 'downloading' || event.phase === 'uploading') && row.phase === 'waiting') row.startedAt = Date.now();
    row.phase = event.phase;
    row.current = event.current;
    row.total = event.total;
    if (event.note !== undefined) row.note = event.note;
    if (this.tty) this.schedule(event.phase === 'done' || event.phase === 'exists' || event.phase === 'mounted');
    else if (changed && event.phase !== 'waiting')
      this.out.write(
        `${short}: ${phaseText[event.phase]}${event.phase === 'done' ? ` ${formatSize(event.total)}` : ''}${event.note ? ` (${event.note})` : ''}\n`,
      );
  }

  private line(text: string): void {
    if (this.tty) {
      this.clear();
      this.out.write(text + '\n');
      this.draw();
    } else this.out.write(text + '\n');
  }

  private schedule(now: boolean): void {
    if (now) {
      this.redraw();
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.redraw();
    }, 100);
  }

  private clear(): void {
    if (this.drawnLines) this.out.write(`\x1b[${this.drawnLines}A\x1b[J`);
    this.drawnLines = 0;
  }

  private redraw(): void {
    this.clear();
    this.draw();
  }

  private draw(): void {
    const width = Math.max(40, (this.out.columns ?? 80) - 1);
    const lines: string[] = [];
    for (const row of this.rows.values()) {
      const label = `${row.digest.slice(7, 19)}: ${phaseText[row.phase].padEnd(14)}`;
      if (row.phase === 'downloading' || row.phase === 'uploading' || row.phase === 'retrying') {
        const seconds = Math.max(0.001, (Date.now() - row.startedAt) / 1000);
        const stats = ` ${formatSize(row.current)}/${formatSize(row.total)} ${formatSize(Math.round(row.current / seconds))}/s`;
        const barWidth = Math.max(10, Math.min(40, width - label.length - stats.length - 2));
        const filled = row.total ? Math.min(barWidth, Math.round((row.current / row.total) * barWidth)) : 0;
        lines.push(`${label}[${'='.repeat(filled)}${filled < barWidth ? '>' : ''}${' '.repeat(Math.max(0, barWidth - filled - 1))}]${stats}`.slice(0, width));
      } else lines.push(`${label}${row.phase === 'done' ? ` ${formatSize(row.total)}` : ''}`.slice(0, width));
    }
    if (lines.length) this.out.write(lines.join('\n') + '\n');
    this.drawnLines = lines.length;
  }

  /** Draws the final state and stops redrawing. */
  finish(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.tty) this.redraw();
  }
}
