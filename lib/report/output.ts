import { redact } from './redact.ts'

// The one place that writes to the terminal: everything is redacted on the way out.
type Sink = (text: string) => void
let sink: Sink = (text) => process.stdout.write(text)
let errSink: Sink = (text) => process.stderr.write(text)

export function setSinks(out: Sink, err: Sink = out): void {
  sink = out
  errSink = err
}

export function print(line = ''): void {
  sink(`${redact(line)}\n`)
}

export function printErr(line = ''): void {
  errSink(`${redact(line)}\n`)
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
