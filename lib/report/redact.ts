// Every secret value is registered here once, and every byte we print, log or audit passes redact().
const secrets = new Map<string, string>()

/** Derived forms shorter than this are not registered: too likely to match ordinary text. */
const MIN_DERIVED = 8

/**
 * The base64 text of `value` wherever it sits inside a larger encoded value (Basic user:pass, a
 * token in a JSON blob): for each of the 3 byte offsets, the characters that only its bytes decide.
 */
function base64Cores(value: Buffer): string[] {
  const cores: string[] = []
  for (let k = 0; k < 3; k++) {
    const b64 = Buffer.concat([Buffer.alloc(k), value])
      .toString('base64')
      .replace(/=+$/, '')
    const start = Math.ceil((8 * k) / 6)
    const end = Math.floor((8 * (k + value.length)) / 6)
    const core = b64.slice(start, end)
    cores.push(core, core.replace(/\+/g, '-').replace(/\//g, '_'))
  }
  return cores
}

/**
 * encodeURIComponent, and also !'()* (RFC 3986's reserved sub-delimiters): how passwords go into the
 * connection URLs deploy writes (stack/files.ts), so no quote survives into an env file.
 */
export function uriComponent(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  )
}

/** Registers a secret value (and the encodings it may appear in) for redaction everywhere. */
export function registerSecret(name: string, value: string): void {
  if (!value) return
  const bytes = Buffer.from(value)
  const exact = [
    value,
    value.trim(),
    encodeURIComponent(value),
    uriComponent(value),
    bytes.toString('base64'),
  ]
  const derived = [
    JSON.stringify(value).slice(1, -1),
    new URLSearchParams({ v: value }).toString().slice(2),
    value.replace(/'/g, `'\\''`),
    bytes.toString('hex'),
    bytes.toString('hex').toUpperCase(),
    bytes.toString('base64url'),
    ...base64Cores(bytes),
    // A multi-line secret (a private key) may show one line at a time.
    ...value
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => !l.startsWith('-----')),
  ]
  for (const form of exact) if (form.length >= 3) secrets.set(form, name)
  for (const form of derived) if (form.length >= MIN_DERIVED && !secrets.has(form)) secrets.set(form, name)
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

/**
 * Redacts every string (and key) inside a JSON-able value (audit records, args, notifications), walking
 * the parsed value: redacting its JSON text instead could cut an escape in two (a secret ending in a
 * backslash) and lose the whole record.
 */
export function redactDeep<T>(value: T): T {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return redact(v)
    if (Array.isArray(v)) return v.map(walk)
    if (v && typeof v === 'object' && !(v instanceof Date))
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [redact(k), walk(x)]))
    return v
  }
  return walk(JSON.parse(JSON.stringify(value) ?? 'null')) as T
}

export function secretNames(): string[] {
  return [...new Set(secrets.values())]
}

/** Test hook: forget every registered secret. */
export function clearSecrets(): void {
  secrets.clear()
}
