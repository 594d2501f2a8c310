// Every secret value is registered here once, and every byte we print, log or audit passes redact().
const secrets = new Map<string, string>()

/** Registers a secret value (and the encodings it may appear in) for redaction everywhere. */
export function registerSecret(name: string, value: string): void {
  if (!value) return
  const forms = new Set([
    value,
    value.trim(),
    encodeURIComponent(value),
    Buffer.from(value).toString('base64'),
  ])
  for (const form of forms) if (form.length >= 3) secrets.set(form, name)
}

export function redact(text: string): string {
  if (secrets.size === 0 || !text) return text
  let out = text
  // Longest first, so a secret that contains another one is replaced whole.
  const ordered = [...secrets.keys()].sort((a, b) => b.length - a.length)
  for (const value of ordered) {
    if (out.includes(value)) out = out.split(value).join(`[secret:${secrets.get(value)}]`)
  }
  return out
}

/** Redacts every string inside a JSON-able value (audit records, args). */
export function redactDeep<T>(value: T): T {
  return JSON.parse(redact(JSON.stringify(value))) as T
}

export function secretNames(): string[] {
  return [...new Set(secrets.values())]
}

/** Test hook: forget every registered secret. */
export function clearSecrets(): void {
  secrets.clear()
}
