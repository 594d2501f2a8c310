import { AsyncLocalStorage } from 'node:async_hooks'
import { redact } from './redact.ts'

// The one place that writes to the terminal: everything is redacted on the way out.
type Sink = (text: string) => void
let sink: Sink = (text) => process.stdout.write(text)
let errSink: Sink = (text) => process.stderr.write(text)

export function setSinks(out: Sink, err: Sink = out): void {
  sink = out
  errSink = err
}

/** The label of the work now printing, when it runs beside other work (see labelled()). */
const labels = new AsyncLocalStorage<string>()

/** A line under the current label: `      [label] text`, its indentation kept. */
export function labelLine(line: string, label: string | undefined): string {
  return label === undefined || line === '' ? line : line.replace(/^(\s*)/, `$1[${label}] `)
}

/**
 * Runs `fn` with every line it prints (and everything it awaits prints) marked `[label]`: work that
 * runs in the background beside a step (restore's safety backup) stays readable in the step's output.
 */
export function labelled<T>(label: string, fn: () => Promise<T>): Promise<T> {
  return labels.run(label, fn)
}

export function print(line = ''): void {
  sink(`${redact(labelLine(line, labels.getStore()))}\n`)
}

export function printErr(line = ''): void {
  errSink(`${redact(labelLine(line, labels.getStore()))}\n`)
}

/** Renders rows as an aligned plain-text table (first row is the header). */
export function table(rows: string[][]): string {
  const widths: number[] = []
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length)
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`
}
