import { DigestError, parseDigest, type Digest } from '../../oci/index.js';
import { RegistryError, type Page } from '../repository/index.js';

/** A digest from a path or query; DIGEST_INVALID (400) with the reason when malformed. */
export function digestParam(value: string | undefined, what = 'digest'): Digest {
  if (value === undefined || value === '') throw new RegistryError('DIGEST_INVALID', `missing ${what}`);
  try {
    return parseDigest(value);
  } catch (e) {
    throw new RegistryError('DIGEST_INVALID', (e as DigestError).message.slice(0, 300), { [what]: value.slice(0, 200) });
  }
}

/** The first value of a query parameter (repeated parameters keep their first). */
export function queryValue(query: Record<string, string | string[] | undefined>, key: string): string | undefined {
  const v = query[key];
  return Array.isArray(v) ? v[0] : v;
}

/** `n` (capped at maxEntries; absent means all) and `last` of the tags and catalog endpoints. */
export function pageParams(query: Record<string, string | string[] | undefined>, maxEntries: number): Page {
  const n = queryValue(query, 'n');
  const last = queryValue(query, 'last');
  const page: Page = {};
  if (n !== undefined && n !== '') {
    if (!/^\d{1,9}$/.test(n))
      throw new RegistryError('PAGINATION_NUMBER_INVALID', `invalid number of results requested: "${n.slice(0, 50)}"`, { n: n.slice(0, 50) });
    page.n = Math.min(Number(n), maxEntries);
  }
  if (last !== undefined && last !== '') page.last = last;
  return page;
}

/** RFC 8288 `Link` to the next page, as distribution sends it. */
export function nextLink(path: string, n: number, last: string): string {
  return `<${path}?n=${n}&last=${encodeURIComponent(last)}>; rel="next"`;
}
