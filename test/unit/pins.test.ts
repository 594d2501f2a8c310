import * as assert from 'uvu/assert'
import { parsePinnedProbe, pinnedProbe, pullPinned } from '../../lib/commands/registry.ts'
import { parseDigestsArg, pinnedRefs, pinsOfRecord } from '../../lib/deploy/pins.ts'
import { imageRefs } from '../../lib/deploy/state.ts'
import { loadEnv } from '../../lib/env/load.ts'
import { InputError } from '../../lib/report/errors.ts'
import type { ReleaseRecord } from '../../lib/stack/releases.ts'
import { suite } from '../harness.ts'

// Images pinned by digest: DIGESTS= for a deploy, the record's repo digests for a rollback.
const test = suite('images pinned by digest: DIGESTS, recorded digests, the host commands')
const staging = loadEnv('staging')
const sshDelivery = { ...staging, images: { ...staging.images, delivery: 'ssh' as const } }
const d = (c: string) => `sha256:${c.repeat(64)}`
const GOOD = `site=${d('a')},saas=${d('b')},api=${d('c')}`

function problems(f: () => unknown): string {
  try {
    f()
  } catch (err) {
    assert.instance(err, InputError)
    return (err as InputError).message
  }
  assert.unreachable('no error')
  return ''
}

test('DIGESTS: all three services, sha256 and 64 hex each; absent or empty is no pin', () => {
  assert.equal(parseDigestsArg(GOOD, staging), { site: d('a'), saas: d('b'), api: d('c') })
  assert.equal(parseDigestsArg(` api=${d('c')} , site=${d('a')},saas=${d('b')}`, staging)?.api, d('c'))
  assert.is(parseDigestsArg(undefined, staging), undefined)
  assert.is(parseDigestsArg('', staging), undefined)
  const missing = problems(() => parseDigestsArg(`site=${d('a')},saas=${d('b')}`, staging))
  assert.match(missing, 'DIGESTS: api is missing')
  assert.match(
    problems(() => parseDigestsArg(GOOD.replace(d('b'), 'sha256:abc'), staging)),
    'saas\'s "sha256:abc" is not sha256: and 64 hex',
  )
  assert.match(
    problems(() => parseDigestsArg(`${GOOD},site=${d('e')}`, staging)),
    'DIGESTS: site is given twice',
  )
  assert.match(
    problems(() => parseDigestsArg(`${GOOD},web=${d('e')}`, staging)),
    '"web=sha256:',
  )
  assert.match(
    problems(() => parseDigestsArg(GOOD.replace('site=', 'site:'), staging)),
    'is not <service>=sha256',
  )
  // ssh delivery has no registry digest to pin.
  assert.match(
    problems(() => parseDigestsArg(GOOD, sshDelivery)),
    'images.delivery: ssh',
  )
})

test("a rollback pins the record's repo digests, only when every service has one", () => {
  const record = {
    id: 'v1',
    repo_digests: {
      site: `ghcr.io/conciliaextrato/site@${d('a')}`,
      saas: `ghcr.io/conciliaextrato/saas@${d('b')}`,
      api: `ghcr.io/conciliaextrato/api@${d('c')}`,
    },
  } as unknown as ReleaseRecord
  assert.equal(pinsOfRecord(record), { site: d('a'), saas: d('b'), api: d('c') })
  const partial = { ...record, repo_digests: { site: record.repo_digests?.site } } as unknown as ReleaseRecord
  assert.is(pinsOfRecord(partial), undefined)
  assert.is(pinsOfRecord({ id: 'v1' } as unknown as ReleaseRecord), undefined)
})

test('the refs: repo:<release> is pulled as repo@sha256 (a registry with a port keeps it)', () => {
  const pins = { site: d('a'), saas: d('b'), api: d('c') }
  const map = pinnedRefs(imageRefs(staging, 'abc123'), pins)
  assert.is(map.get('ghcr.io/conciliaextrato/site:abc123'), `ghcr.io/conciliaextrato/site@${d('a')}`)
  const withPort = pinnedRefs({ site: '10.0.0.5:5000/ce/site:v2', saas: 'x/saas:v2', api: 'x/api:v2' }, pins)
  assert.is(withPort.get('10.0.0.5:5000/ce/site:v2'), `10.0.0.5:5000/ce/site@${d('a')}`)
})

test('the host commands: probe by RepoDigests, pull by digest then tag as the release', () => {
  const pair: [string, string] = ['r/site:v2', `r/site@${d('a')}`]
  assert.is(
    pinnedProbe([pair]),
    `if docker image inspect -f '{{join .RepoDigests " "}}' r/site:v2 2>/dev/null | tr ' ' '\\n' | grep -qxF r/site@${d('a')}; then echo 'r/site:v2 pinned'; else echo 'r/site:v2 unpinned'; fi`,
  )
  assert.equal(parsePinnedProbe('r/site:v2 pinned\nr/api:v2 unpinned\n'), ['r/api:v2'])
  const pull = pullPinned([pair], { server: 'r', username: 'u', passwordSecret: 'P', insecure: false })
  assert.match(
    pull,
    `docker --config "$cfg" pull -q r/site@${d('a')} >/dev/null && docker tag r/site@${d('a')} r/site:v2`,
  )
  assert.match(pull, '--password-stdin')
  assert.not.match(pull, /P\b.*pull/)
})

test.run()
