import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import * as assert from 'uvu/assert'
import { parse as parseYaml, stringify } from 'yaml'
import { appendAuditRecord } from '../../lib/commands/audit-log.ts'
// setup-server on fresh sandbox droplets over real SSH: hardening, idempotence, no lock-out.
import { detachedUnit } from '../../lib/commands/detached.ts'
import { quote } from '../../lib/commands/shell.ts'
import type { SandboxDroplet } from '../../lib/env/sandbox-hosts.ts'
import { runDetached } from '../../lib/host/detached.ts'
import { HostSession } from '../../lib/host/session.ts'
import { offeredAuthMethods } from '../../lib/host/ssh-probe.ts'
import { CommandError, LoginRefusedError } from '../../lib/report/errors.ts'
import { releases } from '../../runbooks/releases.ts'
import { securityScan } from '../../runbooks/security-scan.ts'
import { setupServer } from '../../runbooks/setup-server.ts'
import { status } from '../../runbooks/status.ts'
import { uptime } from '../../runbooks/uptime.ts'
import { verifyServer } from '../../runbooks/verify-server.ts'
import { suite } from '../harness.ts'
import { startDroplet } from '../sandbox/droplets.ts'
import { sh } from '../sandbox/engine.ts'
import { appImage, buildFixtureImages } from '../sandbox/fixtures.ts'
import { buildDropletImage } from '../sandbox/images.ts'
import {
  auditRecords,
  createTestBed,
  destroyTestBed,
  onDroplet,
  runCaptured,
  spawnScript,
  type TestBed,
  writeManagedEnv,
} from '../support/test-bed.ts'

const test = suite('setup-server on fresh sandbox droplets', { timeoutS: 300 })
const _ROOT = resolve(import.meta.dirname, '..', '..')
let bed: TestBed
let web: SandboxDroplet

function setupEnv(name: string, droplets: SandboxDroplet[], overrides: Record<string, unknown> = {}): void {
  writeManagedEnv({ ...bed, droplets }, name, overrides)
}

function session(d: SandboxDroplet, user: string, keyPath = bed.keyPath): HostSession {
  const host = { name: d.name, address: '127.0.0.1', sshPort: d.ports.ssh, hostKey: d.hostKey, roles: [] }
  return new HostSession(host, {
    user,
    privateKey: readFileSync(keyPath, 'utf8'),
    connectTimeoutS: 10,
    commandTimeoutS: 30,
  })
}

const changedSteps = (out: string) =>
  out.split('\n').filter((l) => /\s(changed|dry-run)\s+\d+\.\d+s$/.test(l))

test.before(async () => {
  await buildFixtureImages()
  bed = await createTestBed('setup', ['web-1', 'spare-1', 'attacker'])
  web = bed.droplets[0] as SandboxDroplet
  setupEnv('it', [web])
})

test.after(async () => {
  await destroyTestBed(bed)
})

test('bad input is refused before any change: malformed key, missing key file, key not in deploy_keys', async () => {
  setupEnv('bad-key', [web], {
    setup: { deploy_keys: ['ssh-ed25519 AAAAnotakey ana@laptop'], firewall: { http_from: 'anywhere' } },
  })
  const malformed = await runCaptured(setupServer, ['--env', 'bad-key'])
  assert.is(malformed.code, 2)
  assert.match(malformed.out, 'setup.deploy_keys[0]: the key data does not match its type ssh-ed25519')
  setupEnv('bad-file', [web], {
    setup: { deploy_keys: [{ file: '/nonexistent/id.pub' }], firewall: { http_from: 'anywhere' } },
  })
  const missing = await runCaptured(setupServer, ['--env', 'bad-file'])
  assert.is(missing.code, 2)
  assert.match(missing.out, 'setup.deploy_keys[0].file: /nonexistent/id.pub does not exist')
  const other =
    'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMkoayiSR6OjDO0KqyFDNGgH9jJGJnz3f1jko/vri05n someone-else'
  setupEnv('not-mine', [web], { setup: { deploy_keys: [other], firewall: { http_from: 'anywhere' } } })
  const lockout = await runCaptured(setupServer, ['--env', 'not-mine'])
  assert.is(lockout.code, 2)
  assert.match(lockout.out, 'is not in setup.deploy_keys')
  assert.is((await onDroplet(web, 'id deploy >/dev/null 2>&1 && echo exists || echo none')).trim(), 'none')
})

test('an unreachable host or a wrong host key stops it before any change', async () => {
  setupEnv('unreachable', [{ ...web, ports: { ...web.ports, ssh: 1 } }])
  const down = await runCaptured(setupServer, ['--env', 'unreachable'])
  assert.is(down.code, 3)
  assert.match(down.out, 'Cannot reach web-1')
  setupEnv('wrong-key', [{ ...web, hostKey: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }])
  const wrong = await runCaptured(setupServer, ['--env', 'wrong-key'])
  assert.is(wrong.code, 3)
  assert.match(wrong.out, `presented: ${web.hostKey}`)
  assert.is((await onDroplet(web, 'id deploy >/dev/null 2>&1 && echo exists || echo none')).trim(), 'none')
})

test('a detached root command outlives its SSH session: the run logs in again and waits; a failure names its status and lines', async () => {
  const fresh = bed.droplets[2] as SandboxDroplet
  const root = session(fresh, 'root')
  await root.connect()
  try {
    // The script drops every root SSH session (what an sshd restart during an upgrade may do), then
    // finishes its work: the waiting run must log in again and see it succeed. ([s]: the pattern must
    // not match the script's own command line.)
    const unit = detachedUnit('test-drop')
    await runDetached(
      root,
      unit,
      'the test script',
      "sleep 2; pkill -KILL -f '[s]shd: root@notty' || true; sleep 3; echo done > /root/ce-detached-proof",
      {
        timeoutS: 120,
        reconnectS: 60,
        pollMs: 500,
      },
    )
    assert.is((await root.exec('cat /root/ce-detached-proof', { echo: false })).stdout.trim(), 'done')
    assert.not.ok(root.connectionLost)
    // Cleaned up: the unit is gone.
    assert.match(
      (await root.exec(`systemctl show -p LoadState ${unit}`, { echo: false })).stdout,
      'LoadState=not-found',
    )
    const failing = detachedUnit('test-fail')
    const err = await runDetached(root, failing, 'the failing script', 'echo apt says no >&2; exit 7', {
      timeoutS: 60,
      pollMs: 500,
    }).catch((e: Error) => e)
    assert.instance(err, CommandError)
    assert.is((err as CommandError).status, 'exit-code, exit 7')
    assert.match((err as CommandError).stderrTail ?? '', 'apt says no')
    assert.match(
      (await root.exec(`systemctl show -p LoadState ${failing}`, { echo: false })).stdout,
      'LoadState=not-found',
    )
  } finally {
    root.close()
  }
})

test('--dry-run on a fresh droplet lists what would change and changes nothing', async () => {
  const { code, out } = await runCaptured(setupServer, ['--env', 'it', '--dry-run'])
  assert.is(code, 0, out)
  assert.match(out, /would run: .*apt-get .* install .*fail2ban/)
  assert.match(out, /would run: .*useradd --create-home --shell \/bin\/bash deploy/)
  assert.ok(changedSteps(out).length >= 8, out)
  assert.is((await onDroplet(web, 'id deploy >/dev/null 2>&1 && echo exists || echo none')).trim(), 'none')
  assert.is((await onDroplet(web, 'command -v ufw || echo none')).trim(), 'none')
})

test('a fresh droplet: setup-server succeeds and verify passes', async () => {
  const { code, out } = await runCaptured(setupServer, ['--env', 'it'])
  assert.is(code, 0, out)
  assert.match(out, /web-1\s+root login refused\s+pass/)
  assert.match(out, /web-1\s+checker account reads, cannot change\s+pass/)
  // A new droplet's image is older than Debian's security suite: what was pending is applied, and
  // verify (apt's simulated upgrade, -security suites) finds nothing left.
  assert.match(out, /\d+\s+Security updates: apply what is pending now .*\s(changed|ok)\s+\d+\.\ds/)
  assert.match(out, /web-1\s+no security update pending\s+pass\s+none pending/)
  assert.not.match(out, /\sFAIL\s/)
  assert.is(auditRecords(bed).at(-1)?.outcome, 'success')
  const remote = await onDroplet(web, 'tail -n1 /var/log/conciliaextrato/audit.log')
  assert.match(remote, '"runbook":"setup-server"')
})

test('the second run changes nothing and says so', async () => {
  const { code, out } = await runCaptured(setupServer, ['--env', 'it'])
  assert.is(code, 0, out)
  // Root login is off now: it came in as the administrator (ssh.admin, its own key), with sudo.
  assert.match(out, `web-1: ce-admin@127.0.0.1:${web.ports.ssh} (sudo)`)
  assert.match(out, /web-1\s+administrator's login with its own key gets root\s+pass/)
  assert.match(
    out,
    /web-1\s+deploy login with key works, sudo as deploy_sudo says\s+pass\s+.*sudo: 2 of 2 runbook command\(s\), nothing else/,
  )
  assert.equal(changedSteps(out), [])
  assert.match(out, '0 step(s) changed something: the host(s) were already as wanted')
  // The audit log is root's: the run's record came through the helper, tagged with the login sudo
  // named; the deploy account can neither rewrite the log nor replace it.
  assert.match(out, /web-1\s+audit log root-owned, appended through the helper\s+pass/)
  assert.is(
    (
      await onDroplet(web, 'stat -c "%U:%G %a" /var/log/conciliaextrato /var/log/conciliaextrato/audit.log')
    ).trim(),
    'root:adm 750\nroot:adm 640',
  )
  const last = (await onDroplet(web, 'tail -n1 /var/log/conciliaextrato/audit.log')).trim()
  assert.match(last, /^\{"login":"ce-admin","ts":"[^"]+".*"runbook":"setup-server"/)
  const tamper = await onDroplet(
    web,
    `su deploy -c ': > /var/log/conciliaextrato/audit.log' 2>&1; echo "truncate=$?"; su deploy -c 'mv /var/log/conciliaextrato/audit.log /tmp/x' 2>&1; echo "move=$?"; su deploy -c 'printf "%s\\n" "{\\"ts\\":\\"x\\",\\"login\\":\\"root\\"}" | sudo -n /usr/local/sbin/conciliaextrato-audit-append' 2>&1; echo "forged=$?"`,
  )
  assert.match(tamper, /truncate=[1-9]/)
  assert.match(tamper, /move=[1-9]/)
  assert.match(tamper, 'audit-append: a record may not name its login')
  assert.match(tamper, /forged=64\b/)
  assert.is((await onDroplet(web, 'tail -n1 /var/log/conciliaextrato/audit.log')).trim(), last)
  // What a deploy-login runbook sends (no sudo session): its record lands through the helper.
  const record = '{"ts":"2026-12-03T00:00:00.000Z","runbook":"probe","outcome":"success"}'
  const sent = await onDroplet(
    web,
    `printf '%s\\n' ${quote(record)} | su deploy -c ${quote(appendAuditRecord())}; echo "sent=$?"`,
  )
  assert.match(sent, /sent=0\b/)
  assert.is(
    (await onDroplet(web, 'tail -n1 /var/log/conciliaextrato/audit.log')).trim(),
    `{"login":"deploy",${record.slice(1)}`,
  )
  // Append-only: root itself cannot truncate it; logrotate lifts the flag to rotate, the new file has it
  // again, and records keep landing.
  const rootTruncate = await onDroplet(web, '{ : > /var/log/conciliaextrato/audit.log; } 2>&1; echo "rc=$?"')
  assert.match(rootTruncate, /Operation not permitted[\s\S]*rc=[1-9]/)
  const rotated = await onDroplet(
    web,
    `logrotate -f /etc/logrotate.d/conciliaextrato && printf '%s\\n' ${quote(record)} | su deploy -c ${quote(appendAuditRecord())} && lsattr /var/log/conciliaextrato/audit.log | cut -d' ' -f1; ls /var/log/conciliaextrato; cat /var/log/conciliaextrato/audit.log`,
  )
  assert.match(rotated, /^-*a[-a-zA-Z]*\n/)
  assert.match(rotated, /\naudit\.log\naudit\.log\.1\n/)
  assert.match(
    rotated,
    new RegExp(`\\n\\{"login":"deploy",${record.slice(1).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n$`),
  )
  const again = await runCaptured(verifyServer, ['--env', 'it'])
  assert.match(again.out, /web-1\s+audit log root-owned, appended through the helper\s+pass/)
})

test('ssh_port 2222: ufw opens the ports sshd listens on, so SSH can move to 2222 and back without a lock-out', async () => {
  const sshdPorts = (ports: number[]) =>
    onDroplet(
      web,
      `printf '${ports.map((p) => `Port ${p}\\n`).join('')}' > /etc/ssh/sshd_config.d/50-port.conf && systemctl restart ssh`,
    )
  const rules = () => onDroplet(web, 'ufw show added; ufw status')
  setupEnv('port-2222', [web], {
    hosts: [{ name: web.name, address: web.ip, ssh_port: 2222, host_key: web.hostKey }],
  })
  // The move, as an operator does it: sshd on both ports, then setup-server opens both (it opened 22 alone).
  await sshdPorts([22, 2222])
  const both = await runCaptured(setupServer, ['--env', 'it'])
  assert.is(both.code, 0, both.out)
  assert.match(await rules(), "ufw allow 2222/tcp comment 'ssh'")
  // sshd on 2222 alone, the env on 2222: 22 closes, 2222 stays open, ufw stays on.
  await sshdPorts([2222])
  try {
    const { code, out } = await runCaptured(setupServer, ['--env', 'port-2222'])
    assert.is(code, 0, out)
    const after = await rules()
    assert.match(after, "ufw allow 2222/tcp comment 'ssh'")
    assert.not.match(after, "ufw allow 22/tcp comment 'ssh'")
    assert.match(after, 'Status: active')
    // A new connection, not the run's own (an established one gets through whatever the rules say).
    const fresh = new HostSession(
      { name: web.name, address: web.ip, sshPort: 2222, hostKey: web.hostKey, roles: [] },
      {
        user: 'deploy',
        privateKey: readFileSync(bed.keyPath, 'utf8'),
        connectTimeoutS: 10,
        commandTimeoutS: 30,
      },
    )
    try {
      await fresh.connect()
      assert.is((await fresh.exec('id -un', { probe: true })).stdout.trim(), 'deploy')
    } finally {
      fresh.close()
    }
  } finally {
    // And back: both ports, then 22 alone.
    try {
      await sshdPorts([22, 2222])
      const reopen = await runCaptured(setupServer, ['--env', 'port-2222'])
      assert.is(reopen.code, 0, reopen.out)
    } finally {
      await onDroplet(web, 'rm -f /etc/ssh/sshd_config.d/50-port.conf && systemctl restart ssh')
    }
  }
  const back = await runCaptured(setupServer, ['--env', 'it'])
  assert.is(back.code, 0, back.out)
  const final = await rules()
  assert.match(final, "ufw allow 22/tcp comment 'ssh'")
  assert.not.match(final, '2222')
})

test("an ssh_from that excludes this run's address is refused before anything changes", async () => {
  const before = await onDroplet(web, 'ufw show added; ufw status verbose')
  setupEnv('not-from-here', [web], {
    setup: {
      deploy_keys: [{ file: `${bed.keyPath}.pub` }],
      fail2ban_ignore: [`${bed.gateway}/32`],
      firewall: { http_from: 'anywhere', ssh_from: ['192.0.2.0/24', '2001:db8::/32'] },
    },
  })
  const { code, out } = await runCaptured(setupServer, ['--env', 'not-from-here'])
  assert.is(code, 3, out)
  assert.match(out, `sees this run coming from ${bed.gateway}, which is not inside setup.firewall.ssh_from`)
  assert.match(out, 'Nothing was changed')
  assert.equal(changedSteps(out), [])
  assert.is(await onDroplet(web, 'ufw show added; ufw status verbose'), before)
  // Inside ssh_from, the same run passes the check.
  setupEnv('from-here', [web], {
    setup: {
      deploy_keys: [{ file: `${bed.keyPath}.pub` }],
      fail2ban_ignore: [`${bed.gateway}/32`],
      firewall: { http_from: 'anywhere', ssh_from: [`${bed.gateway}/32`] },
    },
  })
  const dry = await runCaptured(setupServer, ['--env', 'from-here', '--dry-run'])
  assert.is(dry.code, 0, dry.out)
  assert.match(dry.out, `${bed.gateway} is inside ssh_from`)
})

test('root is refused, deploy logs in with its key, passwords are not even offered', async () => {
  const root = session(web, 'root')
  try {
    await root.connect()
    assert.unreachable('root logged in')
  } catch (err) {
    assert.instance(err, LoginRefusedError)
  } finally {
    root.close()
  }
  const deploy = session(web, 'deploy')
  await deploy.connect()
  assert.is((await deploy.exec('id -un')).stdout.trim(), 'deploy')
  deploy.close()
  const host = {
    name: web.name,
    address: '127.0.0.1',
    sshPort: web.ports.ssh,
    hostKey: web.hostKey,
    roles: [],
  }
  assert.equal(await offeredAuthMethods(host, 'deploy'), ['publickey'])
})

test("deploy's sudo is nginx's check and reload only: CI's deploy key cannot become root; the administrator's own key can", async () => {
  const deploy = session(web, 'deploy')
  await deploy.connect()
  try {
    const tries = [
      'sudo -n true',
      'sudo -n -s true',
      'sudo -n /bin/sh -c true',
      'sudo -n /usr/sbin/nginx -t -q -c /tmp/nginx.conf',
      'sudo -n /usr/sbin/nginx -g "daemon off;"',
      'sudo -n tee /etc/sudoers.d/x </dev/null',
    ]
    for (const t of tries) {
      const r = await deploy.exec(t, { allowFail: true })
      assert.is.not(r.code, 0, `deploy ran as root: ${t}`)
    }
    assert.is((await deploy.exec('sudo -n /usr/sbin/nginx -t -q', { allowFail: true })).code, 0)
    assert.is((await deploy.exec('sudo -n /usr/sbin/nginx -s reload', { allowFail: true })).code, 0)
  } finally {
    deploy.close()
  }
  // The administrator: its own key gets in and is root through sudo; the deploy key does not get in as it.
  const admin = session(web, 'ce-admin', bed.adminKeyPath)
  await admin.connect()
  try {
    assert.is((await admin.exec('sudo -n id -u')).stdout.trim(), '0')
    assert.not.match((await admin.exec('id -nG')).stdout, /\bdocker\b/)
  } finally {
    admin.close()
  }
  assert.ok(await refused(web, 'ce-admin', bed.keyPath), 'the deploy key logged in as the administrator')
})

async function refused(d: SandboxDroplet, user: string, keyPath: string): Promise<boolean> {
  const s = session(d, user, keyPath)
  try {
    await s.connect()
    return false
  } catch (err) {
    return err instanceof LoginRefusedError
  } finally {
    s.close()
  }
}

test('the checker account: status and releases log in as it; it reads through its helper and can change nothing', async () => {
  const st = await runCaptured(status, ['--env', 'it'])
  assert.is(st.code, 0, st.out)
  assert.match(st.out, `web-1: ce-check@127.0.0.1:${web.ports.ssh} (read-only checker)`)
  assert.match(st.out, /docker\s+\|?\s*\d+\.\d+/)
  assert.match(st.out, 'setup-server')
  const rel = await runCaptured(releases, ['--env', 'it'])
  assert.is(rel.code, 0, rel.out)
  assert.match(rel.out, 'ce-check@')
  assert.match(rel.out, 'web-1: live none')
  // Its one write: the run's audit record on the host, through the helper, tagged as the checker's.
  assert.not.match(rel.out, 'could not append the audit record')
  const lastAudit = (await onDroplet(web, 'tail -n1 /var/log/conciliaextrato/audit.log')).trim()
  assert.match(lastAudit, /^\{"via":"ce-check","ts":"[^"]+".*"runbook":"releases"/)
  assert.ok(JSON.parse(lastAudit).outcome === 'success', lastAudit)
  // uptime reads the watchdog's history and nginx's root:adm log through the helper (exit 4 is a
  // verdict on a host with nothing deployed; the reads themselves must work).
  const up = await runCaptured(uptime, ['--env', 'it'])
  assert.ok([0, 4].includes(up.code), up.out)
  assert.match(up.out, 'ce-check@')
  assert.match(
    up.out,
    /web-1: \d+ history line\(s\) since \d{4}-\d{2}-\d{2} .*nginx log \/var\/log\/nginx\/access\.log/,
  )
  assert.not.match(up.out, 'unreadable')

  const checker = session(web, 'ce-check', bed.checkerKeyPath)
  await checker.connect()
  try {
    const run = async (cmd: string) => checker.exec(cmd, { allowFail: true, probe: true })
    assert.match((await run('id -nG')).stdout.trim(), /^ce-check$/)
    const docker = await run('docker ps')
    assert.is.not(docker.code, 0)
    assert.match(docker.stderr, 'permission denied')
    assert.is.not((await run('sudo -n true')).code, 0)
    assert.is.not((await run('sudo -n /usr/bin/docker ps')).code, 0)
    const helper = '/usr/local/lib/conciliaextrato/check-it'
    assert.match((await run(`sudo -n ${helper} facts`)).stdout, /^os=Debian/m)
    assert.is((await run(`sudo -n ${helper} sh`)).code, 64)
    assert.is((await run(`sudo -n ${helper} history '2026-01-01; touch /tmp/pwned'`)).code, 64)
    assert.is.not((await run('echo ssh-ed25519 AAAA x >> ~/.ssh/authorized_keys')).code, 0)
    assert.is.not((await run(`echo 'echo pwned' >> ${helper}`)).code, 0)
  } finally {
    checker.close()
  }
  assert.is((await onDroplet(web, 'test -e /tmp/pwned && echo yes || echo no')).trim(), 'no')
  // Each key opens its own account only.
  assert.ok(await refused(web, 'ce-check', bed.keyPath), 'the deploy key logs in as the checker')
  assert.ok(await refused(web, 'deploy', bed.checkerKeyPath), 'the checker key logs in as deploy')
})

test('ssh-audit reports no failure-level finding', async () => {
  const audit = await sh`ssh-audit -n -p ${web.ports.ssh} 127.0.0.1`.nothrow()
  assert.match(audit.stdout, 'OpenSSH')
  assert.not.match(audit.stdout, /\[fail\]/)
})

test(
  'make security-scan of the set-up droplet: lynis index >= 80, no ssh-audit [fail]; Docker publishing 5432 is not seen open; a port outside security.open_ports fails it, named',
  async () => {
    await sh`bash -c ${`docker save ${appImage('site', 'v1')} | docker exec -i ${web.container} docker load -q`}`
    await onDroplet(
      web,
      `docker rm -f leaky >/dev/null 2>&1; docker run -d --name leaky -p 5432:8080 ${appImage('site', 'v1')} >/dev/null`,
    )
    // Port 80 (nginx, http_from: anywhere) is left out of the allowed ports: the one finding expected.
    // The env set up above (its checker's helper is per env), its port 80 left out of the allowed ports.
    setupEnv('it', [web], { security: { open_ports: [22], lynis_accepted_warnings: ['PKGS-7388'] } })
    // npm audit asks a closed local port, not the registry: tests send nothing beyond this machine.
    process.env.npm_config_registry = 'http://127.0.0.1:9/'
    try {
      const r = await runCaptured(securityScan, ['--env', 'it', '--json'])
      assert.is(r.code, 4, r.out)
      const line = r.out
        .split('\n')
        .map((l) => l.trim())
        .find((l) => l.startsWith('{"ssh_audit_fail"'))
      const summary = JSON.parse(line ?? '{}')
      assert.is(summary.ssh_audit_fail, 0, r.out)
      assert.ok(summary.lynis_index >= 80, `lynis hardening index ${summary.lynis_index} < 80:\n${r.out}`)
      assert.equal(summary.open_ports, [22, 80], r.out)
      assert.equal(summary.unexpected_ports, { 'web-1': [80] })
      const findings = r.out.split('\n').filter((l) => /^\s+- /.test(l))
      assert.equal(
        findings.map((l) => l.trim()),
        ['- web-1: port(s) 80 open from outside; security.open_ports allows 22'],
        r.out,
      )
    } finally {
      delete process.env.npm_config_registry
      setupEnv('it', [web])
      await onDroplet(web, 'docker rm -f leaky >/dev/null 2>&1 || true')
    }
  },
  { timeoutS: 900 },
)

test('data ports are not reachable from outside, even when Docker publishes them on 0.0.0.0', async () => {
  await sh`bash -c ${`docker save ${appImage('site', 'v1')} | docker exec -i ${web.container} docker load -q`}`
  await onDroplet(web, `docker run -d --name leaky -p 5432:8080 ${appImage('site', 'v1')} >/dev/null`)
  await onDroplet(web, 'nohup python3 -m http.server 6379 --bind 0.0.0.0 >/dev/null 2>&1 &')
  await onDroplet(
    web,
    'for i in $(seq 1 50); do curl -fsS 127.0.0.1:5432/health >/dev/null && curl -fsS 127.0.0.1:6379/ >/dev/null && exit 0; sleep 0.2; done; exit 1',
  )
  const attacker = bed.droplets[2] as SandboxDroplet
  for (const port of [5432, 6379]) {
    const probe = await onDroplet(
      attacker,
      `curl -s -m 3 -o /dev/null -w '%{http_code}' http://${web.ip}:${port}/ || true`,
    )
    assert.is(probe.trim(), '000', `port ${port} answered from outside`)
  }
  // Port 80 is allowed (http_from: anywhere) and nginx answers it: the probe itself can reach the droplet.
  const web80 = await onDroplet(
    attacker,
    `curl -s -m 3 -o /dev/null -w '%{http_code}' http://${web.ip}/ || true`,
  )
  assert.is(web80.trim(), '000') // nginx closes unknown names without an answer (return 444)
  const ssh = await onDroplet(
    attacker,
    `timeout 3 bash -c 'exec 3<>/dev/tcp/${web.ip}/22 && head -c 7 <&3' || true`,
  )
  assert.is(ssh.trim(), 'SSH-2.0')
  const verify = await runCaptured(verifyServer, ['--env', 'it'])
  assert.is(verify.code, 1, verify.out)
  assert.match(
    verify.out,
    /data ports closed from outside\s+FAIL\s+reachable: .*0\.0\.0\.0:6379.*0\.0\.0\.0:5432->8080\/tcp/,
  )
  await onDroplet(web, 'docker rm -f leaky >/dev/null; pkill -f "[h]ttp.server 6379" || true')
  const again = await runCaptured(verifyServer, ['--env', 'it'])
  assert.is(again.code, 0, again.out)
})

test('fail2ban bans an address that keeps failing to log in', async () => {
  const attacker = bed.droplets[2] as SandboxDroplet
  await onDroplet(
    attacker,
    `for i in 1 2 3 4 5 6; do timeout 5 ssh -o BatchMode=yes -o StrictHostKeyChecking=no -o ConnectTimeout=3 root@${web.ip} true 2>/dev/null; done; true`,
  )
  let banned = ''
  for (let i = 0; i < 20 && !banned.includes(attacker.ip); i++) {
    banned = await onDroplet(web, 'fail2ban-client status sshd')
    await new Promise((r) => setTimeout(r, 500))
  }
  assert.match(banned, attacker.ip)
})

// Four setup-server runs, two of them whole setups: a loaded CI machine took over 300 s (stop 36).
test(
  'a run killed halfway, then run again, completes and verify passes; a host set up before ssh.admin moves to it',
  async () => {
    const spare = bed.droplets[1] as SandboxDroplet
    // Set up as before ssh.admin existed: the deploy user with sudo for everything, no administrator.
    setupEnv('spare', [spare])
    const file = join(bed.envDir, 'spare.yaml')
    const narrowed = readFileSync(file, 'utf8')
    const doc = parseYaml(narrowed) as { ssh: Record<string, unknown>; setup: Record<string, unknown> }
    delete doc.ssh.admin
    doc.setup.deploy_sudo = 'all'
    writeFileSync(file, stringify(doc))
    const run = spawnScript('runbooks/setup-server.ts', ['--env', 'spare'])
    await run.until('installing ')
    await new Promise((r) => setTimeout(r, 3000))
    run.child.kill('SIGKILL')
    await run.exit
    const out = run.output()
    assert.match(out, 'installing ')
    assert.not.match(out, 'Summary')
    const { code, out: rerun } = await runCaptured(setupServer, ['--env', 'spare'])
    assert.is(code, 0, rerun)
    assert.not.match(rerun, /\sFAIL\s/)
    // Now the env file narrows sudo and names the administrator: the run comes in as deploy (sudo),
    // makes the administrator, goes on as it, and only then narrows deploy's sudo.
    writeFileSync(file, narrowed)
    const moved = await runCaptured(setupServer, ['--env', 'spare'])
    assert.is(moved.code, 0, moved.out)
    assert.match(moved.out, `spare-1: deploy@127.0.0.1:${spare.ports.ssh} (sudo)`)
    assert.match(moved.out, 'spare-1: this run goes on as ce-admin')
    assert.match(moved.out, /spare-1\s+deploy login with key works, sudo as deploy_sudo says\s+pass/)
    assert.not.match(moved.out, /\sFAIL\s/)
    const again = await runCaptured(setupServer, ['--env', 'spare'])
    assert.is(again.code, 0, again.out)
    assert.match(again.out, `spare-1: ce-admin@127.0.0.1:${spare.ports.ssh} (sudo)`)
    assert.equal(changedSteps(again.out), [])
  },
  { timeoutS: 900 },
)

test('a new droplet image boots and can be set up again from scratch (the emergency path)', async () => {
  const fresh = await startDroplet(bed.group, 'fresh-1', await buildDropletImage())
  assert.ok(fresh.hostKey.startsWith('SHA256:'))
  assert.is.not(fresh.hostKey, web.hostKey)
  await sh`docker rm -f ${fresh.container}`
})

test.run()
