import { S3_PRUNE_SECRETS, S3_SECRETS } from './backup.ts'
import type { Env } from './load.ts'
import { statusPageSecrets } from './status-page.ts'

/**
 * What a runbook uses, in words the env file turns into secret names: a runbook loads only the
 * secrets its needs name (the 5-minute health job carries no backup key and no cloud token).
 * - ssh: the key it logs in with (ssh.key.secret)
 * - checker-ssh: the checker account's key (ssh.checker.key.secret): the read-only runbooks log in
 *   with it instead of the deploy key; setup-server authorizes its public half
 * - admin-ssh: the administrator's key (ssh.admin.key.secret): setup-server logs in with it on a
 *   set-up host and authorizes its public half on a new one
 * - promote: the checker key of the env it promotes from (promote_from.checker_key.secret)
 * - outside-view: the checker key of the env that watches this one (outside_view.checker_key.secret)
 * - deploy-keys: private keys whose public halves may log in (setup.deploy_keys of_secret)
 * - app: the passwords it writes into the stack's env files (POSTGRES_PASSWORD, REDIS_PASSWORD)
 * - registry: the pull token (images.registry.password_secret; only with delivery: registry)
 * - store: the backup store's credentials (S3: the Spaces key pair; a local store needs none)
 * - status-page: the status page's store's credentials (S3: the same Spaces key pair)
 * - error-tracking: the Sentry-compatible service's auth token (error_tracking.token_secret)
 * - backup-key: BACKUP_KEY (and BACKUP_KEY_PREVIOUS when the env lists it), to encrypt or decrypt
 * - edge: the Cloudflare token (edge.token_secret); droplet: the DigitalOcean token
 * - heartbeat-ping: the dead man's switch's ping URL (heartbeat.ping_url_secret: the watchdog pings it)
 * - heartbeat-api: its management API key (heartbeat.api_key_secret: make heartbeats)
 * - notify:<event>: the webhook URLs of the notify targets that take that event
 * - secret:<NAME>: one secret by name (a runbook of a team's own that needs a token of its own)
 */
export type Need =
  | 'ssh'
  | 'checker-ssh'
  | 'admin-ssh'
  | 'promote'
  | 'outside-view'
  | 'deploy-keys'
  | 'app'
  | 'registry'
  | 'store'
  | 'status-page'
  | 'error-tracking'
  | 'store-prune'
  | 'backup-key'
  | 'edge'
  | 'droplet'
  | 'heartbeat-ping'
  | 'heartbeat-api'
  | `notify:${string}`
  | `secret:${string}`

/** The data passwords deploy writes into the stack's env files (lib/stack/files.ts). */
export const APP_SECRETS = ['POSTGRES_PASSWORD', 'REDIS_PASSWORD'] as const

/** How a read-only runbook logs in: as the checker when the env has one (lib/run/connect.ts). */
export function readOnlyLogin(env: Env): Need {
  return env.ssh.checker ? 'checker-ssh' : 'ssh'
}

/** The secret names that `needs` come to for this env (sorted, no duplicates). */
export function secretsFor(env: Env, needs: readonly Need[]): string[] {
  const names = new Set<string>()
  for (const need of needs) for (const name of namesOf(env, need)) names.add(name)
  return [...names].sort()
}

function namesOf(env: Env, need: Need): string[] {
  switch (need) {
    case 'ssh':
      return env.ssh.key.secret ? [env.ssh.key.secret] : []
    case 'checker-ssh':
      return env.ssh.checker?.key.secret ? [env.ssh.checker.key.secret] : []
    case 'admin-ssh':
      return env.ssh.admin?.key.secret ? [env.ssh.admin.key.secret] : []
    case 'promote':
      return env.promoteFrom?.checkerKey.secret ? [env.promoteFrom.checkerKey.secret] : []
    case 'outside-view':
      return env.outsideView?.checkerKey.secret ? [env.outsideView.checkerKey.secret] : []
    case 'deploy-keys':
      return env.setup.deployKeySecrets
    case 'app':
      return [...APP_SECRETS]
    case 'registry': {
      const reg = env.images.registry
      return env.images.delivery === 'registry' && reg?.passwordSecret ? [reg.passwordSecret] : []
    }
    case 'store':
      return env.backup?.store.type === 's3' ? [...S3_SECRETS] : []
    case 'error-tracking':
      return env.errorTracking ? [env.errorTracking.tokenSecret] : []
    case 'status-page':
      return statusPageSecrets(env.statusPage)
    case 'store-prune':
      return env.backup?.store.type === 's3' && env.backup.pruneKey ? [...S3_PRUNE_SECRETS] : []
    case 'backup-key':
      if (!env.backup) return []
      return ['BACKUP_KEY', ...(env.secrets.includes('BACKUP_KEY_PREVIOUS') ? ['BACKUP_KEY_PREVIOUS'] : [])]
    case 'edge':
      return env.edge ? [env.edge.tokenSecret] : []
    case 'droplet':
      return env.droplet ? [env.droplet.tokenSecret] : []
    case 'heartbeat-ping':
      return env.heartbeat ? [env.heartbeat.pingUrlSecret] : []
    case 'heartbeat-api':
      return env.heartbeat ? [env.heartbeat.apiKeySecret] : []
    default: {
      if (need.startsWith('secret:')) return [need.slice('secret:'.length)]
      const event = need.slice('notify:'.length)
      return env.notify.filter((t) => t.events.includes(event)).map((t) => t.secret)
    }
  }
}
