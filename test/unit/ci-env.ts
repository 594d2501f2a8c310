import { parse as parseYaml, stringify as stringifyYaml } from 'yaml'

/** A minimal valid env file named `ci` (needs no host to be reachable): for runbooks run in unit tests. */
export function ciEnvYaml(secrets: string[], extra = ''): string {
  return `name: ci
kind: local
branch: staging
hosts:
  - name: qa-1
    address: 203.0.113.20
    host_key: SHA256:JLMaqh8HJyBKDSUOY+IsmHSIiD8khfb1+x5vqEYo7eA
ssh: { user: deploy, key: { file: /dev/null } }
domains: { site: qa.example.com, saas: app.qa.example.com, api: api.qa.example.com }
images: { site: o/site, saas: o/saas, api: o/api, postgres: postgres:15, redis: redis:7 }
secrets: [${secrets.join(', ')}]
setup:
  deploy_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMkoayiSR6OjDO0KqyFDNGgH9jJGJnz3f1jko/vri05n ana@laptop']
  firewall: { http_from: anywhere }
${extra}
`
}

/**
 * A staging or production env file must serve the public (lib/env/load.ts): this adds what such
 * an env needs (an edge at Cloudflare, deploy and alert targets, health.edge) to a fixture that
 * has none, keeping whatever it already says.
 */
export function asPublic(text: string): string {
  const doc = parseYaml(text) as Record<string, unknown>
  const domains = doc.domains as Record<string, string>
  const zone = (domains.site ?? 'example.com').split('.').slice(-2).join('.')
  const secrets = (doc.secrets as string[] | undefined) ?? []
  doc.edge = { zone, origin_pulls: 'on', advanced_certificate: true, ...(doc.edge as object) }
  doc.notify ??= [{ name: 'team', type: 'json', url_secret: 'TEAM_WEBHOOK_URL', events: ['deploy', 'alert'] }]
  doc.health = { ...(doc.health as object), edge: true }
  doc.secrets = [...new Set([...secrets, 'CLOUDFLARE_API_TOKEN', 'TEAM_WEBHOOK_URL'])]
  return stringifyYaml(doc)
}

/** The same sections as text, for fixtures that must keep their comments (the secrets are theirs to list). */
export const PUBLIC_YAML = `edge: { zone: example.com, origin_pulls: 'on' }
notify: [{ name: team, type: json, url_secret: TEAM_WEBHOOK_URL, events: [deploy, alert] }]
health: { edge: true }`
