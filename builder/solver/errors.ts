import type { SourceLocation } from '../frontend/index.js';

/** A step failed: where in the Dockerfile, what happened, and the tail of its output. */
export class BuildStepError extends Error {
  constructor(
    message: string,
    readonly step: string,
    readonly location?: SourceLocation,
    readonly outputTail: string[] = [],
    readonly exitCode?: number,
    /** The build was interrupted during this step: no output or excerpt to report. */
    readonly cancelled = false,
  ) {
    super(message);
    this.name = 'BuildStepError';
  }

  /** The Dockerfile's lines, attached by build() so the report can quote the failing instruction. */
  dockerfileLines?: string[];

  /** BuildKit's failure report: the step, its last output lines, the Dockerfile excerpt. */
  report(): string {
    const out: string[] = ['------', ` > ${this.step}:`, ...this.outputTail.map((l) => `   ${l}`), '------'];
    const loc = this.location;
    if (loc && this.dockerfileLines) {
      out.push(`${loc.file}:${loc.line}`, '--------------------');
      const first = Math.max(1, loc.line - 2);
      const last = Math.min(this.dockerfileLines.length, Math.max(loc.endLine ?? loc.line, loc.line) + 1);
      for (let n = first; n <= last; n++) {
        const inside = n >= loc.line && n <= (loc.endLine ?? loc.line);
        out.push(`${String(n).padStart(4)} | ${inside ? '>>> ' : ''}${this.dockerfileLines[n - 1] ?? ''}`);
      }
      out.push('--------------------');
    }
    return out.join('\n') + '\n';
  }

  /** One line: where and what. */
  summary(): string {
    const where = this.location ? `${this.location.file}:${this.location.line}: ` : '';
    return `${where}${this.step ? this.step.replace(/^\[[^\]]*\]\s*/, '').slice(0, 80) + ': ' : ''}${this.message}`;
  }
}

/** Thrown when the build was interrupted (SIGINT/SIGTERM); a step reports it as "cancelled by SIGINT". */
export class BuildCancelledError extends Error {
  constructor(readonly signal: string) {
    super(`cancelled by ${signal}`);
    this.name = 'BuildCancelledError';
  }
}

/** The error to throw when `signal` aborted the build: the interrupt, or another stage's failure. */
export function cancellation(signal: AbortSignal): Error {
  return signal.reason instanceof BuildCancelledError ? signal.reason : new Error('build cancelled');
}
