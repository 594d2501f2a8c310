/**
 * release-images — has this release already been built (by the merge queue), and what are its digests?
 * Asked on the env's first host, with its own network and registry login, as the deploy would pull.
 *
 * When: CI, after a push to staging: the merge queue built and gated exactly this commit, so the push
 * pipeline deploys those images (by digest) and builds nothing; `found=false` builds them now.
 * Changes: nothing but the host's image cache (the images are pulled: the deploy that follows finds
 * them there). A tag the registry does not hold is an answer (found=false, exit 0); a registry that
 * does not answer, or refuses the login, is not (exit 1: nothing is built over an outage).
 * In a workflow its answer is the step's outputs: found (true/false) and digests (DIGESTS= form).
 * On-call page: docs/runbooks/deploy.md#release-images
 */
import { appendFileSync } from 'node:fs'
import { parseReleaseImages, registryStdin, releaseImagesProbe } from '../lib/commands/registry.ts'
import { imageRefs } from '../lib/deploy/state.ts'
import { SERVICES } from '../lib/env/load.ts'
import { RELEASE } from '../lib/release/target.ts'
import { EXIT, InputError, RunbookError } from '../lib/report/errors.ts'
import { print } from '../lib/report/output.ts'
import { stringArg } from '../lib/run/cli.ts'
import { isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'

export const releaseImages: RunbookSpec = {
  name: 'release-images',
  mutates: false,
  options: [
    {
      name: 'release',
      makeVar: 'RELEASE',
      value: true,
      help: 'the release (the app git SHA: the image tag)',
    },
  ],
  validate(args) {
    const release = stringArg(args, 'release')
    if (!release || !RELEASE.test(release))
      throw new InputError('RELEASE=<sha> is required: the image tag to look up (letters, digits, . _ -)')
  },
  needs: () => ['ssh', 'registry'],
  steps: [
    {
      title: "Ask the registry for the release's images",
      next: 'Check that the registry is reachable from the host and that the registry token (the env file names it) can read the images; then run again. Nothing was built or deployed.',
      async run(ctx) {
        const release = stringArg(ctx.args, 'release') ?? ''
        ctx.release = release
        if (ctx.env.images.delivery !== 'registry')
          throw new InputError(
            `${ctx.env.file}: images.delivery is ssh, so no registry holds built releases`,
            [],
            'Use images.delivery: registry for an env CI deploys to.',
          )
        const host = ctx.hosts[0]
        if (!host) throw new InputError('the env has no host')
        const refs = imageRefs(ctx.env, release)
        const reg = ctx.env.images.registry
        const out = await host.exec(releaseImagesProbe(Object.values(refs), reg), {
          timeoutS: 900,
          echo: false,
          ...registryStdin(reg, ctx.secrets),
        })
        if (ctx.dryRun) return 'ok'
        const answers = parseReleaseImages(out.stdout, Object.values(refs))
        const unreachable = SERVICES.flatMap((s) => {
          const a = answers.get(refs[s])
          return a?.state === 'unreachable' ? [`${refs[s]}: ${a.error}`] : []
        })
        if (unreachable.length)
          throw new RunbookError(
            `${host.name} could not ask ${reg?.server ?? 'the registry'}: ${unreachable.join('; ')}`,
            EXIT.stepFailed,
          )
        const digests = SERVICES.map((s) => {
          const a = answers.get(refs[s])
          print(
            `      ${s}: ${a?.state === 'found' ? `${refs[s]} is ${a.digest}` : `${refs[s]} is not in the registry`}`,
          )
          return a?.state === 'found' ? `${s}=${a.digest}` : undefined
        })
        const found = digests.every((d) => d !== undefined)
        print(
          found
            ? `      ${release} was built: deploy DIGESTS=${digests.join(',')}`
            : `      ${release} was not built (every service's image is needed): build it`,
        )
        const output = process.env.GITHUB_OUTPUT
        if (output) appendFileSync(output, `found=${found}\ndigests=${found ? digests.join(',') : ''}\n`)
        return 'ok'
      },
    },
  ],
}

if (isMain(import.meta.url)) await main(releaseImages)
