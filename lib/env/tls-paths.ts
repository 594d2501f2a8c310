// Where the edge's TLS material lives on a host: one place, shared by deploy (nginx) and dns
// (the Origin CA certificate it installs). The directory belongs to the deploy user, mode 0700;
// nginx's master process (root) reads it.
export const TLS_DIR = '/etc/nginx/conciliaextrato/tls'

export function tlsPaths(env: string) {
  return {
    dir: TLS_DIR,
    /** The origin certificate (Cloudflare Origin CA; a self-signed placeholder until `make dns` installs one). */
    cert: `${TLS_DIR}/${env}-origin.crt`,
    /** Its private key: made on the runbook machine (or on the host, for the placeholder), mode 0600. */
    key: `${TLS_DIR}/${env}-origin.key`,
    /** The CA nginx checks Cloudflare's origin-pull client certificate against. */
    originPullCa: `${TLS_DIR}/${env}-origin-pull-ca.pem`,
  }
}
