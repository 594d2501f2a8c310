/**
 * GitHub Actions workflow commands, when a runbook runs in a workflow (GITHUB_ACTIONS=true): a
 * collapsible group per step, an error annotation on failure, a markdown summary of the step timings
 * in $GITHUB_STEP_SUMMARY, and every secret masked in the log (as well as redacted by us).
 * Pure builders (unit tested) plus the few writes.
 */
import { appendFileSync } from 'node:fs'

export const inActions = (env: NodeJS.ProcessEnv = process.env) => env.GITHUB_ACTIONS === 'true'

/** Escaping of a command's message, as the runner's toolkit does it. */
export function escapeData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A')
}

/** Escaping of a command's property (title=...). */
export function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C')
}

export const group = (title: string) => `::group::${escapeData(title)}`
export const endGroup = () => '::endgroup::'
export const errorAnnotation = (title: string, message: string) =>
  `::error title=${escapeProperty(title)}::${escapeData(message)}`
/** One line per value (multi-line secrets: each line, as the runner masks line by line). */
export function maskLines(values: string[]): string[] {
  const lines = values.flatMap((v) => v.split(/\r?\n/)).map((v) => v.trim())
  return [...new Set(lines.filter((v) => v.length >= 4))].map((v) => `::add-mask::${escapeData(v)}`)
}

export function summaryMarkdown(
  title: string,
  outcome: string,
  rows: Array<{ step: string; status: string; seconds: number }>,
  failure?: { step: string; message: string; next?: string },
): string {
  const icon = outcome === 'success' || outcome === 'dry-run' ? '✅' : '❌'
  const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ')
  const lines = [
    `### ${icon} ${cell(title)}: ${outcome}`,
    '',
    '| # | step | status | seconds |',
    '|---|---|---|---|',
    ...rows.map(
      (r, i) =>
        `| ${i + 1} | ${cell(r.step)} | ${r.status} | ${r.status === 'not run' ? '' : r.seconds.toFixed(1)} |`,
    ),
  ]
  if (failure)
    lines.push(
      '',
      `**Failed:** ${cell(failure.step)}: ${cell(failure.message)}`,
      ...(failure.next ? [`**Next:** ${cell(failure.next)}`] : []),
    )
  return `${lines.join('\n')}\n\n`
}

export function appendStepSummary(markdown: string, env: NodeJS.ProcessEnv = process.env): void {
  const file = env.GITHUB_STEP_SUMMARY
  if (file) appendFileSync(file, markdown)
}
