import type { Env } from '../env/load.ts'
import { SERVICES } from '../env/load.ts'
import { tlsPaths } from '../env/tls-paths.ts'
import { ownerModeIs } from './files.ts'
import { quote } from './shell.ts'

// The edge's TLS material on a host (lib/env/tls-paths.ts): the directory, a placeholder certificate until
// the dns runbook installs Cloudflare's origin certificate, and the origin-pull CA nginx checks against.

/** Succeeds when the TLS directory is there, owned by `owner`, mode 0700. */
export function tlsDirCheck(env: string, owner: string): string {
  return ownerModeIs(tlsPaths(env).dir, `${owner}:${owner} 700`)
}

/** The TLS directory: the deploy user's, 0700 (nginx's master process, root, reads it). */
export function tlsDirEnsure(env: string, owner: string): string {
  const dir = quote(tlsPaths(env).dir)
  return `mkdir -p ${dir} && chown ${quote(`${owner}:${owner}`)} ${dir} && chmod 0700 ${dir}`
}

/** Succeeds when the env has a certificate and its key (the dns runbook's, or a placeholder). */
export function certificatePresent(env: string): string {
  const { cert, key } = tlsPaths(env)
  return `test -s ${quote(cert)} && test -s ${quote(key)}`
}

/**
 * A self-signed placeholder so nginx can start on 443 before `make dns` installs the origin certificate:
 * made on the host (the key never leaves it), for the env's domains. Half a pair (a certificate without
 * its key, or the reverse) is never papered over: it means an interrupted `make dns`, to be run again.
 */
export function placeholderCertificate(env: Env, days = 365): string {
  const { dir, cert, key } = tlsPaths(env.name)
  const names = SERVICES.map((s) => env.domains[s])
  const subject = `/O=ConciliaExtrato placeholder until make dns ENV=${env.name}/CN=${names[0]}`
  const san = `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`
  const [c, k] = [quote(cert), quote(key)]
  const half = `${cert} and ${key} are not a pair (one is missing or empty: an interrupted make dns?): run make dns ENV=${env.name} to install both again`
  return [
    'set -e',
    `if [ -e ${c} ] || [ -e ${k} ]; then echo ${quote(half)} >&2; exit 3; fi`,
    'umask 077',
    `tmp=$(mktemp -d ${quote(`${dir}/placeholder.XXXXXX`)})`,
    `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days ${days} -subj ${quote(subject)} -addext ${quote(san)} -keyout "$tmp/key" -out "$tmp/crt" 2>"$tmp/err" || { cat "$tmp/err" >&2; rm -rf "$tmp"; exit 1; }`,
    'chmod 0600 "$tmp/key"',
    'chmod 0644 "$tmp/crt"',
    `mv -f "$tmp/key" ${k}`,
    `mv -f "$tmp/crt" ${c}`,
    'rm -rf "$tmp"',
  ].join('; ')
}

/**
 * Succeeds when the file nginx checks Cloudflare's client certificate against holds this zone's own
 * certificate (make dns) or the placeholder: anything else (Cloudflare's shared CA, from before the
 * env used edge.origin_pull_ca: zone) would let every Cloudflare account through.
 */
export function originPullTrustPresent(env: string, zone: string): string {
  const file = quote(tlsPaths(env).originPullCa)
  return `test -s ${file} && openssl x509 -noout -subject -in ${file} 2>/dev/null | grep -qF -e ${quote(`origin-pull ${zone}`)} -e 'nobody holds this key'`
}

/**
 * edge.origin_pull_ca: zone, before `make dns` installed the zone's certificate: a certificate whose
 * key nobody holds (it is never written), so nginx starts and refuses every edge request until then
 * (origin pulls on). The host itself is still served (deploy's gates).
 */
export function placeholderOriginPullTrust(env: Env): string {
  const path = tlsPaths(env.name).originPullCa
  // Each subject field stays under X.509's 64 characters.
  const subject = `/O=ConciliaExtrato/OU=placeholder: nobody holds this key/CN=until make dns ENV=${env.name}`
  return [
    'set -e',
    `tmp=$(mktemp ${quote(`${path}.XXXXXX`)})`,
    `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj ${quote(subject)} -keyout /dev/null -out "$tmp" 2>"$tmp.err" || { cat "$tmp.err" >&2; rm -f "$tmp" "$tmp.err"; exit 1; }`,
    'rm -f "$tmp.err"',
    'chmod 0644 "$tmp"',
    `mv -f "$tmp" ${quote(path)}`,
  ].join('; ')
}
