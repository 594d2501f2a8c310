import { REMOTE_AUDIT_LOG } from '../env/host-paths.ts'
import { appendLineFromStdin, ownerModeIs } from './files.ts'
import { quote } from './shell.ts'

// The host's audit log is root's (root:adm 0640 in a root:adm 0750 directory) and append-only
// (`chattr +a`: not even root truncates or rewrites it without lifting the flag first; logrotate
// lifts it around each rotation): the accounts it audits cannot rewrite it. A login that is not root
// appends its run's record through ONE root-owned helper that sudo lets it run with no argument: one
// JSON line on stdin, checked, tagged with the login sudo names (which the caller cannot choose),
// appended under a lock. Pure: strings only.

export const AUDIT_LOG_DIR = '/var/log/conciliaextrato'
/** In /usr/local/sbin (0755): the deploy login must see it to know the host has it (the checker's
 * helpers are in a 0700 directory, run only through sudo). */
export const AUDIT_HELPER_PATH = '/usr/local/sbin/conciliaextrato-audit-append'
export const AUDIT_SUDOERS_PATH = '/etc/sudoers.d/conciliaextrato-audit'

/** The helper: bash, fixed PATH, no argument; exit 64 for anything but one audit record. */
export function auditHelperScript(log = REMOTE_AUDIT_LOG): string {
  const dir = log.replace(/\/[^/]+$/, '')
  const refuse = (what: string) => `{ echo "audit-append: ${what}" >&2; exit 64; }`
  return `${[
    '#!/bin/bash',
    '# Managed by setup-server: appends ONE audit record (a JSON line on stdin) to the host audit log,',
    '# which only root writes. sudo lets the deploy login run it, with no argument. Do not edit here.',
    'PATH=/usr/sbin:/usr/bin:/sbin:/bin',
    'export PATH',
    `log=${quote(log)}`,
    `[ $# -eq 0 ] || ${refuse('takes no argument (the record comes on stdin)')}`,
    `IFS= read -r -n 65536 line || [ -n "$line" ] || ${refuse('no record on stdin')}`,
    `case "$line" in '{"ts":'*'}') ;; *) ${refuse('not one JSON record')} ;; esac`,
    `[[ $line != *[[:cntrl:]]* ]] || ${refuse('control characters')}`,
    // The login is the helper's to say: a record that names one itself is refused.
    `[[ $line != *'"login":'* ]] || ${refuse('a record may not name its login')}`,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
    'login=${SUDO_USER:-$(id -un)}',
    '[[ $login =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || login=unknown',
    `install -d -m 0750 -o root -g adm ${quote(dir)}`,
    '[ -e "$log" ] || { install -m 0640 -o root -g adm /dev/null "$log" && { chattr +a "$log" 2>/dev/null || true; }; }',
    `printf '%s\\n' "{\\"login\\":\\"$login\\",\${line#\\{}" | ${lockedAppend('"$log"')}`,
  ].join('\n')}\n`
}

/**
 * Appends stdin to `log` (a shell word) under flock, opened for appending only: what an append-only
 * file allows (no touch, no chmod). Exit 75 if another writer holds it 10 s.
 */
export function lockedAppend(log: string): string {
  return `{ flock -w 10 9 || { echo "the audit log stayed locked 10 s" >&2; exit 75; }; cat >&9; } 9>>${log}`
}

/** The rule: `user` may run the helper as root, with no argument ("" in sudoers), and nothing else. */
export function auditSudoers(user: string): string {
  return `# Managed by setup-server: ${user} appends its audit records, nothing else.\n${user} ALL=(root) NOPASSWD: ${AUDIT_HELPER_PATH} ""\n`
}

/**
 * How a login that is not the checker appends its run's record: through the helper (sudo when not
 * root) where setup-server put it; on a host it has not set up yet (or an older one), straight to the
 * file, which root can, and which the deploy owned there.
 */
export function appendAuditRecord(): string {
  const h = quote(AUDIT_HELPER_PATH)
  return `if [ -x ${h} ]; then if [ "$(id -u)" = 0 ]; then ${h}; else sudo -n ${h}; fi; else ${appendLineFromStdin(REMOTE_AUDIT_LOG)}; fi`
}

const is = ownerModeIs

/** The directory and the log, root's and append-only as setup-server leaves them (the directories step's check). */
export const auditLogCheck = [
  is(AUDIT_LOG_DIR, 'root:adm 750'),
  is(REMOTE_AUDIT_LOG, 'root:adm 640'),
  `lsattr ${REMOTE_AUDIT_LOG} 2>/dev/null | cut -d' ' -f1 | grep -q a`,
].join(' && ')

/** verify: the log and the helper root's; the deploy login can write neither the log nor its directory, and sees the helper. */
export const auditLogVerify = `${auditLogCheck} && ${is(AUDIT_HELPER_PATH, 'root:root 755')}`
export const auditLogNotWritable = `[ ! -w ${REMOTE_AUDIT_LOG} ] && [ ! -w ${AUDIT_LOG_DIR} ] && [ -x ${AUDIT_HELPER_PATH} ]`

/**
 * Makes it so: the directory and the log root's (an existing log keeps its records), append-only. The
 * flag is lifted first: an append-only file refuses chown and chmod, even root's.
 */
export const auditLogApply = [
  `{ chattr -a ${REMOTE_AUDIT_LOG} 2>/dev/null || true; }`,
  `install -d -m 0750 -o root -g adm ${AUDIT_LOG_DIR}`,
  `touch ${REMOTE_AUDIT_LOG}`,
  `chown root:adm ${REMOTE_AUDIT_LOG}`,
  `chmod 0640 ${REMOTE_AUDIT_LOG}`,
  `chattr +a ${REMOTE_AUDIT_LOG}`,
].join(' && ')
