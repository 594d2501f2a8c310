import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { checkerHelperScript, readCommand } from '../../lib/commands/checker.ts'
import {
  AIDE,
  HARDENING_FILES,
  hardeningPackages,
  keyOnlyAccountsApply,
  keyOnlyAccountsCheck,
  loginDefsApply,
  loginDefsCheck,
  modesCheck,
  modesWanted,
} from '../../lib/commands/hardening.ts'
import { LYNIS_REPORT, lynisAuditScript } from '../../lib/commands/lynis.ts'
import { sshdHardening } from '../../lib/commands/sshd.ts'
import { type Env, loadEnv } from '../../lib/env/load.ts'
import { SECURITY_DEFAULTS } from '../../lib/env/security.ts'
import { InputError } from '../../lib/report/errors.ts'
import {
  nmapSawHost,
  npmAtLeast,
  parseLynisReport,
  parseNmapGrepable,
  parseNpmAudit,
  parseSshAudit,
  parseTestssl,
  tlsAtLeast,
} from '../../lib/security/findings.ts'
import { hostTargets, nmapArgv, sshAuditArgv, testsslArgv, tlsTargets } from '../../lib/security/plan.ts'
import { npmAudit } from '../../lib/security/scanners.ts'
import { type HostScan, verdict } from '../../lib/security/verdict.ts'
import { suite } from '../harness.ts'

const test = suite(
  'security-scan: the readers of each tool, the plan, the verdict; the host hardening commands',
)
const fixture = (name: string) =>
  readFileSync(join(import.meta.dirname, '..', 'fixtures', 'security', name), 'utf8')

test('ssh-audit 2.5: the warn notes of a set-up droplet; a fail note; no banner is no verdict', () => {
  const real = parseSshAudit(fixture('ssh-audit-2.5.txt'))
  assert.equal(real?.fail, [])
  assert.equal(real?.warn, [
    'kex sntrup761x25519-sha512@openssh.com: using experimental algorithm',
    'kex kex-strict-s-v00@openssh.com: unknown algorithm',
  ])
  const weak = parseSshAudit(
    `${fixture('ssh-audit-2.5.txt')}\n(kex) diffie-hellman-group1-sha1     -- [fail] using small 1024-bit modulus\n                                     \`- [fail] removed (in server) since OpenSSH 6.7\n`,
  )
  assert.equal(weak?.fail, [
    'kex diffie-hellman-group1-sha1: using small 1024-bit modulus',
    'kex diffie-hellman-group1-sha1: removed (in server) since OpenSSH 6.7',
  ])
  assert.is(parseSshAudit('[exception] did not receive banner.\n'), null)
})

test('testssl JSON: LOW or worse kept, OK/INFO/WARN dropped; the threshold picks MEDIUM and worse', () => {
  const rows = [
    { id: 'TLS1_3', severity: 'OK', finding: 'offered with final' },
    { id: 'scanTime', severity: 'INFO', finding: '42' },
    { id: 'engine_problem', severity: 'WARN', finding: 'No engine or GOST support' },
    { id: 'HSTS', severity: 'LOW', finding: 'not offered' },
    { id: 'BREACH', severity: 'MEDIUM', finding: 'potentially VULNERABLE, gzip HTTP compression detected' },
    { id: 'cert_chain_of_trust', severity: 'CRITICAL', finding: 'failed (self signed).' },
  ]
  const found = parseTestssl(JSON.stringify(rows))
  assert.equal(
    found.map((f) => f.id),
    ['HSTS', 'BREACH', 'cert_chain_of_trust'],
  )
  assert.equal(
    tlsAtLeast(found, 'MEDIUM').map((f) => f.id),
    ['BREACH', 'cert_chain_of_trust'],
  )
  assert.equal(
    tlsAtLeast(found, 'CRITICAL').map((f) => f.id),
    ['cert_chain_of_trust'],
  )
})

test('testssl 3.0 on a self-signed server (-p -S -h -U): every finding LOW or worse, by id', () => {
  const found = parseTestssl(fixture('testssl-3.0-self-signed.json'))
  assert.equal(tlsAtLeast(found, 'MEDIUM').length, 7)
  assert.ok(found.some((f) => f.id === 'cert_chain_of_trust' && f.severity === 'CRITICAL'))
  assert.ok(found.some((f) => f.id === 'LUCKY13' && f.severity === 'LOW'))
  assert.not.ok(found.some((f) => f.id === 'scanTime'))
})

test("lynis 3.0.8's report of a set-up sandbox droplet: index, version, warning, suggestions", () => {
  const r = parseLynisReport(fixture('lynis-3.0.8-report.dat'))
  assert.is(r.index, 80)
  assert.is(r.version, '3.0.8')
  assert.equal(r.warnings, [
    "PKGS-7388: Can't find any security repository in /etc/apt/sources.list or sources.list.d directory",
  ])
  assert.ok(r.suggestions.some((s) => s.startsWith('FILE-6310: ')))
  assert.ok(
    r.suggestions.includes('SSH-7408: Consider hardening SSH configuration (MaxSessions (set 10 to 2))'),
  )
  assert.is(parseLynisReport('lynis_version=3.0.8\n').index, null)
})

test('nmap grepable output: open TCP ports only (closed and filtered are not); a host that never answered', () => {
  const out = fixture('nmap-7.93.gnmap')
  assert.equal(parseNmapGrepable(out), [22, 80])
  assert.ok(nmapSawHost(out))
  assert.not.ok(nmapSawHost('# Nmap done at ... -- 1 IP address (0 hosts up) scanned in 3.02 seconds\n'))
})

test("npm audit JSON: counts by severity; the registry's error is no report", () => {
  const counts = parseNpmAudit(
    JSON.stringify({
      auditReportVersion: 2,
      vulnerabilities: {},
      metadata: { vulnerabilities: { info: 0, low: 1, moderate: 2, high: 1, critical: 0, total: 4 } },
    }),
  )
  assert.equal(counts, { low: 1, moderate: 2, high: 1, critical: 0 })
  assert.is(counts && npmAtLeast(counts, 'high'), 1)
  assert.is(counts && npmAtLeast(counts, 'moderate'), 3)
  assert.is(parseNpmAudit(fixture('npm-audit-405.json')), null)
  assert.is(parseNpmAudit('not json'), null)
})

const env = (over: Partial<Env> = {}) =>
  ({
    name: 'qa',
    kind: 'staging',
    domains: { site: 'qa.example.com', saas: 'app.qa.example.com', api: 'api.qa.example.com' },
    hosts: [
      { name: 'qa-1', address: '203.0.113.20', sshPort: 22, hostKey: 'k', roles: ['web', 'data'] },
      {
        name: 'sbx',
        address: '127.0.0.1',
        sshPort: 32770,
        hostKey: 'k',
        roles: ['web'],
        scanAddress: '172.18.0.2',
      },
      { name: 'lo', address: '127.0.0.1', sshPort: 32771, hostKey: 'k', roles: ['web'] },
    ],
    edge: { zone: 'example.com' },
    security: SECURITY_DEFAULTS,
    ...over,
  }) as unknown as Env

test("plan: ssh-audit at the login's address, nmap at the host's own (never this machine's loopback)", () => {
  const [a, b, c] = hostTargets(env())
  assert.equal(a, {
    name: 'qa-1',
    ssh: { address: '203.0.113.20', port: 22 },
    scan: { address: '203.0.113.20' },
  })
  assert.equal(b?.ssh, { address: '127.0.0.1', port: 32770 })
  assert.equal(b?.scan, { address: '172.18.0.2' })
  assert.match(JSON.stringify(c?.scan), /loopback.*set hosts\[\]\.scan_address/)
})

test('plan: TLS through the edge at the address each name resolves to; no edge or no address is named', () => {
  const t = tlsTargets(env(), (d) => (d === 'api.qa.example.com' ? undefined : '198.51.100.7'))
  assert.equal(t[0], {
    service: 'site',
    domain: 'qa.example.com',
    at: { address: '198.51.100.7', port: 443 },
  })
  assert.match(JSON.stringify(t[2]?.at), /does not resolve \(make dns ENV=qa\)/)
  const none = tlsTargets(env({ edge: undefined } as Partial<Env>), () => '198.51.100.7')
  assert.ok(none.every((x) => 'skipped' in x.at && /no edge/.test(x.at.skipped)))
})

test('the scanners run exactly these commands', () => {
  assert.equal(sshAuditArgv('203.0.113.20', 2222), [
    'ssh-audit',
    '-n',
    '-t',
    '10',
    '-p',
    '2222',
    '203.0.113.20',
  ])
  assert.equal(
    nmapArgv('203.0.113.20').join(' '),
    'nmap -Pn -sT -p- -T4 --min-rate 2000 --max-retries 2 --host-timeout 15m -oG - 203.0.113.20',
  )
  assert.equal(
    testsslArgv('qa.example.com', '198.51.100.7', 443, '/tmp/x.json', '/tmp/ca.pem').join(' '),
    'testssl --add-ca /tmp/ca.pem --quiet --color 0 --warnings off --nodns none --ip 198.51.100.7 --connect-timeout 10 --openssl-timeout 10 -p -S -h -U --jsonfile /tmp/x.json qa.example.com:443',
  )
  assert.not.ok(testsslArgv('qa.example.com', '198.51.100.7', 443, '/tmp/x.json').includes('--add-ca'))
})

const clean = (over: Partial<HostScan> = {}): HostScan => ({
  name: 'qa-1',
  sshAudit: { ok: { fail: [], warn: ['kex sntrup: experimental'] } },
  ports: { ok: [22, 443] },
  lynis: {
    ok: { index: 82, version: '3.0.8', warnings: ['PKGS-7388: no security repository'], suggestions: [] },
  },
  ...over,
})
const deps = {
  npm: { ok: { low: 3, moderate: 1, high: 0, critical: 0 } },
  cargo: { skipped: 'no WORKSPACE=' },
}
const config = { ...SECURITY_DEFAULTS, lynisAcceptedWarnings: ['PKGS-7388'], testsslAccepted: ['LUCKY13'] }

test('verdict: a clean scan passes, its figures and what was not scanned on one line', () => {
  const { summary, problems } = verdict(
    config,
    [clean()],
    [{ domain: 'qa.example.com', findings: { ok: [] } }],
    deps,
  )
  assert.equal(problems, [])
  assert.equal(summary, {
    ssh_audit_fail: 0,
    testssl_medium_or_worse: 0,
    lynis_index: 82,
    open_ports: [22, 443],
    unexpected_ports: {},
    npm_audit: 0,
    cargo_audit: null,
    not_scanned: ['cargo audit: no WORKSPACE='],
    accepted: ['qa-1 lynis PKGS-7388'],
    passed: true,
  })
})

test('verdict: each threshold fails on its own, naming the host or domain and the field', () => {
  const bad = verdict(
    config,
    [
      clean({
        sshAudit: { ok: { fail: ['kex diffie-hellman-group1-sha1: small modulus'], warn: [] } },
        ports: { ok: [22, 443, 5432] },
        lynis: {
          ok: { index: 67, version: '3.0.8', warnings: ['FIRE-4512: iptables empty'], suggestions: [] },
        },
      }),
    ],
    [
      {
        domain: 'qa.example.com',
        findings: {
          ok: [
            { id: 'BREACH', severity: 'MEDIUM', finding: 'potentially VULNERABLE' },
            { id: 'HSTS', severity: 'LOW', finding: 'short' },
            { id: 'LUCKY13', severity: 'HIGH', finding: 'accepted here' },
          ],
        },
      },
    ],
    {
      npm: { ok: { low: 0, moderate: 0, high: 2, critical: 1 } },
      cargo: { ok: { blocking: ['time 0.1: RUSTSEC-2020-0071 (high)'], other: [] } },
    },
  )
  assert.is(bad.summary.passed, false)
  assert.is(bad.summary.ssh_audit_fail, 1)
  assert.is(bad.summary.testssl_medium_or_worse, 1)
  assert.is(bad.summary.lynis_index, 67)
  assert.equal(bad.summary.unexpected_ports, { 'qa-1': [5432] })
  assert.is(bad.summary.npm_audit, 3)
  assert.is(bad.summary.cargo_audit, 1)
  const text = bad.problems.join('\n')
  assert.match(text, /qa-1 ssh-audit \[fail\] kex diffie-hellman-group1-sha1/)
  assert.match(text, /qa-1: port\(s\) 5432 open from outside; security.open_ports allows 22, 80, 443/)
  assert.match(text, /qa-1 lynis hardening index 67 < security.lynis_min_index 80/)
  assert.match(text, /qa-1 lynis warning FIRE-4512/)
  assert.match(text, /qa.example.com testssl BREACH \(MEDIUM\)/)
  assert.not.match(text, /HSTS/)
  assert.match(text, /npm audit: 3 advisory\(ies\) at high or worse/)
  assert.match(text, /cargo audit: time 0.1: RUSTSEC-2020-0071/)
  assert.not.match(text, /PKGS-7388/)
  assert.not.match(text, /LUCKY13/)
  assert.equal(bad.summary.accepted, ['qa.example.com testssl LUCKY13 (HIGH)'])
})

test('verdict: a scanner that could not judge fails the scan; one that does not apply is listed, not failed', () => {
  const r = verdict(
    config,
    [clean({ lynis: { error: 'exit 3: lynis is not installed on this host: run make setup-server' } })],
    [{ domain: 'qa.example.com', findings: { skipped: 'no edge' } }],
    deps,
  )
  assert.is(r.summary.passed, false)
  assert.is(r.summary.lynis_index, null)
  assert.match(r.problems.join('\n'), /qa-1 lynis: could not be judged: exit 3: lynis is not installed/)
  assert.ok(r.summary.not_scanned.includes('qa.example.com testssl: no edge'))
})

test('env: security: thresholds are checked, and default when the section is absent', () => {
  const base = readFileSync(join(import.meta.dirname, '..', '..', 'env', 'local.yaml'), 'utf8').replace(
    /\nsecurity:\n( {2}.*\n)+/,
    '\n',
  )
  const dir = mkdtempSync(join(tmpdir(), 'ce-sec-'))
  const load = (extra: string) => {
    writeFileSync(join(dir, 'local.yaml'), `${base}${extra}`)
    return loadEnv('local', dir)
  }
  try {
    assert.equal(load('').security, SECURITY_DEFAULTS)
  } catch (err) {
    // Without a running sandbox the local file's hosts do not load: the section's own errors still show.
    assert.instance(err, InputError)
  }
  let message = ''
  try {
    load(
      'security:\n  open_ports: [22, 70000]\n  testssl_fail_at: BAD\n  lynis_min_index: 101\n  lynis_accepted_warnings: [nope]\n  testssl_accepted: ["no spaces"]\n  extra: 1\n',
    )
  } catch (err) {
    message = (err as Error).message
  }
  assert.match(message, /security.open_ports\[1\]: expected a TCP port from 1 to 65535, got 70000/)
  assert.match(message, /security.testssl_fail_at: expected one of LOW, MEDIUM, HIGH, CRITICAL/)
  assert.match(message, /security.lynis_min_index: expected an integer from 0 to 100/)
  assert.match(message, /security.lynis_accepted_warnings\[0\]: expected a lynis test id/)
  assert.match(message, /security.testssl_accepted\[0\]: expected a testssl finding id like BREACH/)
  assert.match(message, /security.extra: unknown field/)
})

test('lynis on the host: one run at a time, a fresh report, only the lines the scan reads', () => {
  const s = lynisAuditScript()
  assert.match(s, /command -v lynis .* exit 3; \}/)
  assert.match(s, /flock -w 900 9 \|\| \{ .* exit 75; \}/)
  assert.match(
    s,
    new RegExp(
      `rm -f ${LYNIS_REPORT}\nnice -n 10 lynis audit system --quick --no-colors --report-file ${LYNIS_REPORT}`,
    ),
  )
  assert.match(s, /grep -E '\^\(lynis_version\|hardening_index\|warning\\\[\\\]\|suggestion\\\[\\\]\)=' /)
})

test('the checker runs lynis through its helper (root), with no argument; the helper knows it', () => {
  const e = { name: 'qa' } as Env
  assert.is(
    readCommand(e, '/usr/local/lib/conciliaextrato/check-qa', 'lynis'),
    'sudo -n /usr/local/lib/conciliaextrato/check-qa lynis',
  )
  assert.throws(() => readCommand(e, '/h', 'lynis', 'x'), /takes no argument/)
  assert.match(checkerHelperScript(loadEnv('production')), /\n {2}lynis\)\n.*\ncommand -v lynis/)
})

test('hardening: the auditing packages (auditd only outside a container, never rkhunter)', () => {
  assert.ok(hardeningPackages(false).includes('auditd'))
  assert.not.ok(hardeningPackages(true).includes('auditd'))
  for (const p of ['aide', 'debsums', 'libpam-pwquality', 'sysstat', 'acct', 'chkrootkit', 'libpam-tmpdir'])
    assert.ok(hardeningPackages(true).includes(p), p)
  assert.not.ok(hardeningPackages(false).includes('rkhunter'))
})

test('hardening: the files (modprobe lines exactly as lynis reads them; aide leaves the data out)', () => {
  const file = (p: string) => HARDENING_FILES.find((f) => f.path === p)?.content ?? ''
  assert.match(file('/etc/modprobe.d/conciliaextrato-unused.conf'), /^install usb-storage \/bin\/true$/m)
  assert.match(file('/etc/modprobe.d/conciliaextrato-unused.conf'), /^install tipc \/bin\/true$/m)
  assert.match(file('/etc/systemd/coredump.conf.d/90-conciliaextrato.conf'), /Storage=none\nProcessSizeMax=0/)
  assert.match(file('/etc/security/limits.d/90-conciliaextrato-no-core.conf'), /^\* hard core 0$/m)
  assert.match(file('/etc/profile.d/conciliaextrato-shell.sh'), /TMOUT=900\n {2}readonly TMOUT/)
  assert.match(file('/etc/aide/aide.conf.d/70_aide_conciliaextrato'), /^!\/var\/lib\/docker\(\/\|\$\)$/m)
  assert.ok(file('/etc/issue').length > 40)
  assert.match(AIDE.apply, /test -s \/var\/lib\/aide\/aide.db \|\| nice -n 10 aideinit -y -f/)
})

test('hardening: login.defs values, the key-only accounts exempt from ageing, modes', () => {
  assert.match(
    loginDefsCheck(),
    /grep -qE '\^PASS_MAX_DAYS\[\[:space:\]\]\+365\[\[:space:\]\]\*\$' \/etc\/login.defs/,
  )
  assert.match(
    loginDefsApply(),
    /sed -i -E 's\/\^#\?\[\[:space:\]\]\*SHA_CRYPT_MIN_ROUNDS\[\[:space:\]\]\.\*\/SHA_CRYPT_MIN_ROUNDS\\t5000\/'/,
  )
  assert.match(keyOnlyAccountsCheck(['deploy']), /getent shadow deploy \| cut -d: -f5\)" = ""/)
  assert.is(
    keyOnlyAccountsApply(['deploy', 'ce-check']),
    '{ ! id -u deploy >/dev/null 2>&1 || chage -M -1 -m 0 deploy; } && { ! id -u ce-check >/dev/null 2>&1 || chage -M -1 -m 0 ce-check; }',
  )
  assert.equal(modesWanted(['/home/deploy']).slice(0, 3), [
    ['/etc/ssh/sshd_config', '600'],
    ['/etc/crontab', '600'],
    ['/etc/cron.d', '700'],
  ])
  assert.match(modesCheck(['/home/deploy']), /\[ "\$\(stat -c %a \/home\/deploy\)" = 750 \]/)
})

test('sshd: no compression, keepalives through the encrypted channel only', () => {
  assert.match(sshdHardening(), /\nTCPKeepAlive no\nCompression no\n/)
})

test('npm audit that cannot reach its registry: named as not scanned, except on GitHub runners (the weekly run), where it fails', async () => {
  const saved = { registry: process.env.npm_config_registry, actions: process.env.GITHUB_ACTIONS }
  // A closed local port: nothing leaves this machine.
  process.env.npm_config_registry = 'http://127.0.0.1:9/'
  try {
    delete process.env.GITHUB_ACTIONS
    const here = await npmAudit()
    assert.match(
      JSON.stringify(here),
      /"skipped":"npm audit could not ask the registry: .*ECONNREFUSED 127.0.0.1:9/,
    )
    process.env.GITHUB_ACTIONS = 'true'
    const weekly = await npmAudit()
    assert.match(JSON.stringify(weekly), /"error":"npm audit could not ask the registry: .*ECONNREFUSED/)
  } finally {
    for (const [k, v] of [
      ['npm_config_registry', saved.registry],
      ['GITHUB_ACTIONS', saved.actions],
    ] as const)
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
  }
})

test.run()
