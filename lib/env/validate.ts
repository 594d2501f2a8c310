// A tiny collecting validator: every problem is recorded (file, field path, expected form), none thrown,
// so the user sees ALL of them at once.
type Obj = Record<string, unknown>

export class Validator {
  readonly problems: string[] = []

  constructor(readonly file: string) {}

  problem(path: string, message: string): void {
    this.problems.push(`${this.file}: ${path || '(top level)'}: ${message}`)
  }

  object(value: unknown, path: string, allowed?: string[]): Obj | undefined {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      this.problem(path, `expected a mapping (key: value), got ${describe(value)}`)
      return undefined
    }
    const obj = value as Obj
    if (allowed) {
      for (const key of Object.keys(obj)) {
        if (!allowed.includes(key))
          this.problem(join(path, key), `unknown field; expected one of: ${allowed.join(', ')}`)
      }
    }
    return obj
  }

  string(obj: Obj | undefined, key: string, path: string, rule: StringRule = {}): string | undefined {
    const value = obj?.[key]
    const at = join(path, key)
    if (value === undefined || value === null) {
      if (rule.default !== undefined) return rule.default
      if (!rule.optional) this.problem(at, `missing; expected ${rule.form ?? 'a string'}`)
      return undefined
    }
    if (typeof value !== 'string' || value === '') {
      this.problem(at, `expected ${rule.form ?? 'a non-empty string'}, got ${describe(value)}`)
      return undefined
    }
    if (rule.pattern && !rule.pattern.test(value)) {
      this.problem(
        at,
        `expected ${rule.form ?? `a string matching ${rule.pattern}`}, got ${JSON.stringify(value)}`,
      )
      return undefined
    }
    if (rule.oneOf && !rule.oneOf.includes(value)) {
      this.problem(at, `expected one of ${rule.oneOf.join(', ')}, got ${JSON.stringify(value)}`)
      return undefined
    }
    return value
  }

  integer(obj: Obj | undefined, key: string, path: string, rule: NumberRule): number | undefined {
    const value = obj?.[key]
    const at = join(path, key)
    if (value === undefined || value === null) {
      if (rule.default !== undefined) return rule.default
      this.problem(at, `missing; expected an integer from ${rule.min} to ${rule.max}`)
      return undefined
    }
    if (typeof value !== 'number' || !Number.isInteger(value) || value < rule.min || value > rule.max) {
      this.problem(at, `expected an integer from ${rule.min} to ${rule.max}, got ${describe(value)}`)
      return undefined
    }
    return value
  }

  boolean(obj: Obj | undefined, key: string, path: string, fallback: boolean): boolean {
    const value = obj?.[key]
    if (value === undefined || value === null) return fallback
    if (typeof value !== 'boolean') {
      this.problem(join(path, key), `expected true or false, got ${describe(value)}`)
      return fallback
    }
    return value
  }

  list(
    obj: Obj | undefined,
    key: string,
    path: string,
    rule: { min?: number; optional?: boolean } = {},
  ): unknown[] {
    const value = obj?.[key]
    const at = join(path, key)
    if (value === undefined || value === null) {
      if (!rule.optional) this.problem(at, 'missing; expected a list')
      return []
    }
    if (!Array.isArray(value)) {
      this.problem(at, `expected a list, got ${describe(value)}`)
      return []
    }
    if (rule.min && value.length < rule.min)
      this.problem(at, `expected at least ${rule.min} item(s), got ${value.length}`)
    return value
  }

  stringList(
    obj: Obj | undefined,
    key: string,
    path: string,
    rule: StringRule & { min?: number } = {},
  ): string[] {
    const items = this.list(obj, key, path, { min: rule.min, optional: rule.optional })
    const out: string[] = []
    items.forEach((item, i) => {
      const value = this.string({ [i]: item }, String(i), join(path, key), rule)
      if (value !== undefined) out.push(value)
    })
    return out
  }
}

export interface StringRule {
  optional?: boolean
  default?: string
  pattern?: RegExp
  oneOf?: string[]
  /** The expected form, in words, for the error message. */
  form?: string
}

export interface NumberRule {
  min: number
  max: number
  default?: number
}

function join(path: string, key: string): string {
  if (/^\d+$/.test(key)) return `${path}[${key}]`
  return path ? `${path}.${key}` : key
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'nothing'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  return `${typeof value} ${JSON.stringify(value)}`
}
