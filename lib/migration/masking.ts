// The masking rules (one file: the team reviews them here): which text columns of a copy of production
// hold personal data, and what they become. Applied only to make rehearse-migration's scratch copy,
// never to live data. Each value becomes a stable stand-in derived from its MD5, so equal values stay
// equal (joins, unique keys) and the original cannot be read back; NULLs stay NULL. Pure, unit tested.

export interface MaskRule {
  what: string
  /** Column names (lower case) this rule takes. */
  column: RegExp
  /** The SQL expression that replaces the value `v` (a quoted column reference). */
  expr: (v: string) => string
}

/** Digits only, the original's length (up to 32): a CPF stays 11 digits, a CNPJ 14. */
const digits = (v: string) =>
  `left(translate(md5(${v}::text) || md5(${v}::text || 'x'), 'abcdef', '123456'), greatest(length(regexp_replace(${v}::text, '\\D', '', 'g')), 4))`

export const MASK_RULES: readonly MaskRule[] = [
  {
    what: 'CPF/CNPJ and tax ids',
    column: /(^|_)(cpf|cnpj|cpf_cnpj|tax_id|document|documento|doc)($|_)/,
    expr: digits,
  },
  {
    what: 'bank account, agency, card and PIX keys',
    column: /(^|_)(account_number|conta|agencia|agency|branch|iban|card|card_number|pix|pix_key)($|_)/,
    expr: digits,
  },
  {
    what: 'e-mail addresses',
    column: /(^|_)(email|e_mail)($|_)/,
    expr: (v) => `'user-' || left(md5(${v}::text), 12) || '@example.invalid'`,
  },
  { what: 'phone numbers', column: /(^|_)(phone|telefone|celular|mobile)($|_)/, expr: digits },
  {
    what: 'names of people and holders',
    column:
      /(^|_)(name|nome|full_name|holder|holder_name|first_name|last_name|razao_social|payer|payee)($|_)/,
    expr: (v) => `'masked-' || left(md5(${v}::text), 12)`,
  },
  {
    what: 'addresses',
    column: /(^|_)(address|endereco|street|logradouro|cep|zip|postal_code)($|_)/,
    expr: (v) => `'addr-' || left(md5(${v}::text), 10)`,
  },
  {
    what: 'free text that may quote a customer',
    column: /(^|_)(description|memo|descricao|historico|notes|comment)($|_)/,
    expr: (v) => `'text-' || left(md5(${v}::text), 10)`,
  },
]

export interface TextColumn {
  table: string
  column: string
}

export interface MaskedColumn extends TextColumn {
  rule: string
}

/** A quoted SQL identifier. */
export const ident = (s: string) => `"${s.replaceAll('"', '""')}"`

/** The columns a rule takes (the first rule that matches), in table and column order. */
export function columnsToMask(columns: readonly TextColumn[]): MaskedColumn[] {
  return columns.flatMap((c) => {
    const rule = MASK_RULES.find((r) => r.column.test(c.column.toLowerCase()))
    return rule ? [{ ...c, rule: rule.what }] : []
  })
}

/** One UPDATE per table, every masked column of it at once. */
export function maskingSql(masked: readonly MaskedColumn[]): string {
  const byTable = new Map<string, MaskedColumn[]>()
  for (const m of masked) byTable.set(m.table, [...(byTable.get(m.table) ?? []), m])
  return [...byTable]
    .map(([table, cols]) => {
      const sets = cols.map((c) => {
        const rule = MASK_RULES.find((r) => r.what === c.rule) as MaskRule
        return `${ident(c.column)} = ${rule.expr(ident(c.column))}`
      })
      return `UPDATE public.${ident(table)} SET ${sets.join(', ')};`
    })
    .join('\n')
}

/** `table<TAB>column` lines of COLUMNS_SQL. */
export function parseColumns(out: string): TextColumn[] {
  return out
    .split('\n')
    .filter((l) => l.includes('\t'))
    .map((l) => {
      const [table = '', column = ''] = l.split('\t')
      return { table, column }
    })
}
