import { remotePaths } from '../env/host-paths.ts'
import { walDir, walShipperConfigPath } from './wal-paths.ts'
import { HEALTH_LOG_DIR, watchdogConfigPath, watchdogStateDir, watchdogUnit } from './watchdog.ts'

// make image: what a set-up builder droplet sheds before it is snapshotted. Pure: strings only.

/**
 * Removes from the builder what belongs to one droplet or holds a secret, so every droplet made from
 * the image gets its own identity and nothing readable from the image helps an attacker:
 * - the SSH host keys (cloud-init installs the one emergency pins) and the machine id;
 * - the watchdog's config (the alert webhooks' URLs) and the WAL shipper's (a Spaces key, if any):
 *   setup-server and make backup write them again on the new droplet;
 * - Docker's state (a builder has deployed nothing: no image, no container, no volume);
 * - root's authorized keys (DigitalOcean's cloud-init puts the account's keys there), fail2ban's bans,
 *   the watchdog's state and history, every log but the audit log (append-only: its setup-server
 *   record says how the image was made), apt's cache; cloud-init's own state, so it runs again on the new droplet.
 * The packages, users, sshd/ufw/fail2ban/nginx configuration and the units stay: setup-server's work.
 */
export function sealForImage(env: string): string {
  const paths = remotePaths({ name: env })
  return [
    'set -eu',
    `systemctl stop ${watchdogUnit(env, 'timer')} ${watchdogUnit(env, 'service')} 2>/dev/null || true`,
    `rm -f ${watchdogConfigPath(env)} ${walShipperConfigPath(env)}`,
    // Docker's state: empty on a builder (nothing was deployed); each droplet starts its own (its keys,
    // its networks' database). Stopped first: the engine must not write it back on the way down.
    'systemctl stop docker.socket docker containerd 2>/dev/null || true',
    'rm -rf /var/lib/docker /var/lib/containerd',
    `rm -rf ${watchdogStateDir(env)}/* ${walDir(env)}/status.json ${HEALTH_LOG_DIR}/*`,
    'rm -f /etc/ssh/ssh_host_* /root/.ssh/authorized_keys /var/lib/fail2ban/fail2ban.sqlite3',
    ': > /etc/machine-id',
    'rm -f /var/lib/dbus/machine-id',
    'if command -v cloud-init >/dev/null 2>&1; then cloud-init clean --logs; fi',
    'apt-get clean',
    'journalctl --rotate >/dev/null 2>&1 || true',
    'journalctl --vacuum-time=1s >/dev/null 2>&1 || true',
    // The audit log is append-only (chattr +a): it stays, and says that setup-server made this image.
    `find /var/log -type f ! -path ${paths.audit} -exec truncate -s 0 {} +`,
    'sync',
    'echo sealed',
  ].join('\n')
}
