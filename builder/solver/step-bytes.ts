import type { Digest } from '../../oci/index.js';
import { formatSize as size, type StepHandle } from '../progress/index.js';
import type { ProgressListener } from '../../registry/client/index.js';

/** Notes on a step as a layer's bytes move (`sha256:abc… 120MB / 500MB`): at most one a second per layer, and the last. */
export function byteNotes(step: StepHandle, verb: string): (layer: Digest, done: number, total: number) => void {
  const last = new Map<Digest, number>();
  return (layer, done, total) => {
    const now = Date.now();
    const finished = done >= total;
    const before = last.get(layer);
    if (before === -1 || (!finished && before !== undefined && now - before < 1000)) return;
    last.set(layer, finished ? -1 : now);
    step.note(`${verb} ${layer} ${size(done)} / ${size(total)}${finished ? ' done' : ''}`);
  };
}

/** The registry client's blob events as byte notes on a push (or pull) step (BuildKit's `pushing layers` lines). */
export function pushNotes(step: StepHandle, verb = 'pushing layer'): ProgressListener {
  const notes = byteNotes(step, verb);
  return (event) => {
    if (event.type !== 'blob') return;
    if (event.phase === 'uploading' || event.phase === 'downloading' || event.phase === 'done')
      notes(event.digest, event.phase === 'done' ? event.total : event.current, event.total);
    else if (event.phase === 'exists' || event.phase === 'mounted')
      step.note(`${event.digest} ${event.phase === 'exists' ? 'already exists' : 'mounted from another repository'}`);
  };
}
