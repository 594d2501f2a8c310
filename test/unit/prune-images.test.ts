import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { imageListing, imagesToPrune, releasesToKeep, removeImages } from '../../lib/deploy/prune-images.ts'
import { loadEnv } from '../../lib/env/load.ts'
import type { ReleaseRecord } from '../../lib/stack/releases.ts'
import { suite } from '../harness.ts'
import { withFakeDocker } from '../support/fake-docker.ts'
import { ciEnvYaml } from './ci-env.ts'

// Which app images a deploy removes from the host afterwards, and the commands that do it.
const test = suite('prune old images after a deploy')
const dir = mkdtempSync(join(tmpdir(), 'ce-prune-'))
writeFileSync(join(dir, 'ci.yaml'), ciEnvYaml(['POSTGRES_PASSWORD']))
const env = loadEnv('ci', dir)
const repo = (s: 'site' | 'saas' | 'api') => env.images[s]

const rec = (
  id: string,
  outcome: ReleaseRecord['outcome'],
  images?: Record<string, string>,
): ReleaseRecord => ({
  id,
  colour: 'blue',
  images: images ?? {
    site: `${repo('site')}:${id}`,
    saas: `${repo('saas')}:${id}`,
    api: `${repo('api')}:${id}`,
  },
  digests: {},
  who: 't',
  at: '',
  duration_s: 1,
  outcome,
  action: 'deploy',
  previous: null,
})

test('the kept releases: the current one, the newest live ones up to keep, and the rollback target', () => {
  const history = ['r1', 'r2', 'r3', 'r4'].map((id) => rec(id, 'live'))
  history.splice(3, 0, rec('bad', 'failed'))
  assert.equal(releasesToKeep(history, 'r5', 'r4', 3), ['r5', 'r4', 'r3'])
  // The same release live twice (a rollback to it) counts once; failed ones never count.
  assert.equal(releasesToKeep([...history, rec('r3', 'live')], 'r6', 'r3', 3), ['r6', 'r3', 'r4'])
  // A rollback target older than the window is still kept.
  assert.equal(releasesToKeep(history, 'r5', 'r1', 2), ['r5', 'r4', 'r1'])
  assert.equal(releasesToKeep([], 'r1', null, 5), ['r1'])
})

test('only the app repositories, and no tag of a kept release; Postgres and Redis are never touched', () => {
  const history = [rec('r1', 'live'), rec('bad', 'failed'), rec('r2', 'live')]
  const listing = [
    `${repo('site')}:r1`,
    `${repo('saas')}:r1`,
    `${repo('api')}:r1`,
    `${repo('site')}:r2`,
    `${repo('api')}:r2`,
    `${repo('site')}:bad`,
    `${repo('api')}:bad`,
    `${repo('api')}:r0`,
    `${env.images.postgres}:r0`,
    `${env.images.redis}:old`,
    'busybox:latest',
    '',
  ].join('\n')
  assert.equal(imagesToPrune(listing, env, history, ['r3', 'r2']), [
    `${repo('api')}:bad`,
    `${repo('api')}:r0`,
    `${repo('api')}:r1`,
    `${repo('saas')}:r1`,
    `${repo('site')}:bad`,
    `${repo('site')}:r1`,
  ])
  // A kept release whose record names other refs (a registry image) keeps those too.
  const moved = [
    rec('r7', 'live', {
      site: 'registry.local/site:r7',
      saas: `${repo('saas')}:r7`,
      api: `${repo('api')}:r7`,
    }),
  ]
  assert.equal(imagesToPrune(`${repo('site')}:r7\n${repo('saas')}:r7`, env, moved, ['r7']), [])
  assert.equal(imagesToPrune('', env, history, ['r2']), [])
})

test('the commands: a tag listing without <none>, and a removal that reports what Docker keeps', () => {
  assert.is(imageListing, `docker image ls --format '{{.Repository}}:{{.Tag}}' | grep -v ':<none>$' || true`)
  const rm = removeImages(['ghcr.io/x/site:r1', "odd'tag"])
  assert.is(
    rm,
    `for r in ghcr.io/x/site:r1 'odd'\\''tag'; do if docker image rm -- "$r" >/dev/null 2>&1; then echo "removed $r"; else echo "kept $r (in use)"; fi; done`,
  )
  // Run with a docker stand-in that refuses the second image, as Docker does for one a container uses.
  const run = withFakeDocker('#!/bin/sh\n[ "$4" = "ghcr.io/x/site:r1" ]\n')
  assert.equal(run(rm), { code: 0, out: "removed ghcr.io/x/site:r1\nkept odd'tag (in use)\n" })
})

test('images.keep_releases: 5 by default, at least 2 (the live release and its rollback target)', () => {
  assert.is(env.images.keepReleases, 5)
  const one = ciEnvYaml(['POSTGRES_PASSWORD'])
    .replace('name: ci', 'name: k1')
    .replace('images: { ', 'images: { keep_releases: 1, ')
  assert.match(one, 'keep_releases: 1')
  writeFileSync(join(dir, 'k1.yaml'), one)
  assert.throws(
    () => loadEnv('k1', dir),
    /images\.keep_releases: expected an integer from 2 to 100, got number 1/,
  )
})

test.run()
