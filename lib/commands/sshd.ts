import { quote } from './shell.ts'

// SSH hardening. sshd takes the FIRST value it reads for an option, and Debian/Ubuntu include
// sshd_config.d/*.conf at the top of sshd_config: so our drop-in is named to sort first.
export const SSHD_DROP_IN = '/etc/ssh/sshd_config.d/00-conciliaextrato-hardening.conf'

/** Modern algorithms only (what ssh-audit accepts, and what our own SSH client speaks). */
const CRYPTO = [
  'KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512',
  'Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr',
  'MACs hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,umac-128-etm@openssh.com',
  'HostKeyAlgorithms ssh-ed25519,ssh-ed25519-cert-v01@openssh.com,rsa-sha2-512,rsa-sha2-256',
  'HostKey /etc/ssh/ssh_host_ed25519_key',
  'HostKey /etc/ssh/ssh_host_rsa_key',
]

export function sshdHardening(options: { maxAuthTries?: number; loginGraceS?: number } = {}): string {
  return `${[
    '# Managed by setup-server. Sorted first so these values win (sshd keeps the first it reads).',
    'PermitRootLogin no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitEmptyPasswords no',
    'PubkeyAuthentication yes',
    'AuthenticationMethods publickey',
    `MaxAuthTries ${options.maxAuthTries ?? 3}`,
    `LoginGraceTime ${options.loginGraceS ?? 20}`,
    'AllowTcpForwarding no',
    'AllowAgentForwarding no',
    'AllowStreamLocalForwarding no',
    'X11Forwarding no',
    'PermitTunnel no',
    'GatewayPorts no',
    'PermitUserEnvironment no',
    'ClientAliveInterval 300',
    'ClientAliveCountMax 2',
    // Keepalives go through the encrypted channel (ClientAlive*), not TCP's spoofable ones; no compression.
    'TCPKeepAlive no',
    'Compression no',
    '# Key fingerprints of every login in the journal.',
    'LogLevel VERBOSE',
    ...CRYPTO,
  ].join('\n')}\n`
}

/** sshd must accept the whole configuration before it is reloaded. */
export const sshdTest = '/usr/sbin/sshd -t'

/**
 * Applies the configuration to new connections; open ones (ours) stay up. Ubuntu 24.04's sshd is
 * socket-activated: when ssh.service is not running, the next connection starts it with the new file.
 *
 * Done only once sshd has re-executed: `systemctl reload` returns when SIGHUP is sent (ExecReload=
 * kill -HUP), and until sshd acts on it, a new login still meets the old configuration (root allowed,
 * the old host key). On SIGHUP sshd closes its listening sockets and executes itself again, which opens
 * new ones: so the reload waits (20 s at most) until the main process holds sockets, none of them the
 * ones it held before (its listening sockets; fds 0-2 are journald's and stay).
 */
export const sshdReload = [
  'u=; for s in ssh.service sshd.service; do if systemctl is-active --quiet "$s"; then u=$s; break; fi; done',
  'if [ -n "$u" ]; then',
  '  p=$(systemctl show -p MainPID --value "$u")',
  `  socks() { LC_ALL=C ls -l "/proc/$p/fd" 2>/dev/null | awk '$9 > 2 && $11 ~ /^socket:/ {print $11}' | sort; }`,
  '  before=$(socks); systemctl reload "$u"; i=0',
  '  while now=$(socks); [ -z "$now" ] || [ -n "$(printf \'%s\\n\' "$before" "$now" | sort | uniq -d)" ]; do',
  '    i=$((i+1)); if [ "$i" -ge 100 ]; then echo "sshd ($u) did not take the reload within 20 s" >&2; exit 1; fi',
  '    sleep 0.2',
  '  done',
  'fi',
].join('\n')

/** Puts a previous drop-in back (or removes ours) and reloads: the way back when a check fails. */
export function sshdRevert(backup: string): string {
  return `if [ -f ${backup} ]; then mv -f ${backup} ${SSHD_DROP_IN}; else rm -f ${SSHD_DROP_IN}; fi; ${sshdReload}`
}

/** Effective settings, as sshd itself resolves them (`sshd -T`), for verify. */
export const sshdEffective = '/usr/sbin/sshd -T 2>/dev/null'

/**
 * A new ed25519 host key made on the host, put in place of the old one (sshd reloaded: connections
 * already open keep going); prints the new key's SHA256 fingerprint, read by the caller over its
 * connection pinned to the old key. For a droplet whose first key came through cloud-init user_data,
 * which the metadata service keeps serving to any process on the droplet.
 */
export function rotateHostKey(comment: string): string {
  const k = '/etc/ssh/ssh_host_ed25519_key'
  return [
    'set -eu',
    `rm -f ${k}.new ${k}.new.pub`,
    `ssh-keygen -q -t ed25519 -N '' -C ${quote(comment)} -f ${k}.new`,
    `mv -f ${k}.new ${k} && mv -f ${k}.new.pub ${k}.pub`,
    `fp=$(ssh-keygen -lf ${k}.pub | awk '{print $2}')`,
    'echo "$fp"',
    sshdReload,
    sshdServes('$fp', 30),
  ].join('\n')
}

/**
 * Waits (bounded) until sshd, at the address and port this session came in on ($SSH_CONNECTION),
 * serves the ed25519 key whose fingerprint is in `fingerprint` (a shell word). `systemctl reload`
 * returns once SIGHUP is sent: sshd then re-executes, and for a moment refuses connections or (on a
 * loaded host, measured) still answers with the key it started with. The next pinned login would meet
 * that and stop as a changed host key.
 */
export function sshdServes(fingerprint: string, timeoutS: number): string {
  const tries = timeoutS * 2
  return [
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
    'set -- ${SSH_CONNECTION:-127.0.0.1 0 127.0.0.1 22}',
    'i=0',
    `until [ "$(ssh-keyscan -T 2 -t ed25519 -p "$4" "$3" 2>/dev/null | ssh-keygen -lf - 2>/dev/null | awk '{print $2}')" = ${fingerprint} ]; do`,
    `  i=$((i+1)); if [ "$i" -ge ${tries} ]; then echo "sshd on $3:$4 still serves another host key ${timeoutS} s after the reload" >&2; exit 1; fi`,
    '  sleep 0.5',
    'done',
  ].join('\n')
}
