import { defaultPlatform, familiarReference, parseNormalized, type Platform } from '../../oci/index.js';
import { ImageNotFoundError, resolveImage, type ResolvedImage, type Store } from '../../store/index.js';
import type { RegistryClient } from '../../registry/client/index.js';

export interface BaseResolverOptions {
  store: Store;
  /** Made on first use (the client module loads only when a base must be pulled). */
  client: () => RegistryClient | Promise<RegistryClient>;
  platform?: Platform;
  /** --pull: always ask the registry, even when the store has the image. */
  pull: boolean;
  onNote?: (text: string) => void;
  /** A pull about to start: what to tell when it ends (the build shows its bytes meanwhile). */
  pullProgress?: (name: string) => { done(failed?: Error): void };
  /** `--build-context`: the reference an image name as written stands for, if another (resolved once per name). */
  substitute?: (input: string) => Promise<string | undefined>;
}

/**
 * Finds a base image: the local store first (unless --pull), otherwise the registry through the
 * client's mirrors and insecure-registry settings; a pulled image is stored and named locally.
 * Concurrent requests for the same reference share one pull.
 */
export class BaseResolver {
  private readonly inflight = new Map<string, Promise<ResolvedImage & { reference: string }>>();

  constructor(private readonly options: BaseResolverOptions) {}

  /** `platform` overrides the build's (FROM --platform=...). */
  resolve(input: string, platform?: Platform): Promise<ResolvedImage & { reference: string }> {
    const ref = parseNormalized(input);
    const wanted = platform ?? this.options.platform;
    const key = `${ref.registry}/${ref.repository}:${ref.tag ?? ''}@${ref.digest ?? ''} ${JSON.stringify(wanted ?? {})}`;
    let hit = this.inflight.get(key);
    if (!hit) {
      const substitute = this.options.substitute;
      hit = substitute ? substitute(input).then((actual) => this.lookup(actual ?? input, wanted)) : this.lookup(input, wanted);
      this.inflight.set(key, hit);
    }
    return hit;
  }

  private async lookup(input: string, platform: Platform | undefined): Promise<ResolvedImage & { reference: string }> {
    const { store } = this.options;
    const ref = parseNormalized(input);
    const name = familiarReference(ref);
    if (!this.options.pull) {
      try {
        const rec = await store.images.get(input);
        return { ...(await resolveImage(store.blobs, rec.digest, platform ?? defaultPlatform())), reference: name };
      } catch (e) {
        if (!(e instanceof ImageNotFoundError)) throw e;
      }
      if (ref.digest && (await store.blobs.has(ref.digest))) {
        return { ...(await resolveImage(store.blobs, ref.digest, platform ?? defaultPlatform())), reference: name };
      }
    }
    this.options.onNote?.(`pulling ${name}`);
    let pulled;
    const watch = this.options.pullProgress?.(name);
    try {
      const { pullImage } = await import('../../registry/client/index.js');
      pulled = await pullImage(await this.options.client(), store, ref, { ...(platform ? { platform } : {}) });
      watch?.done();
    } catch (e) {
      watch?.done(e as Error);
      throw new Error(`base image ${name} is not in the local store and pulling it failed: ${(e as Error).message.split('\n')[0]}`);
    }
    return { ...(await resolveImage(store.blobs, pulled.digest, platform ?? defaultPlatform())), reference: name };
  }
}
