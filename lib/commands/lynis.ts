// lynis inside a host, as root (make security-scan, through the checker's helper: lib/commands/checker.ts).
// It audits and changes nothing but its own report and log. One run at a time per host (a lock): a second
// scan waits for the first and reads its own, fresh report. Pure: strings only.

export const LYNIS_DIR = '/var/lib/conciliaextrato/security'
export const LYNIS_REPORT = `${LYNIS_DIR}/lynis-report.dat`

/** What the report holds that the scan reads: its version, the hardening index, warnings, suggestions. */
export const LYNIS_KEYS = ['lynis_version', 'hardening_index', 'warning\\[\\]', 'suggestion\\[\\]']

/**
 * Runs `lynis audit system --quick` (niced) into a new report and prints the report's lines the scan
 * reads. Exit 3: lynis is not installed (setup-server installs it); 75: another scan held the lock for
 * 15 minutes; 1: lynis wrote no report (its log says why).
 */
export function lynisAuditScript(): string {
  const d = LYNIS_DIR
  return [
    `command -v lynis >/dev/null 2>&1 || { echo "lynis is not installed on this host: run make setup-server" >&2; exit 3; }`,
    `mkdir -p ${d} && chmod 700 ${d}`,
    `exec 9>${d}/lynis.lock`,
    `flock -w 900 9 || { echo "another lynis run held ${d}/lynis.lock for 15 minutes" >&2; exit 75; }`,
    `rm -f ${LYNIS_REPORT}`,
    `nice -n 10 lynis audit system --quick --no-colors --report-file ${LYNIS_REPORT} --log-file ${d}/lynis.log >/dev/null 2>&1 || true`,
    `test -s ${LYNIS_REPORT} || { echo "lynis wrote no report (see ${d}/lynis.log)" >&2; exit 1; }`,
    `grep -E '^(${LYNIS_KEYS.join('|')})=' ${LYNIS_REPORT}`,
  ].join('\n')
}
