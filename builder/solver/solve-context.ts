import type { Platform } from '../../oci/index.js';
import type { SnapshotStore, Store } from '../../store/index.js';
import type { BuildContext, TreeChecksummer } from '../context/index.js';
import type { ProgressDisplay } from '../progress/index.js';
import type { BaseResolver } from './base-image.js';
import type { BuildCache } from './build-cache.js';
import type { Plan } from './plan.js';
import type { StageResult } from './stage-result.js';

/** `--secret id=NAME,src=FILE` (or env=VAR). */
export interface SecretSource {
  id: string;
  src?: string;
  env?: string;
}

/** A named build context: a local directory, or an image that replaces the name. */
export type NamedContext = { type: 'dir'; dir: string } | { type: 'image'; ref: string };

/** Everything the stages of one build share. */
export interface SolveContext {
  store: Store;
  snapshots: SnapshotStore;
  cache: BuildCache;
  plan: Plan;
  context: BuildContext;
  checksummer: TreeChecksummer;
  bases: BaseResolver;
  progress: ProgressDisplay;
  noCache: boolean;
  /** `--no-cache-filter`: stage names (lower case) and indexes whose steps ignore the cache. */
  noCacheStages: Set<string>;
  platform?: Platform;
  network: 'host' | 'none';
  secrets: Map<string, SecretSource>;
  /** `--ssh ID=SOCKET`: SSH agent sockets by id, for RUN --mount=type=ssh. */
  ssh?: Map<string, string>;
  /** `--add-host HOST:IP`: extra /etc/hosts lines of every RUN container. */
  extraHosts?: Array<{ host: string; ip: string }>;
  /** `--build-context NAME=DIR|docker-image://REF`: what `FROM NAME` and `COPY --from=NAME` stand for. */
  namedContexts?: Map<string, NamedContext>;
  /** Seconds since the epoch to clamp layer times to (SOURCE_DATE_EPOCH). */
  sourceDateEpoch?: number;
  /** The time recorded in history entries and the config. */
  created: string;
  signal: AbortSignal;
  /** The stage's result, built on first request (stages run in parallel where independent). */
  stage(index: number): Promise<StageResult>;
  /** The name a stage shows in progress lines (`builder`, `stage-0`, or '' for the target). */
  stageLabel(index: number): string;
}
