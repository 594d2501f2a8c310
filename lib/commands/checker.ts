import { REMOTE_AUDIT_LOG, remotePaths } from '../env/host-paths.ts'
import type { Env } from '../env/load.ts'
import { lockedAppend } from './audit-log.ts'
import { projectHealth, projectName } from './compose.ts'
import { hostFactsScript } from './facts.ts'
import { appendLineFromStdin } from './files.ts'
import {
  containersProbe,
  lastReleaseProbe,
  readReleases,
  servicesProbe,
  stackContainersProbe,
} from './health.ts'
import { lynisAuditScript } from './lynis.ts'
import { quote } from './shell.ts'
import { nodeList, stackName, stackServicesProbe } from './swarm.ts'
import { ARG_MINUTES, errorCountsScript, historyScript } from './uptime.ts'
import { homeOf } from './users.ts'
import { walStatusPath } from './wal.ts'

// The checker account (ssh.checker): what the read-only runbooks read on a host that needs root
// (Docker's socket, the deploy user's files) goes through ONE root-owned helper that sudo lets it run.
// The helper knows a fixed list of reads, each the very probe a deploy login runs directly; it takes
// at most one argument, checked against that read's pattern. Pure: strings only.

/** The helper of an env's reads, root-owned, 0755, written by setup-server. */
export const checkerHelperPath = (env: string) => `/usr/local/lib/conciliaextrato/check-${env}`
export const checkerSudoersPath = (env: string) => `/etc/sudoers.d/conciliaextrato-checker-${env}`

type Read =
  | { body: (env: Env) => string }
  | { choices: Record<string, (env: Env) => string> }
  /**
   * `pattern`: an anchored ERE that the helper (bash [[ =~ ]]) and readCommand (RegExp) both check.
   * `body` gets the checked value, or null in the helper, where the value is the shell's "$arg".
   */
  | { pattern: string; form: string; body: (env: Env, value: string | null) => string }

const READS = {
  /** The containers and their health: the live colour + data (compose), a swarm node's tasks, the data host. */
  containers: {
    choices: {
      compose: (env) => containersProbe(env.name),
      stack: (env) => stackContainersProbe(env.name),
      data: (env) => projectHealth(projectName(env.name, 'data')),
    },
  },
  /** nginx, Postgres and Redis answering. */
  services: {
    choices: {
      all: (env) => servicesProbe(env.name),
      nginx: (env) => servicesProbe(env.name, { nginx: true, data: false }),
      data: (env) => servicesProbe(env.name, { nginx: false, data: true }),
    },
  },
  'last-release': { body: (env: Env) => lastReleaseProbe(remotePaths(env).releases) },
  /** The WAL shipper's status (root's file; it holds no secret). Empty when there is none. */
  'wal-status': { body: (env: Env) => `cat ${quote(walStatusPath(env.name))} 2>/dev/null || true` },
  releases: { body: (env: Env) => readReleases(remotePaths(env).releases) },
  /** lynis's audit of the host, run now as root (make security-scan): it changes nothing but its report. */
  lynis: { body: () => lynisAuditScript() },
  facts: { body: (env: Env) => hostFactsScript(env) },
  nodes: { body: () => nodeList },
  'stack-services': { body: (env: Env) => stackServicesProbe(stackName(env.name)) },
  history: {
    pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$',
    form: 'a day, YYYY-MM-DD',
    body: (env: Env, value: string | null) => historyScript(env.name, value ?? '"$arg"'),
  },
  errors: {
    pattern: '^[0-9]{1,5}$',
    form: 'a number of minutes',
    body: (env: Env, value: string | null) =>
      errorCountsScript(env.name, value === null ? ARG_MINUTES : Number(value)),
  },
} satisfies Record<string, Read>

export type ReadName = keyof typeof READS
export const READ_NAMES = Object.keys(READS) as ReadName[]

/**
 * The command that does one read on a host: the probe itself for a login that may (deploy), or the
 * helper through sudo for the checker (`helper` set). A bad argument is a bug here, said at once.
 */
export function readCommand(env: Env, helper: string | undefined, name: ReadName, arg?: string): string {
  const read: Read = READS[name]
  if ('choices' in read) {
    const body = arg === undefined ? undefined : read.choices[arg]
    if (!body) throw new Error(`read ${name}: "${arg}" is not one of ${Object.keys(read.choices).join(', ')}`)
    return helper ? `sudo -n ${helper} ${name} ${arg}` : body(env)
  }
  if ('pattern' in read) {
    if (arg === undefined || !new RegExp(read.pattern).test(arg))
      throw new Error(`read ${name}: "${arg}" is not ${read.form}`)
    return helper ? `sudo -n ${helper} ${name} ${arg}` : read.body(env, arg)
  }
  if (arg !== undefined) throw new Error(`read ${name} takes no argument`)
  return helper ? `sudo -n ${helper} ${name}` : read.body(env)
}

/** readCommand for a host's session: through the helper when it is the checker's login. */
export function readOn(
  host: { options: { readHelper?: string } },
  env: Env,
  name: ReadName,
  arg?: string,
): string {
  return readCommand(env, host.options.readHelper, name, arg)
}

/** One case branch of the helper: the read's argument checked, then its probe, verbatim (not indented: its quoted awk programs stay byte for byte). */
function branch(env: Env, name: string, read: Read): string {
  const refuse = (what: string) => `{ echo "${name}: ${what}" >&2; exit 64; }`
  if ('choices' in read) {
    const arms = Object.entries(read.choices).map(
      ([choice, body]) => `      ${choice})\n${body(env)}\n        ;;`,
    )
    const list = Object.keys(read.choices).join('|')
    return `  ${name})\n    [ $# -eq 2 ] || ${refuse(`one of ${list}`)}\n    case "$arg" in\n${arms.join('\n')}\n      *) ${refuse(`one of ${list}`)} ;;\n    esac\n    ;;`
  }
  if ('pattern' in read)
    return `  ${name})\n    [ $# -eq 2 ] && [[ $arg =~ ${read.pattern} ]] || ${refuse(read.form)}\n${read.body(env, null)}\n    ;;`
  return `  ${name})\n    [ $# -eq 1 ] || ${refuse('takes no argument')}\n${read.body(env)}\n    ;;`
}

/**
 * The one write the checker has: its run's audit record, one JSON line on stdin (as every runbook
 * appends to the host's audit log), tagged `"via":"<checker>"` so it can never pass for another
 * login's record. Anything that is not one line of a JSON object from runbook output is refused (64).
 */
function auditBranch(user: string): string {
  // Appends only (the log is append-only: no touch or chmod on it).
  const append = lockedAppend(REMOTE_AUDIT_LOG)
  return [
    '  audit)',
    `    [ $# -eq 1 ] || { echo "audit: takes no argument (the record comes on stdin)" >&2; exit 64; }`,
    '    IFS= read -r -n 65536 line || [ -n "$line" ] || { echo "audit: no record on stdin" >&2; exit 64; }',
    `    case "$line" in '{"ts":'*'}') ;; *) echo "audit: not one JSON record" >&2; exit 64 ;; esac`,
    `    [[ $line != *[[:cntrl:]]* ]] || { echo "audit: control characters" >&2; exit 64; }`,
    `    printf '%s\\n' "{\\"via\\":\\"${user}\\",\${line#\\{}" | ${append}`,
    '    ;;',
  ].join('\n')
}

/** How a session appends its run's audit record to the host's log: itself, or the checker through its helper. */
export function appendAuditCommand(helper: string | undefined): string {
  return helper ? `sudo -n ${helper} audit` : appendLineFromStdin(REMOTE_AUDIT_LOG)
}

/**
 * The helper: bash, a fixed PATH, one `case` over the reads. Everything it runs is the same
 * probe text the deploy login would run; nothing from the caller reaches a shell but a checked word.
 */
export function checkerHelperScript(env: Env): string {
  const user = env.ssh.checker?.user ?? 'ce-check'
  const names = READ_NAMES.join(' ')
  return [
    '#!/bin/bash',
    `# Managed by setup-server: the reads of env ${env.name} that the checker account (ssh.checker) may`,
    '# make as root, through sudo. Read-only. Usage: <read> [argument]. Do not edit here: run setup-server.',
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'export PATH',
    'arg="$2"',
    'case "$1" in',
    ...READ_NAMES.map((name) => branch(env, name, READS[name])),
    auditBranch(user),
    `  *) echo "usage: $0 <read> [argument]; reads: ${names}" >&2; exit 64 ;;`,
    'esac',
    '',
  ].join('\n')
}

/** The checker's one sudo rule: the helper, as root, without a password. Nothing else. */
export function checkerSudoers(user: string, env: string): string {
  return `# Managed by setup-server (env file: ssh.checker): the checker's reads, and nothing else.\n${user} ALL=(root) NOPASSWD: ${checkerHelperPath(env)}\n`
}

/** authorized_keys of the checker: `restrict` (no forwarding, no pty, no ~/.ssh/rc) before each key. */
export function checkerAuthorizedKeys(lines: string[]): string {
  return `${lines.map((l) => `restrict ${l}`).join('\n')}\n`
}

/** Groups that would give the checker more than reads: it must be in none of them. */
export const CHECKER_FORBIDDEN_GROUPS = ['sudo', 'docker', 'adm', 'root', 'wheel', 'disk', 'shadow']

/** exit 0 when the user exists with a locked password and in none of the forbidden groups. */
export function checkerUserCheck(user: string): string {
  const u = quote(user)
  return `id -u ${u} >/dev/null 2>&1 && ! id -nG ${u} | tr ' ' '\\n' | grep -qxE ${quote(CHECKER_FORBIDDEN_GROUPS.join('|'))} && passwd -S ${u} | awk '{exit !($2 == "L")}'`
}

/** Creates the checker (its own group, a shell for ssh's commands, no password) or takes away what it must not have. */
export function checkerUserApply(user: string): string {
  const u = quote(user)
  return [
    `(id -u ${u} >/dev/null 2>&1 || useradd --create-home --user-group --shell /bin/bash ${u})`,
    `for g in ${CHECKER_FORBIDDEN_GROUPS.join(' ')}; do gpasswd -d ${u} "$g" >/dev/null 2>&1 || true; done`,
    `passwd -l ${u} >/dev/null`,
  ].join(' && ')
}

/** The checker's ~/.ssh: root-owned, group-readable by the checker (sshd reads it as the user); the checker cannot add a key. */
export function checkerSshDir(user: string): { check: string; apply: string } {
  const dir = `"$(${homeOf(user)})/.ssh"`
  return {
    check: `[ "$(stat -c '%U:%G %a' ${dir} 2>/dev/null)" = ${quote(`root:${user} 750`)} ]`,
    apply: `install -d -m 0750 -o root -g ${quote(user)} ${dir} && chown root:${quote(user)} ${dir} && chmod 0750 ${dir}`,
  }
}

/** What verify-server asks as the checker: `key=yes|no` lines (parseCheckerProof reads them). */
export function checkerProof(env: string): string {
  const helper = checkerHelperPath(env)
  const yesNo = (key: string, test: string) => `if ${test}; then echo ${key}=yes; else echo ${key}=no; fi`
  return [
    'echo "groups=$(id -nG)"',
    yesNo('sudo_other', 'sudo -n true >/dev/null 2>&1'),
    yesNo('docker', 'docker ps >/dev/null 2>&1'),
    yesNo('keys_writable', '[ -w ~/.ssh/authorized_keys ] || [ -w ~/.ssh ]'),
    // grep without -q reads to the end: the session's pipefail would count the helper's SIGPIPE.
    yesNo('helper_reads', `sudo -n ${helper} facts 2>/dev/null | grep '^os=' >/dev/null`),
    yesNo('helper_unknown_read', `sudo -n ${helper} sh >/dev/null 2>&1`),
  ].join('\n')
}

/** What is wrong with the checker, from checkerProof's output: [] when it reads and can change nothing. */
export function parseCheckerProof(out: string): string[] {
  const kv = Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  )
  const problems: string[] = []
  const groups = (kv.groups ?? '').split(' ').filter((g: string) => CHECKER_FORBIDDEN_GROUPS.includes(g))
  if (kv.groups === undefined) problems.push('no answer')
  if (groups.length) problems.push(`in group(s) ${groups.join(', ')}`)
  if (kv.sudo_other !== 'no') problems.push('sudo runs other commands')
  if (kv.docker !== 'no') problems.push("reaches Docker's socket")
  if (kv.keys_writable !== 'no') problems.push('can change its own keys')
  if (kv.helper_reads !== 'yes') problems.push('the helper does not read (facts)')
  if (kv.helper_unknown_read !== 'no') problems.push('the helper runs an unknown read')
  return problems
}
