/** A minimal valid env file named `ci` (needs no host to be reachable): for runbooks run in unit tests. */
export function ciEnvYaml(secrets: string[], extra = ''): string {
  return `name: ci
kind: staging
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
