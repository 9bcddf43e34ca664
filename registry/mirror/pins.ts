import { formatReference, type Digest, type Reference } from '../../oci/index.js';
import type { StorageDriver, Store } from '../../store/index.js';
import { cachedName } from './routing.js';
import { readState, updateState } from './state-file.js';

/**
 * A pinned image: never evicted. A tag pin holds whatever the tag points at when eviction runs (the
 * image follows the tag as the mirror revalidates it); a digest pin holds that manifest (or index).
 */
export interface Pin {
  /** As normalized: `docker.io/library/busybox:latest`, `ghcr.io/org/app@sha256:…`. */
  reference: string;
  /** The repository the mirror caches it under: `docker.io/library/busybox`. */
  repository: string;
  tag?: string;
  digest?: Digest;
  /** When it was pinned (ISO 8601). */
  pinned: string;
}

/** `mirror/pins.json`. */
export interface PinsDocument {
  version: 1;
  pins: Pin[];
}

export const PINS_PATH = 'mirror/pins.json';

function emptyPins(): PinsDocument {
  return { version: 1 as const, pins: [] };
}

/** The pin a reference makes (a digest wins over a tag, as docker pulls `name:tag@digest` by digest). */
export function pinOf(ref: Reference): Omit<Pin, 'pinned'> {
  const repository = cachedName(ref.registry, ref.repository);
  if (ref.digest)
    return { reference: formatReference({ registry: ref.registry, repository: ref.repository, digest: ref.digest }), repository, digest: ref.digest };
  const tag = ref.tag ?? 'latest';
  return { reference: formatReference({ registry: ref.registry, repository: ref.repository, tag }), repository, tag };
}

export async function readPins(driver: StorageDriver): Promise<Pin[]> {
  const doc = await readState(driver, PINS_PATH, emptyPins);
  return Array.isArray(doc.pins)
    ? doc.pins.filter((p) => typeof p?.repository === 'string' && (typeof p.tag === 'string' || typeof p.digest === 'string'))
    : [];
}

/** Rewrites the pins file (durably, under the state lock) with what `change` makes of the pins in it. */
async function updatePins(driver: StorageDriver, change: (pins: Pin[]) => Pin[]): Promise<void> {
  await updateState(driver, PINS_PATH, emptyPins, (doc) => ({ version: 1 as const, pins: change(Array.isArray(doc.pins) ? doc.pins : []) }), { durable: true });
}

/** Pins `ref`; false when it was pinned already. */
export async function addPin(driver: StorageDriver, ref: Reference): Promise<boolean> {
  const pin = pinOf(ref);
  let added = false;
  await updatePins(driver, (pins) => {
    added = !pins.some((p) => p.reference === pin.reference);
    return added ? [...pins, { ...pin, pinned: new Date().toISOString() }] : pins;
  });
  return added;
}

/** Unpins `ref`; false when it was not pinned. */
export async function removePin(driver: StorageDriver, ref: Reference): Promise<boolean> {
  const { reference } = pinOf(ref);
  let removed = false;
  await updatePins(driver, (pins) => {
    const kept = pins.filter((p) => p.reference !== reference);
    removed = kept.length !== pins.length;
    return kept;
  });
  return removed;
}

/** The manifest digests pins hold now, by cached repository (tag pins resolved in the store). */
export async function pinnedManifests(store: Store, pins: Pin[]): Promise<Map<string, Set<Digest>>> {
  const out = new Map<string, Set<Digest>>();
  for (const pin of pins) {
    let digest: Digest | undefined = pin.digest;
    if (!digest && pin.tag) digest = await store.repositories.resolveTag(pin.repository, pin.tag).catch(() => undefined);
    if (!digest) continue;
    let set = out.get(pin.repository);
    if (!set) out.set(pin.repository, (set = new Set()));
    set.add(digest);
  }
  return out;
}
