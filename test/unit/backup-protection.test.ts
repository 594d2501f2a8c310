import { PutObjectLockConfigurationCommand, S3Client } from '@aws-sdk/client-s3'
import * as assert from 'uvu/assert'
import { enableVersioningCommand, protectionVerdict } from '../../lib/backup/protection.ts'
import { openStore } from '../../lib/store/storage.ts'
import { suite } from '../harness.ts'
import {
  enableVersioning,
  S3RVER_ACCESS_KEY_ID,
  S3RVER_SECRET_ACCESS_KEY,
  S3RVER_SECRETS,
  type S3Server,
  startS3Server,
} from '../sandbox/s3.ts'

const bucket = { endpoint: 'https://sfo3.digitaloceanspaces.com', bucket: 'ce-backups-production' }

const verdict = suite('backup store protection: the verdict')

verdict('versioning or object lock protects; the listing says which', () => {
  const v = protectionVerdict({ versioning: 'enabled', objectLock: 'off' }, bucket)
  assert.ok(v.ok)
  assert.match(v.summary, /^protected: versioning on/)
  assert.is(v.next, undefined)
  const l = protectionVerdict(
    { versioning: 'unreadable', objectLock: 'enabled', retention: 'COMPLIANCE 30 days', why: 'AccessDenied' },
    bucket,
  )
  assert.ok(l.ok)
  assert.match(l.summary, 'object lock on (COMPLIANCE 30 days)')
})

verdict("neither (or versioning suspended) fails with the owner's command", () => {
  for (const versioning of ['off', 'suspended'] as const) {
    const v = protectionVerdict({ versioning, objectLock: 'off' }, bucket)
    assert.not.ok(v.ok)
    assert.match(v.summary, /^NOT protected: /)
    assert.match(v.summary, versioning === 'off' ? 'neither versioning nor object lock' : 'suspended')
    assert.match(v.next ?? '', enableVersioningCommand(bucket))
  }
  assert.is(
    enableVersioningCommand(bucket),
    'aws s3api put-bucket-versioning --endpoint-url https://sfo3.digitaloceanspaces.com --bucket ce-backups-production --versioning-configuration Status=Enabled',
  )
})

verdict('settings this key may not read are said, with where to look, and do not fail', () => {
  const v = protectionVerdict(
    { versioning: 'unreadable', objectLock: 'unreadable', why: 'AccessDenied' },
    bucket,
  )
  assert.ok(v.ok)
  assert.match(v.summary, /^unknown: .*\(AccessDenied\)/)
  assert.match(v.next ?? '', 'ce-backups-production')
})

verdict('a local directory has no bucket settings', () => {
  const v = protectionVerdict(undefined, undefined)
  assert.ok(v.ok)
  assert.match(v.summary, 'a directory on this machine')
})

const s3 = suite('backup store protection: read from an S3 server', { timeoutS: 60 })
let server: S3Server
s3.before(async () => {
  server = await startS3Server({ buckets: ['off', 'versioned', 'locked'] })
})
s3.after(async () => {
  await server?.close()
})

const storeOf = (b: string, secrets = S3RVER_SECRETS) =>
  openStore({ type: 's3', endpoint: server.endpoint, region: 'us-east-1', bucket: b, prefix: 'p' }, secrets, {
    maxAttempts: 1,
  })

s3('a new bucket: versioning off, no object lock configuration', async () => {
  assert.equal(await storeOf('off').protection?.(), { versioning: 'off', objectLock: 'off' })
})

s3('versioning turned on by the owner is read back', async () => {
  await enableVersioning(server, 'versioned')
  assert.equal(await storeOf('versioned').protection?.(), { versioning: 'enabled', objectLock: 'off' })
})

s3('object lock with a default retention is read back', async () => {
  const client = new S3Client({
    endpoint: server.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: S3RVER_ACCESS_KEY_ID, secretAccessKey: S3RVER_SECRET_ACCESS_KEY },
  })
  await client.send(
    new PutObjectLockConfigurationCommand({
      Bucket: 'locked',
      ObjectLockConfiguration: {
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 30 } },
      },
    }),
  )
  client.destroy()
  assert.equal(await storeOf('locked').protection?.(), {
    versioning: 'off',
    objectLock: 'enabled',
    retention: 'COMPLIANCE 30 days',
  })
})

s3('a key that is refused reads as unreadable, naming the code; the secret is never shown', async () => {
  const p = await storeOf('off', {
    ...S3RVER_SECRETS,
    SPACES_SECRET_ACCESS_KEY: 'wrong-secret-1234',
  }).protection?.()
  assert.equal(p, { versioning: 'unreadable', objectLock: 'unreadable', why: 'SignatureDoesNotMatch' })
  assert.not.match(JSON.stringify(p), 'wrong-secret-1234')
})

s3('a local store has no protection() to read', async () => {
  const local = openStore({ type: 'local', dir: '/tmp/ce-protection-unused' })
  assert.is(local.protection, undefined)
})

verdict.run()
s3.run()
