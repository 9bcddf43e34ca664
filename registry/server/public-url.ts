import { BlockList, isIP } from 'node:net';
import type { Context, Next } from './context.js';

export interface PublicUrlOptions {
  /** The registry's public base URL (distribution's `http.host`); wins over anything a request says. */
  host?: string | undefined;
  /** Addresses and CIDRs of the proxies whose X-Forwarded-Proto / X-Forwarded-Host are believed. */
  trustedProxies?: readonly string[] | undefined;
}

/** The peers in `entries` (`10.0.0.1`, `10.0.0.0/8`, `::1`); throws a one-line error on a malformed one. */
function blockListOf(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const cidr = /^(.+)\/(\d{1,3})$/.exec(entry);
    const address = cidr ? cidr[1]! : entry;
    const family = isIP(address);
    if (family === 0) throw new Error(`trusted proxy "${entry}" is not an IP address or CIDR (e.g. 127.0.0.1 or 10.0.0.0/8)`);
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (cidr) list.addSubnet(address, Number(cidr[2]), type);
    else list.addAddress(address, type);
  }
  return list;
}

/** The first value of a forwarding header that proxies may have appended to (`https, http`). */
function firstValue(header: string): string {
  return header.split(',')[0]!.trim();
}

/**
 * Sets `ctx.state.baseUrl`: the scheme and host clients reach this registry at, for absolute URLs it hands
 * out (the token realm a client sends its password to). In order: the configured public URL; for a
 * trusted proxy, its X-Forwarded-Proto and X-Forwarded-Host (else the Host it passed on); otherwise the
 * connection's own scheme and the Host header. Forwarding headers from any other peer are ignored, so a
 * client cannot make the registry point others' credentials elsewhere.
 */
export function publicUrl(options: PublicUrlOptions) {
  const fixed = options.host?.replace(/\/+$/, '');
  const trusted = blockListOf(options.trustedProxies ?? []);
  const anyTrusted = (options.trustedProxies ?? []).length > 0;
  return async (ctx: Context, next: Next): Promise<void> => {
    if (fixed) ctx.state.baseUrl = fixed;
    else {
      let scheme = ctx.protocol;
      let host = ctx.host;
      const peer = ctx.req.socket.remoteAddress?.replace(/^::ffff:/, '');
      if (anyTrusted && peer && trusted.check(peer, isIP(peer) === 6 ? 'ipv6' : 'ipv4')) {
        const proto = firstValue(ctx.get('X-Forwarded-Proto')).toLowerCase();
        if (proto === 'https' || proto === 'http') scheme = proto;
        const forwardedHost = firstValue(ctx.get('X-Forwarded-Host'));
        if (forwardedHost !== '') host = forwardedHost;
      }
      ctx.state.baseUrl = `${scheme}://${host}`;
    }
    await next();
  };
}
