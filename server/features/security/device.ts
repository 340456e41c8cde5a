/**
 * What a security log entry says of the client (AUTH-18): a device name parsed
 * from the user agent, and the network it came from (IPv4 /24, IPv6 /48),
 * which together tell a sign-in from a new device or place (§6.3b).
 */
import { isIPv4, isIPv6 } from 'node:net';
import Bowser from 'bowser';
import { ipv6Prefix } from '../../http/rate-limit.js';

/** `Chrome on Linux`, `Safari on iOS`; null when the user agent says nothing useful. */
export function deviceName(userAgent: string | undefined | null): string | null {
  if (!userAgent) return null;
  const parsed = Bowser.parse(userAgent);
  const browser = parsed.browser.name;
  const os = parsed.os.name;
  if (!browser && !os) return null;
  return (browser && os ? `${browser} on ${os}` : (browser ?? os ?? '')).slice(0, 120);
}

/** The network of `ip`: `203.0.113.0/24` or `2001:db8:1::/48`; null when unknown. */
export function networkOf(ip: string | undefined | null): string | null {
  if (!ip) return null;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  const v4 = mapped?.[1] ?? ip;
  if (isIPv4(v4)) return `${v4.split('.').slice(0, 3).join('.')}.0/24`;
  return isIPv6(ip) ? ipv6Prefix(ip, 3) : null;
}
