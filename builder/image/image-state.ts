import {
  defaultPlatform,
  MediaType,
  type ContainerConfig,
  type Descriptor,
  type DiffID,
  type HealthConfig,
  type ImageConfig,
  type Platform,
} from '../../oci/index.js';
import { DEFAULT_PATH_ENV, normalizePlatform, withDefaultPath } from '../frontend/index.js';

/** A layer as a manifest lists it plus its diffID (the uncompressed digest the config records). */
export interface ImageLayer {
  descriptor: Descriptor;
  diffID: DiffID;
}

/**
 * The image a stage is building: config, layers and history. Metadata instructions edit `container`;
 * each step adds history (with `empty_layer` for steps that change only the config).
 */
export class ImageState {
  /**
   * History entries of config-only steps given a provisional time, to take the time of the layer step
   * after them; 'settled' once a layer step followed such an entry (see addConfigHistory).
   */
  private untimed: number[] | 'settled' = [];

  private constructor(
    public config: ImageConfig,
    public layers: ImageLayer[],
  ) {}

  /** BuildKit's emptyImage: the platform, rootfs type `layers`, WorkingDir "/" and the default PATH. */
  static scratch(platform: Platform = defaultPlatform()): ImageState {
    return new ImageState(
      {
        architecture: platform.architecture,
        os: platform.os,
        ...(platform.variant ? { variant: platform.variant } : {}),
        // docker's legacy builder leaves WorkingDir empty here; BuildKit writes "/".
        config: { Env: [DEFAULT_PATH_ENV], WorkingDir: '/' },
        rootfs: { type: 'layers', diff_ids: [] },
        history: [],
      },
      [],
    );
  }

  /**
   * Starts from a base image's config and layers (which must line up with its diff_ids). As in BuildKit,
   * an Env without PATH gets the default PATH appended, and a config without os/architecture (docker
   * fills them in at commit, BuildKit refuses to export without) takes the build's platform; the
   * platform is normalized (x86_64 → amd64).
   */
  static fromBase(config: ImageConfig, layers: Descriptor[], platform: Platform = defaultPlatform()): ImageState {
    const copy = structuredClone(config) as ImageConfig & Record<string, unknown>;
    // docker's legacy builder records the container it committed; that describes the base, not us.
    for (const stale of ['container', 'container_config', 'docker_version', 'id', 'parent']) delete copy[stale];
    const diffIDs = copy.rootfs?.diff_ids ?? [];
    if (diffIDs.length !== layers.length) {
      throw new Error(`base image is inconsistent: ${layers.length} layers but ${diffIDs.length} diff_ids in its config`);
    }
    copy.config ??= {};
    copy.config.Env = withDefaultPath(copy.config.Env);
    const normalized = normalizePlatform({
      os: copy.os || platform.os,
      architecture: copy.architecture || platform.architecture,
      ...(copy.variant || (!copy.architecture && platform.variant) ? { variant: copy.variant || platform.variant } : {}),
    });
    copy.os = normalized.os;
    copy.architecture = normalized.architecture;
    if (normalized.variant) copy.variant = normalized.variant;
    else delete copy.variant;
    copy.history ??= [];
    copy.rootfs = { type: 'layers', diff_ids: [...diffIDs] };
    return new ImageState(
      copy,
      layers.map((d, i) => ({ descriptor: { mediaType: d.mediaType, digest: d.digest, size: d.size }, diffID: diffIDs[i]! })),
    );
  }

  clone(): ImageState {
    const copy = new ImageState(
      structuredClone(this.config),
      this.layers.map((l) => ({ descriptor: { ...l.descriptor }, diffID: l.diffID })),
    );
    copy.untimed = this.untimed === 'settled' ? 'settled' : [...this.untimed];
    return copy;
  }

  get container(): ContainerConfig {
    this.config.config ??= {};
    return this.config.config;
  }

  get diffIDs(): DiffID[] {
    return this.layers.map((l) => l.diffID);
  }

  /** A layer step's layer and history entry; `created` is when its layer was made (kept on a cache hit). */
  addLayer(layer: ImageLayer, createdBy: string, created: string): void {
    this.settleUntimed(created);
    this.layers.push(layer);
    this.config.rootfs.diff_ids.push(layer.diffID);
    this.config.history!.push({ created, created_by: createdBy });
  }

  /** A layer step that changed nothing: an `empty_layer` entry with the step's time. */
  addEmptyHistory(createdBy: string, created: string): void {
    this.settleUntimed(created);
    this.config.history!.push({ created, created_by: createdBy, empty_layer: true });
  }

  /**
   * A config-only step (ENV, LABEL, CMD…): an `empty_layer` entry timed as BuildKit's exporter times
   * them (normalizeLayersAndHistory): the first run of such entries takes the time of the layer step
   * after it — the build's time, or the cached layer's on a rebuild, so a no-op rebuild gives the same
   * digest — and later ones the time of the layer step before them. `provisional` (the stage's time so
   * far: the base's creation, or SOURCE_DATE_EPOCH) stays when no layer step follows.
   */
  addConfigHistory(createdBy: string, provisional: string): void {
    if (this.untimed !== 'settled') this.untimed.push(this.config.history!.length);
    this.config.history!.push({ created: provisional, created_by: createdBy, empty_layer: true });
  }

  private settleUntimed(created: string): void {
    if (this.untimed === 'settled' || this.untimed.length === 0) return;
    for (const i of this.untimed) this.config.history![i]!.created = created;
    this.untimed = 'settled';
  }

  // ---- metadata instructions, with docker's semantics ----

  env(): Map<string, string> {
    const out = new Map<string, string>();
    for (const kv of this.container.Env ?? []) {
      const eq = kv.indexOf('=');
      out.set(eq < 0 ? kv : kv.slice(0, eq), eq < 0 ? '' : kv.slice(eq + 1));
    }
    return out;
  }

  /** ENV: replaces a variable in place or appends it. */
  setEnv(key: string, value: string): void {
    const list = (this.container.Env ??= []);
    const i = list.findIndex((kv) => kv === key || kv.startsWith(`${key}=`));
    if (i >= 0) list[i] = `${key}=${value}`;
    else list.push(`${key}=${value}`);
  }

  setCmd(cmd: string[]): void {
    this.container.Cmd = cmd;
  }

  /** ENTRYPOINT: a Cmd inherited from the base (not set in this stage) is reset, as docker does. */
  setEntrypoint(entrypoint: string[] | null, cmdSetInStage: boolean): void {
    this.container.Entrypoint = entrypoint;
    if (!cmdSetInStage) this.container.Cmd = null;
  }

  setWorkingDir(dir: string): void {
    this.container.WorkingDir = dir;
  }

  setUser(user: string): void {
    this.container.User = user;
  }

  /** EXPOSE: `80` means `80/tcp`. */
  expose(port: string): void {
    const key = port.includes('/') ? port.toLowerCase() : `${port}/tcp`;
    (this.container.ExposedPorts ??= {})[key] = {};
  }

  addVolume(path: string): void {
    (this.container.Volumes ??= {})[path] = {};
  }

  setLabel(key: string, value: string): void {
    (this.container.Labels ??= {})[key] = value;
  }

  setStopSignal(signal: string): void {
    this.container.StopSignal = signal;
  }

  setHealthcheck(health: HealthConfig): void {
    this.container.Healthcheck = health;
  }

  addOnBuild(trigger: string): void {
    (this.container.OnBuild ??= []).push(trigger);
  }

  /** The triggers a child inherits; they run once and are not passed further down. */
  takeOnBuild(): string[] {
    const triggers = this.container.OnBuild ?? [];
    this.container.OnBuild = null;
    return triggers;
  }

  setShell(shell: string[]): void {
    this.container.Shell = shell;
  }

  /** The shell RUN/CMD/ENTRYPOINT shell forms use. */
  shell(): string[] {
    return this.container.Shell?.length ? this.container.Shell : ['/bin/sh', '-c'];
  }

  setCreated(created: string): void {
    this.config.created = created;
  }
}

export const defaultLayerMediaType = MediaType.ociLayerGzip;
