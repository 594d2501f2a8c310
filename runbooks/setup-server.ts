/**
 * setup-server — a fresh droplet becomes a hardened deploy target. Safe to run again: every step
 * checks the host first and changes only what differs (a second run reports 0 changed).
 *
 * When: a new droplet (also phase 1 of `make emergency`), or to repair drift on an existing one.
 * Changes: packages, pending security updates, the administrator's login (ssh.admin), the deploy user (sudo
 *   only for the runbooks' root commands with setup.deploy_sudo: runbooks), sshd (root login off), ufw, fail2ban, updates, log limits, nginx base,
 *   the health watchdog (a systemd timer), the WAL shipper (an S3 backup store: a service on the data host),
 *   the read-only checker account (ssh.checker), the host's hardening (banner, no core dumps, unused
 *   kernel modules off, login.defs, idle shells closed, strict modes, sysstat, aide's database); on a swarm env, the swarm: the first host initialises it, the
 *   other app hosts join, and the swarm ports open only between the env's hosts.
 * Abort: Ctrl-C is safe at any point; run it again and it continues. It never locks you out: the
 *   deploy login is proven on a new connection before root login is turned off, and a failed check
 *   puts the previous sshd configuration back.
 * On-call page: docs/runbooks/setup-server.md
 */
import { HOST_OPTION } from '../lib/run/cli.ts'
import { isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'
import { deployUser, hardenSsh, proveDeployAccess } from '../lib/setup/access.ts'
import { adminAccount } from '../lib/setup/admin.ts'
import { checkerAccount } from '../lib/setup/checker.ts'
import { checkSshFrom, fail2ban, firewall, spareOperatorFromFail2ban } from '../lib/setup/firewall.ts'
import { hostHardening } from '../lib/setup/hardening.ts'
import { joinSwarm } from '../lib/setup/swarm.ts'
import {
  automaticUpdates,
  checkHost,
  directoryLayout,
  installPackages,
  logLimits,
  nginxBase,
  securityUpdates,
  swapFile,
} from '../lib/setup/system.ts'
import { verifyServer } from '../lib/setup/verify.ts'
import { walShipper } from '../lib/setup/wal-shipper.ts'
import { watchdog } from '../lib/setup/watchdog.ts'

export const setupServer: RunbookSpec = {
  name: 'setup-server',
  mutates: true,
  bootstrap: true,
  // The watchdog it installs alerts the env's alert targets: their webhook URLs go to the host.
  // The checker's key: its public half is what the checker account lets in.
  // The administrator's key: its login on a set-up host, its public half on a new one.
  needs: () => ['ssh', 'admin-ssh', 'deploy-keys', 'checker-ssh', 'notify:alert', 'heartbeat-ping'],
  options: [HOST_OPTION],
  steps: [
    checkHost,
    spareOperatorFromFail2ban,
    checkSshFrom,
    installPackages,
    securityUpdates,
    adminAccount,
    deployUser,
    proveDeployAccess,
    hardenSsh,
    firewall,
    fail2ban,
    automaticUpdates,
    swapFile,
    logLimits,
    nginxBase,
    directoryLayout,
    watchdog,
    walShipper,
    checkerAccount,
    // After every account exists: the key-only accounts are exempted from login.defs's password ageing.
    hostHardening,
    joinSwarm,
    // Later runbooks add their pieces here (origin certificates).
    verifyServer,
  ],
}

if (isMain(import.meta.url)) await main(setupServer)
