import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as assert from 'uvu/assert'
import { DEFAULT_ERROR_RULES } from '../../lib/commands/watchdog.ts'
import { markRequests, sendMarks } from '../../lib/release/error-tracking.ts'
import { setSinks } from '../../lib/report/output.ts'
import { liveRelease, parseReleases } from '../../lib/stack/releases.ts'
import { appContainers } from '../../lib/watchdog/app-logs.ts'
import {
  appErrors,
  emptyErrorState,
  evaluateErrors,
  normalise,
  scrub,
  signatureOf,
} from '../../lib/watchdog/error-signatures.ts'
import type { Exec } from '../../lib/watchdog/exec.ts'
import { trackErrors } from '../../lib/watchdog/main.ts'
import { suite } from '../harness.ts'
import { startSentry } from '../sandbox/sentry.ts'

// Error tracking on the host: the app's error lines and panics, personal data scrubbed, grouped by
// signature; a new signature or a rate jump after a deploy alerts, naming the release.
const test = suite('error tracking: scrubbing, signatures, new errors and rate jumps')

const PANIC = `GET /health 200 0.3ms
thread 'conn' panicked at crates/common/src/service.rs:74:13:
reconciliation failed for /reconcile/123.456.789-09/ana.souza@example.com.br
note: run with \`RUST_BACKTRACE=1\` environment variable to display a backtrace
GET /health 200 0.2ms`

test('scrub: CPF, CNPJ, e-mail, account numbers and long digit runs never stay', () => {
  assert.is(
    scrub('cpf 123.456.789-09 and 12345678909, cnpj 12.345.678/0001-95 or 12345678000195, ana@x.com.br'),
    'cpf <cpf> and <cpf>, cnpj <cnpj> or <cnpj>, <email>',
  )
  assert.is(
    scrub('agência 0001-9 conta 123456-X, ref 98765432'),
    'agência <account> conta <account>, ref <number>',
  )
  assert.is(
    normalise(
      'timeout after 30.5 s on id 7f3a9c2e11 at 2026-12-07T10:31:07Z (req 550e8400-e29b-41d4-a716-446655440000)',
    ),
    'timeout after <n> s on id <hex> at <time> (req <uuid>)',
  )
})

test('panics (Rust 1.73+ and older) and error lines; access lines and the backtrace note are not errors', () => {
  const errors = appErrors('api', PANIC)
  assert.equal(errors, [
    {
      service: 'api',
      location: 'crates/common/src/service.rs',
      message: 'reconciliation failed for /reconcile/<cpf>/<email>',
      panic: true,
    },
  ])
  // the thread's id, as newer Rust prints it (seen in the sandbox's fixture build), and a backtrace
  assert.equal(
    appErrors(
      'api',
      "thread 'conn' (29598) panicked at crates/common/src/service.rs:71:13:\nreconciliation failed for /x/123.456.789-09\nstack backtrace:\n   0: std::panicking::begin_panic_handler\nnote: Some details are omitted, run with `RUST_BACKTRACE=full` for a verbose backtrace.",
    ),
    [
      {
        service: 'api',
        location: 'crates/common/src/service.rs',
        message: 'reconciliation failed for /x/<cpf>',
        panic: true,
      },
    ],
  )
  assert.equal(appErrors('saas', "thread 'main' panicked at 'index out of bounds: 3', src/main.rs:10:5"), [
    { service: 'saas', location: 'src/main.rs', message: 'index out of bounds: <n>', panic: true },
  ])
  assert.equal(
    appErrors('api', 'ERROR db: connection refused (os error 111) for user 12345678909\nGET / 200 1ms').map(
      (e) => e.message,
    ),
    ['ERROR db: connection refused (os error <n>) for user <cpf>'],
  )
  // the same error with other numbers, ids and people: one signature; another place: another
  const a = signatureOf(appErrors('api', PANIC)[0] as never)
  const b = signatureOf(
    appErrors(
      'api',
      PANIC.replace('123.456.789-09', '987.654.321-00').replace('ana.souza', 'joao'),
    )[0] as never,
  )
  const c = signatureOf(appErrors('api', PANIC.replace('service.rs', 'app.rs'))[0] as never)
  assert.is(a.id, b.id)
  assert.is.not(a.id, c.id)
  assert.is(
    a.text,
    'api: panic at crates/common/src/service.rs: reconciliation failed for /reconcile/<cpf>/<email>',
  )
})

const at = (min: number) => new Date(Date.parse('2026-12-07T10:00:00Z') + min * 60_000)

test('new signatures: the first run learns; later a new one alerts once, naming the release; a known one never', () => {
  const old = appErrors('api', 'ERROR cache miss storm')
  let { state, alerts } = evaluateErrors(emptyErrorState(), old, 'v1', at(0), 1, DEFAULT_ERROR_RULES)
  assert.equal(alerts, [], 'the first run only learns')
  ;({ state, alerts } = evaluateErrors(state, old, 'v1', at(1), 1, DEFAULT_ERROR_RULES))
  assert.equal(alerts, [])
  const panic = appErrors('api', PANIC)
  ;({ state, alerts } = evaluateErrors(state, [...panic, ...panic], 'v2', at(2), 1, DEFAULT_ERROR_RULES))
  assert.is(alerts.length, 1)
  assert.equal(alerts[0], {
    kind: 'new-signature',
    panic: true,
    title:
      'NEW ERROR in api since release v2: panic at crates/common/src/service.rs: reconciliation failed for /reconcile/<cpf>/<email>',
    details: [
      `2 time(s) in the last 1 min; signature ${signatureOf(panic[0] as never).id}`,
      'release: v2 (a new error after a deploy: make rollback ENV=<env> if it hurts users)',
    ],
  })
  assert.not.match(JSON.stringify({ state, alerts }), /123\.456|ana\.souza|example\.com/)
  ;({ state, alerts } = evaluateErrors(state, panic, 'v2', at(3), 1, DEFAULT_ERROR_RULES))
  assert.equal(alerts, [], 'known now')
  assert.is(Object.values(state.signatures).find((s) => s.panic)?.count, 3)
  assert.is(Object.values(state.signatures).find((s) => s.panic)?.release, 'v2')
})

test('rate jump: the live release past 3x its predecessor (with 10+ lines) alerts once', () => {
  const line = appErrors('api', 'ERROR upstream timeout')
  let { state } = evaluateErrors(emptyErrorState(), [], 'v1', at(0), 1, DEFAULT_ERROR_RULES)
  // v1: 12 minutes at one error line a minute after a first quiet one: the baseline (12 in 13 min)
  for (let m = 1; m <= 12; m++) ({ state } = evaluateErrors(state, line, 'v1', at(m), 1, DEFAULT_ERROR_RULES))
  const many = (n: number) => Array.from({ length: n }, () => line[0]) as typeof line
  // v2 at 2/min: no jump; then 12 in a minute: a jump, once
  let alerts = evaluateErrors(state, many(2), 'v2', at(13), 1, DEFAULT_ERROR_RULES).alerts
  assert.equal(alerts, [])
  ;({ state, alerts } = evaluateErrors(state, many(12), 'v2', at(14), 1, DEFAULT_ERROR_RULES))
  assert.equal(
    alerts.map((a) => [a.kind, a.title]),
    [['rate-jump', 'ERROR RATE JUMP since release v2: 12.0 error lines/min, v1 had 0.92/min']],
  )
  assert.equal(
    evaluateErrors(state, many(30), 'v2', at(15), 1, DEFAULT_ERROR_RULES).alerts,
    [],
    'once per release',
  )
})

test('the host side: running app containers of both colours, their logs since the last run, the live release', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ce-errors-'))
  const calls: string[] = []
  const exec: Exec = async (file, args) => {
    calls.push(`${file} ${args.join(' ')}`)
    if (args[0] === 'ps' && args.includes('label=com.docker.compose.project=ce-qa-blue'))
      return { code: 0, stdout: 'c1 api\nc2 site\n', stderr: '' }
    // a swarm node's tasks: the app's are read, the data's (postgres) are not
    if (args[0] === 'ps' && args.includes('label=com.docker.stack.namespace=ce-qa'))
      return { code: 0, stdout: 't1 ce-qa_saas\nt2 ce-qa_postgres\n', stderr: '' }
    if (args[0] === 'ps') return { code: 0, stdout: '', stderr: '' }
    if (args[0] === 'logs' && args.at(-1) === 'c1')
      return { code: 0, stdout: 'GET / 200 1ms\n', stderr: PANIC }
    if (args[0] === 'logs') return { code: 1, stdout: '', stderr: 'Error: journald is not answering' }
    return { code: 127, stdout: '', stderr: 'unexpected' }
  }
  const sent: string[] = []
  const cfg = {
    env: 'qa',
    host: 'web-1',
    stateDir: dir,
    watchdog: { intervalS: 60 },
    projects: { data: 'ce-qa-data', blue: 'ce-qa-blue', green: 'ce-qa-green' },
    errors: { releasesFile: join(dir, 'releases.jsonl'), rules: DEFAULT_ERROR_RULES },
    targets: [],
    urls: {},
  } as never
  writeFileSync(
    join(dir, 'releases.jsonl'),
    [
      '{"id":"v1","outcome":"live"}',
      '{"id":"v2","outcome":"live"}',
      '{"id":"v3","outcome":"failed"}',
      '',
    ].join('\n'),
  )
  assert.is(liveRelease(parseReleases(readFileSync(join(dir, 'releases.jsonl'), 'utf8')))?.id, 'v2')
  assert.equal(await appContainers(exec, cfg), [
    { id: 'c1', service: 'api' },
    { id: 'c2', service: 'site' },
    { id: 't1', service: 'saas' },
  ])
  setSinks(
    (t) => sent.push(t),
    (t) => sent.push(t),
  )
  try {
    await trackErrors(cfg, exec, at(0)) // learns
    calls.length = 0
    sent.length = 0
    writeFileSync(
      join(dir, 'errors.json'),
      JSON.stringify({ ...JSON.parse(readFileSync(join(dir, 'errors.json'), 'utf8')), signatures: {} }),
    )
    await trackErrors(cfg, exec, at(1))
  } finally {
    setSinks(
      (t) => process.stdout.write(t),
      (t) => process.stderr.write(t),
    )
  }
  assert.ok(calls.includes(`docker logs --since ${at(0).toISOString()} c1`), calls.join('\n'))
  const out = sent.join('')
  assert.match(out, 'error tracking: 1 error line(s) in 1.0 min, 1 alert(s)')
  assert.match(out, 'new-signature: NEW ERROR in api since release v2: panic at crates/common/src/service.rs')
  assert.match(out, 'could not read the logs of site (c2): Error: journald is not answering')
  assert.not.match(out, /ana\.souza|123\.456/)
  rmSync(dir, { recursive: true, force: true })
})

test('the release marks: the two requests, as strings; sent to the stand-in: created, then already there; a refused token not retried', async () => {
  const config = {
    api: 'https://sentry.io',
    org: 'conciliaextrato',
    projects: ['ce-api', 'ce-saas'],
    tokenSecret: 'SENTRY_AUTH_TOKEN',
  }
  const started = new Date('2026-12-07T10:00:00Z')
  const finished = new Date('2026-12-07T10:03:30Z')
  assert.equal(markRequests(config, 'production', 'v2+build.1', started, finished), [
    {
      method: 'POST',
      path: '/api/0/organizations/conciliaextrato/releases/',
      body: { version: 'v2+build.1', projects: ['ce-api', 'ce-saas'] },
    },
    {
      method: 'POST',
      path: '/api/0/organizations/conciliaextrato/releases/v2%2Bbuild.1/deploys/',
      body: {
        environment: 'production',
        name: 'v2+build.1 to production',
        dateStarted: '2026-12-07T10:00:00.000Z',
        dateFinished: '2026-12-07T10:03:30.000Z',
      },
    },
  ])
  const sentry = await startSentry()
  try {
    const at = { ...config, api: sentry.url }
    const requests = markRequests(at, 'qa', 'v1', started, finished)
    assert.equal(await sendMarks(at, sentry.token, requests, { retryDelayMs: 1 }), [201, 201])
    assert.equal(await sendMarks(at, sentry.token, requests, { retryDelayMs: 1 }), [208, 201])
    const v1 = sentry.releases.get('v1')
    assert.equal(v1?.projects, ['ce-api', 'ce-saas'])
    assert.equal(
      v1?.deploys.map((d) => [d.environment, d.name]),
      [
        ['qa', 'v1 to qa'],
        ['qa', 'v1 to qa'],
      ],
    )
    sentry.requests.length = 0
    await sendMarks(at, 'sntrys_wrong', requests, { retryDelayMs: 1 }).then(
      () => assert.unreachable('a refused token'),
      (err: Error) => {
        assert.match(err.message, 'HTTP 401: the token was refused (it needs project:releases)')
        assert.not.match(err.message, 'sntrys_wrong')
      },
    )
    assert.is(sentry.requests.length, 1, 'a 401 is not retried')
  } finally {
    await sentry.close()
  }
})

test.run()
