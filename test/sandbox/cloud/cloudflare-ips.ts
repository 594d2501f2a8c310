/**
 * Cloudflare's published edge ranges (https://www.cloudflare.com/ips/, also `GET /client/v4/ips`), the seed
 * of the double's `/ips`. Tests replace the lists to exercise a refresh; the etag follows the content.
 */
import { createHash } from 'node:crypto'

export const CLOUDFLARE_IPV4_CIDRS: readonly string[] = [
  '173.245.48.0/20',
  '103.21.244.0/22',
  '103.22.200.0/22',
  '103.31.4.0/22',
  '141.101.64.0/18',
  '108.162.192.0/18',
  '190.93.240.0/20',
  '188.114.96.0/20',
  '197.234.240.0/22',
  '198.41.128.0/17',
  '162.158.0.0/15',
  '104.16.0.0/13',
  '104.24.0.0/14',
  '172.64.0.0/13',
  '131.0.72.0/22',
]

export const CLOUDFLARE_IPV6_CIDRS: readonly string[] = [
  '2400:cb00::/32',
  '2606:4700::/32',
  '2803:f800::/32',
  '2405:b500::/32',
  '2405:8100::/32',
  '2a06:98c0::/29',
  '2c0f:f248::/32',
]

/** The API's etag is an MD5 hex digest that changes whenever either list changes. */
export function ipsEtag(ipv4: readonly string[], ipv6: readonly string[]): string {
  return createHash('md5')
    .update(`${ipv4.join('\n')}\n\n${ipv6.join('\n')}`)
    .digest('hex')
}

export function ipsResult(ipv4: readonly string[], ipv6: readonly string[]) {
  return { ipv4_cidrs: [...ipv4], ipv6_cidrs: [...ipv6], etag: ipsEtag(ipv4, ipv6) }
}
