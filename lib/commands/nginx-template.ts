import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'

/** Deploy's nginx directory on a host (setup-server gives it to the deploy user). */
export const NGINX_DIR = '/etc/nginx/conciliaextrato'

const TEMPLATES = resolve(import.meta.dirname, '..', '..', 'nginx')

/** Fills `{{name}}` placeholders of a template in nginx/; an unknown placeholder is a bug, not a blank. */
export function renderTemplate(name: string, values: Record<string, string | number>): string {
  return readFileSync(resolve(TEMPLATES, name), 'utf8').replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    if (!(key in values)) throw new Error(`nginx/${name}: no value for {{${key}}}`)
    return String(values[key])
  })
}
