import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import * as assert from 'uvu/assert'
import {
  addressAllowed,
  desiredUfwRules,
  dockerUserBlock,
  parsePorts,
  parseUfwAdded,
  sshdPortsProbe,
  ufwApply,
  ufwConverge,
  ufwDefaultsOk,
  ufwIsActive,
  withDockerUserBlock,
} from '../../lib/commands/firewall.ts'
import {
  dockerDaemonConfig,
  fail2banIgnore,
  fail2banJail,
  swapCreate,
} from '../../lib/commands/host-config.ts'
import { nginxTestAndReload } from '../../lib/commands/nginx.ts'
import {
  aptInstall,
  basePackages,
  dockerPackages,
  missingPackagesProbe,
  parseOs,
  pendingSecurityUpdatesProbe,
  upgradePackages,
} from '../../lib/commands/packages.ts'
import {
  rotateHostKey,
  SSHD_DROP_IN,
  sshdHardening,
  sshdReload,
  sshdRevert,
} from '../../lib/commands/sshd.ts'
import {
  adminSudoers,
  createUser,
  deploySudoProbe,
  installSudoers,
  RUNBOOK_SUDO,
  sudoersContent,
  userCheck,
} from '../../lib/commands/users.ts'
import { fileMatches } from '../../lib/host/converge.ts'
import { parseDeploySudo } from '../../lib/setup/access.ts'
import { suite } from '../harness.ts'

const test = suite('setup-server command builders')
const cf = {
  sshFrom: [],
  httpFrom: 'cloudflare' as const,
  cloudflareIps: ['173.245.48.0/20', '2400:cb00::/32'],
}

test('ufw rules are written exactly as `ufw show added` prints them', () => {
  assert.equal(desiredUfwRules(cf), [
    "ufw allow 22/tcp comment 'ssh'",
    "ufw allow from 173.245.48.0/20 to any port 80,443 proto tcp comment 'cloudflare'",
    "ufw allow from 2400:cb00::/32 to any port 80,443 proto tcp comment 'cloudflare'",
  ])
  assert.equal(desiredUfwRules({ sshFrom: ['203.0.113.0/24'], httpFrom: 'anywhere', cloudflareIps: [] }), [
    "ufw allow from 203.0.113.0/24 to any port 22 proto tcp comment 'ssh'",
    "ufw allow 80,443/tcp comment 'web'",
  ])
  // A single address: ufw prints 172.23.0.1/32 as 172.23.0.1 (the rehearsal found the mismatch).
  assert.equal(
    desiredUfwRules({
      sshFrom: ['198.51.100.7/32'],
      httpFrom: 'cloudflare',
      cloudflareIps: ['172.23.0.1/32', '2001:db8::1/128'],
    }),
    [
      "ufw allow from 198.51.100.7 to any port 22 proto tcp comment 'ssh'",
      "ufw allow from 172.23.0.1 to any port 80,443 proto tcp comment 'cloudflare'",
      "ufw allow from 2001:db8::1 to any port 80,443 proto tcp comment 'cloudflare'",
    ],
  )
})

test('ufw converge adds before it deletes, so SSH never drops out', () => {
  const live = parseUfwAdded(
    "Added user rules (see 'ufw status' for running firewall):\nufw allow 80,443/tcp comment 'web'\nufw allow 22/tcp comment 'ssh'\n",
  )
  assert.equal(live, ["ufw allow 80,443/tcp comment 'web'", "ufw allow 22/tcp comment 'ssh'"])
  assert.equal(ufwConverge(live, desiredUfwRules(cf)), [
    "ufw allow from 173.245.48.0/20 to any port 80,443 proto tcp comment 'cloudflare'",
    "ufw allow from 2400:cb00::/32 to any port 80,443 proto tcp comment 'cloudflare'",
    "ufw delete allow 80,443/tcp comment 'web'",
  ])
  assert.equal(ufwConverge(desiredUfwRules(cf), desiredUfwRules(cf)), [])
  assert.is(
    ufwApply(["ufw allow 22/tcp comment 'ssh'"], true),
    "ufw allow 22/tcp comment 'ssh' >/dev/null && ufw --force enable >/dev/null",
  )
  assert.is(ufwApply([], false), 'ufw reload >/dev/null')
})

test("emergency's host key rotation: a new ed25519 key in place, its fingerprint printed, sshd reloaded", () => {
  const cmd = rotateHostKey('b-1 (make emergency, after first login)')
  assert.match(
    cmd,
    "ssh-keygen -q -t ed25519 -N '' -C 'b-1 (make emergency, after first login)' -f /etc/ssh/ssh_host_ed25519_key.new",
  )
  assert.match(
    cmd,
    'mv -f /etc/ssh/ssh_host_ed25519_key.new /etc/ssh/ssh_host_ed25519_key && mv -f /etc/ssh/ssh_host_ed25519_key.new.pub /etc/ssh/ssh_host_ed25519_key.pub',
  )
  assert.match(
    cmd,
    `fp=$(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | awk '{print $2}')\necho "$fp"\n${sshdReload}\n`,
  )
  // Not done until sshd, where this session came in, serves the new key (reload returns at SIGHUP).
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
  assert.match(cmd, 'set -- ${SSH_CONNECTION:-127.0.0.1 0 127.0.0.1 22}')
  assert.match(
    cmd,
    `until [ "$(ssh-keyscan -T 2 -t ed25519 -p "$4" "$3" 2>/dev/null | ssh-keygen -lf - 2>/dev/null | awk '{print $2}')" = $fp ]; do`,
  )
  assert.match(
    cmd,
    'if [ "$i" -ge 60 ]; then echo "sshd on $3:$4 still serves another host key 30 s after the reload" >&2; exit 1; fi',
  )
  assert.ok(cmd.indexOf('systemctl reload "$u"') < cmd.indexOf('until ['))
})

test('SSH is opened on the ports sshd listens on (ssh_port 2222), never a fixed 22', () => {
  assert.equal(desiredUfwRules(cf, [2222]).slice(0, 1), ["ufw allow 2222/tcp comment 'ssh'"])
  assert.equal(
    desiredUfwRules(
      { sshFrom: ['203.0.113.0/24', '2001:db8::/32'], httpFrom: 'anywhere', cloudflareIps: [] },
      [22, 2222],
    ),
    [
      "ufw allow from 203.0.113.0/24 to any port 22 proto tcp comment 'ssh'",
      "ufw allow from 2001:db8::/32 to any port 22 proto tcp comment 'ssh'",
      "ufw allow from 203.0.113.0/24 to any port 2222 proto tcp comment 'ssh'",
      "ufw allow from 2001:db8::/32 to any port 2222 proto tcp comment 'ssh'",
      "ufw allow 80,443/tcp comment 'web'",
    ],
  )
  // sshd -T's "port" lines and the session's own port, merged; junk ignored.
  assert.equal(parsePorts('2222\n22\n\n2222\n'), [22, 2222])
  assert.equal(parsePorts('\n'), [])
  assert.equal(parsePorts('70000 abc 0'), [])
  assert.match(sshdPortsProbe, /sshd -T .*\$1 == "port"/)
})

test("the operator's address must be inside ssh_from (IPv4, IPv6, mapped, single address)", () => {
  assert.ok(addressAllowed([], '198.51.100.7'))
  assert.ok(addressAllowed(['203.0.113.0/24'], '203.0.113.9'))
  assert.not.ok(addressAllowed(['203.0.113.0/24'], '203.0.114.9'))
  assert.ok(addressAllowed(['198.51.100.7/32'], '198.51.100.7'))
  assert.not.ok(addressAllowed(['198.51.100.7/32'], '198.51.100.8'))
  assert.ok(addressAllowed(['203.0.113.0/24'], '::ffff:203.0.113.9'))
  assert.ok(addressAllowed(['2001:db8::/32', '203.0.113.0/24'], '2001:db8:1::5'))
  assert.not.ok(addressAllowed(['2001:db8::/32'], '2001:db9::5'))
  assert.not.ok(addressAllowed(['203.0.113.0/24'], ''))
})

test('ufw status parsing', () => {
  const status =
    'Status: active\nLogging: on (low)\nDefault: deny (incoming), allow (outgoing), deny (routed)\n'
  assert.ok(ufwIsActive(status))
  assert.ok(ufwDefaultsOk(status))
  assert.not.ok(ufwIsActive('Status: inactive\n'))
  assert.not.ok(ufwDefaultsOk('Default: allow (incoming), allow (outgoing), deny (routed)'))
})

test('the DOCKER-USER block drops new traffic from the public interface, and replaces itself', () => {
  const block = dockerUserBlock('eth0')
  assert.match(block, '-A DOCKER-USER -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN\n')
  assert.match(block, '-A DOCKER-USER -i eth0 -j DROP\n-A DOCKER-USER -j RETURN\nCOMMIT')
  // Containers never reach the metadata service, not even on an established connection.
  assert.match(
    block,
    ':DOCKER-USER - [0:0]\n-A DOCKER-USER -d 169.254.169.254/32 -j DROP\n-A DOCKER-USER -m conntrack',
  )
  const original = '# ufw after.rules\n*filter\nCOMMIT\n'
  const once = withDockerUserBlock(original, 'eth0')
  assert.ok(once.startsWith(original.trimEnd()))
  assert.is(withDockerUserBlock(once, 'eth0'), once)
  const moved = withDockerUserBlock(once, 'ens3')
  assert.match(moved, '-i ens3 -j DROP')
  assert.not.match(moved, '-i eth0')
})

test('sshd drop-in sorts first and carries every promise', () => {
  assert.is(SSHD_DROP_IN, '/etc/ssh/sshd_config.d/00-conciliaextrato-hardening.conf')
  const conf = sshdHardening()
  for (const line of [
    'PermitRootLogin no',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'AuthenticationMethods publickey',
    'MaxAuthTries 3',
    'LoginGraceTime 20',
    'AllowTcpForwarding no',
    'AllowAgentForwarding no',
    'X11Forwarding no',
    'LogLevel VERBOSE',
  ]) {
    assert.match(conf, new RegExp(`^${line}$`, 'm'))
  }
  assert.not.match(conf, /hmac-sha1|ecdh-sha2-nistp|ssh-rsa[ ,]|diffie-hellman-group14-sha1/)
  assert.match(
    sshdRevert('/x.previous'),
    `if [ -f /x.previous ]; then mv -f /x.previous ${SSHD_DROP_IN}; else rm -f ${SSHD_DROP_IN}; fi; ${sshdReload}`,
  )
  // The reload is done when sshd has re-executed (new listening sockets), not when SIGHUP is sent.
  assert.match(
    sshdReload,
    'u=; for s in ssh.service sshd.service; do if systemctl is-active --quiet "$s"; then u=$s; break; fi; done\nif [ -n "$u" ]; then\n',
  )
  assert.match(
    sshdReload,
    `LC_ALL=C ls -l "/proc/$p/fd" 2>/dev/null | awk '$9 > 2 && $11 ~ /^socket:/ {print $11}' | sort`,
  )
  assert.match(sshdReload, 'before=$(socks); systemctl reload "$u"; i=0\n')
  assert.match(
    sshdReload,
    `while now=$(socks); [ -z "$now" ] || [ -n "$(printf '%s\\n' "$before" "$now" | sort | uniq -d)" ]; do`,
  )
  assert.match(
    sshdReload,
    'if [ "$i" -ge 100 ]; then echo "sshd ($u) did not take the reload within 20 s" >&2; exit 1; fi',
  )
})

test('packages per OS, Docker only when absent, interrupted dpkg finished first', () => {
  assert.is(parseOs('ubuntu-24.04\n'), 'ubuntu-24.04')
  assert.is(parseOs('debian-12'), 'debian-12')
  assert.is(parseOs('centos-9'), undefined)
  assert.equal(dockerPackages('ubuntu-24.04'), ['docker.io', 'docker-compose-v2'])
  assert.equal(dockerPackages('debian-12'), ['docker.io', 'docker-compose'])
  assert.ok(basePackages('debian-12').includes('fail2ban'))
  assert.match(
    missingPackagesProbe(['nginx', 'ufw']),
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own ${Status} format
    'for p in nginx ufw; do dpkg-query -W -f=\'${Status}\\n\' "$p"',
  )
  const install = aptInstall(['nginx', 'ufw'])
  assert.match(install, /^for i in \$\(seq 1 180\); do DEBIAN_FRONTEND=noninteractive dpkg --configure -a/)
  assert.match(
    install,
    'apt-get -o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confold install -y -qq --no-install-recommends nginx ufw',
  )
  // A killed run's `apt-get update` can hold the lists lock, which update does not wait for: retried, bounded.
  assert.match(
    install,
    '&& n=0 && until DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confold update -qq; do n=$((n+1)); if [ $n -ge 60 ]; then exit 100; fi; sleep 2; done && ',
  )
})

test('deploy user: key only, groups checked one by one; sudoers validated before install', () => {
  assert.is(
    userCheck('deploy', ['docker', 'adm']),
    "id -u deploy >/dev/null 2>&1 && id -nG deploy | tr ' ' '\\n' | grep -x docker >/dev/null && id -nG deploy | tr ' ' '\\n' | grep -x adm >/dev/null",
  )
  assert.match(
    createUser('deploy', ['docker']),
    'useradd --create-home --shell /bin/bash deploy) && usermod -aG docker deploy && passwd -l deploy',
  )
  assert.is(
    sudoersContent('deploy', 'all'),
    '# Managed by setup-server (env file: setup.deploy_sudo)\ndeploy ALL=(root) NOPASSWD: ALL\n',
  )
  assert.match(
    sudoersContent('deploy', ['/usr/sbin/nginx -t', '/bin/systemctl reload nginx']) ?? '',
    'NOPASSWD: /usr/sbin/nginx -t, /bin/systemctl reload nginx',
  )
  assert.is(sudoersContent('deploy', 'none'), undefined)
  // runbooks: exactly nginx's check and reload, arguments and all (sudo matches them too).
  assert.is(
    sudoersContent('deploy', 'runbooks'),
    '# Managed by setup-server (env file: setup.deploy_sudo)\ndeploy ALL=(root) NOPASSWD: /usr/sbin/nginx -t -q, /usr/sbin/nginx -s reload\n',
  )
  assert.ok(nginxTestAndReload.split(' && ').every((c) => RUNBOOK_SUDO.some((r) => c === `sudo -n ${r}`)))
  assert.is(
    adminSudoers('ce-admin'),
    "# Managed by setup-server (env file: ssh.admin): the administrator's login, for setup-server.\nce-admin ALL=(ALL:ALL) NOPASSWD: ALL\n",
  )
  assert.not.match(createUser('ce-admin', []), 'usermod')
  assert.is(
    deploySudoProbe(['/usr/sbin/nginx -t -q']),
    'if sudo -n -l /bin/sh -c true >/dev/null 2>&1; then echo other=yes; else echo other=no; fi; n=0; sudo -n -l /usr/sbin/nginx -t -q >/dev/null 2>&1 && n=$((n+1)); echo allowed=$n',
  )
  assert.equal(parseDeploySudo('deploy\ndeploy docker adm\nother=no\nallowed=2\n'), {
    other: false,
    allowed: 2,
  })
  assert.equal(parseDeploySudo('other=yes\nallowed=0'), { other: true, allowed: 0 })
  assert.equal(parseDeploySudo('garbage'), { other: false, allowed: 0 })
  assert.match(installSudoers('/etc/sudoers.d/x'), 'visudo -cqf "$tmp"; chmod 0440 "$tmp"')
})

test('fail2ban: journal backend, configured ignores, and a runtime ignore that knows whose it is', () => {
  assert.match(fail2banJail(['198.51.100.7/32']), 'backend = systemd\n')
  assert.match(fail2banJail(['198.51.100.7/32']), 'ignoreip = 127.0.0.1/8 ::1 198.51.100.7/32\n')
  const ignore = fail2banIgnore('192.0.2.1')
  assert.match(ignore, 'then echo kept;')
  assert.match(ignore, 'else fail2ban-client set sshd addignoreip 192.0.2.1 >/dev/null && echo added; fi;')
  assert.match(ignore, 'fail2ban-client set sshd unbanip 192.0.2.1')
})

test('docker daemon.json: our log limits merged into what the host has; bad JSON is named', () => {
  const merged = JSON.parse(dockerDaemonConfig('{"registry-mirrors":["https://mirror.example"]}'))
  assert.equal(merged, {
    'registry-mirrors': ['https://mirror.example'],
    'log-driver': 'json-file',
    'log-opts': { 'max-size': '10m', 'max-file': '5' },
  })
  assert.is(dockerDaemonConfig(''), dockerDaemonConfig('{}'))
  assert.throws(() => dockerDaemonConfig('{oops'), /\/etc\/docker\/daemon.json on the host is not valid JSON/)
  // A sandbox registry is added to the ones the host already trusts, once.
  const insecure = JSON.parse(dockerDaemonConfig('{"insecure-registries":["a:5000"]}', ['b:5000', 'a:5000']))
  assert.equal(insecure['insecure-registries'], ['a:5000', 'b:5000'])
  assert.not.ok('insecure-registries' in merged)
})

test('swap file: created, enabled and in fstab, once', () => {
  const cmd = swapCreate(2048)
  assert.match(
    cmd,
    'fallocate -l 2048M /swapfile && chmod 600 /swapfile && mkswap /swapfile >/dev/null && swapon /swapfile',
  )
  assert.match(cmd, "(grep -q '^/swapfile ' /etc/fstab || echo '/swapfile none swap sw 0 0' >> /etc/fstab)")
})

test('fileMatches compares content hash, mode and owner', () => {
  const content = 'x=1\n'
  const hash = createHash('sha256').update(content).digest('hex')
  const spec = { path: '/etc/x', content, mode: '0644', owner: 'root:root' }
  assert.ok(fileMatches(`644 root:root\n${hash}\n`, spec))
  assert.not.ok(fileMatches(`600 root:root\n${hash}\n`, spec))
  assert.not.ok(fileMatches(`644 deploy:deploy\n${hash}\n`, spec))
  assert.not.ok(fileMatches('644 root:root\nabc\n', spec))
  assert.not.ok(fileMatches('absent\n', spec))
})

test('security updates: the pending ones come from a simulated dist-upgrade, -security suites only', () => {
  const probe = pendingSecurityUpdatesProbe(true)
  // Refresh only when the lists are over an hour old, with the same bounded retry as aptInstall.
  assert.match(probe, "find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -60")
  assert.match(probe, 'until DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120')
  assert.match(
    probe,
    "apt-get -s -o Debug::NoLocking=1 dist-upgrade | awk '/^Inst / && /-security[ ,]/ {print $2}'",
  )
  // A dry run does not refresh anything.
  const dry = pendingSecurityUpdatesProbe(false)
  assert.not.match(dry, 'update')
  assert.ok(probe.endsWith(dry))
  // The awk filter, run on apt's output: the first two lines as printed on a sandbox droplet (Debian 12),
  // the others written in the same format (a package in two suites; Ubuntu's suite names; a Conf line).
  const awk = /awk '([^']+)'/.exec(dry)?.[1] ?? ''
  const sample = [
    'Inst perl-base [5.36.0-7+deb12u3] (5.36.0-7+deb12u4 Debian-Security:12/oldstable-security [amd64])',
    'Inst liblzma5 [5.4.1-1+deb12u1] (5.4.1-1+deb12u2 Debian-Security:12/oldstable-security [amd64])',
    'Inst tzdata [2024a-0+deb12u1] (2025b-0+deb12u1 Debian:12.11/oldstable, Debian-Security:12/oldstable-security [all])',
    'Inst base-files [12.4+deb12u10] (12.4+deb12u11 Debian:12.11/oldstable [amd64])',
    'Inst openssl [3.0.13-0ubuntu3.4] (3.0.13-0ubuntu3.5 Ubuntu:24.04/noble-updates, Ubuntu:24.04/noble-security [amd64])',
    'Conf perl-base (5.36.0-7+deb12u4 Debian-Security:12/oldstable-security [amd64])',
  ].join('\n')
  const got = execFileSync('awk', [awk], { input: sample }).toString().trim().split('\n')
  assert.equal(got, ['perl-base', 'liblzma5', 'tzdata', 'openssl'])
  assert.match(
    upgradePackages(['libssl3', 'openssl']),
    /dpkg --configure -a.*apt-get -o DPkg::Lock::Timeout=120 -o Dpkg::Options::=--force-confold install -y -qq --only-upgrade --no-install-recommends libssl3 openssl$/,
  )
})

test.run()
