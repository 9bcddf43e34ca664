import type { Logger } from 'pino';
import type { Registry } from '../repository/index.js';

export interface UploadExpiryOptions {
  /** An upload that received no bytes for this long is removed. */
  expireAfterMs: number;
  /** How often to look. */
  intervalMs: number;
}

/** Periodically removes abandoned upload sessions (idle ingests); returns a stop function. */
export function startUploadExpiry(registry: Registry, options: UploadExpiryOptions, logger: Logger): () => void {
  let running = false;
  const sweep = async (): Promise<void> => {
    if (running) return;
    running = true;
    try {
      const removed = await registry.expireUploads(options.expireAfterMs);
      if (removed.length > 0) logger.info({ removed: removed.length }, 'expired abandoned uploads');
    } catch (e) {
      logger.warn({ err: e }, 'could not expire abandoned uploads');
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void sweep(), options.intervalMs);
  timer.unref();
  void sweep();
  return () => clearInterval(timer);
}
