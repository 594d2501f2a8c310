/**
 * The sandbox: throwaway Debian 12 "droplets" on the local Docker engine, the embedded default
 * environment (env/local.yaml) and the test bed.
 *
 *   tsx test/sandbox/cli.ts up [--droplets N]   start droplets web-1..N (default 1) and build fixture images
 *   tsx test/sandbox/cli.ts down                remove every sandbox container and network
 *   tsx test/sandbox/cli.ts images              build (or find cached) images only
 */
import { rmSync } from 'node:fs'
import { SANDBOX_DIR, SANDBOX_STATE } from '../../lib/sandbox-state.ts'
import { group, removeGroup, startDroplet, writeState } from './droplets.ts'
import { ensureDockerEngine } from './engine.ts'
import { buildFixtureImages } from './fixtures.ts'
import { buildDropletImage } from './images.ts'

const [command = 'up', ...rest] = process.argv.slice(2)
const count = Number(rest[rest.indexOf('--droplets') + 1] ?? 1) || 1

try {
  await ensureDockerEngine()
  if (command === 'up') {
    const image = await buildDropletImage()
    await buildFixtureImages()
    const g = group('sbx', SANDBOX_DIR)
    const droplets = []
    for (let i = 1; i <= count; i++) {
      const droplet = await startDroplet(g, `web-${i}`, image)
      droplets.push(droplet)
      process.stdout.write(
        `sandbox: ${droplet.name} up: ssh 127.0.0.1:${droplet.ports.ssh}, http 127.0.0.1:${droplet.ports.http}, ` +
          `https 127.0.0.1:${droplet.ports.https}, host key ${droplet.hostKey}\n`,
      )
    }
    writeState(SANDBOX_STATE, droplets)
    process.stdout.write(`sandbox: state in ${SANDBOX_STATE} (env/local.yaml reads it)\n`)
  } else if (command === 'down') {
    await removeGroup()
    rmSync(SANDBOX_STATE, { force: true })
    process.stdout.write('sandbox: every sandbox container and network removed\n')
  } else if (command === 'images') {
    await buildDropletImage()
    await buildFixtureImages()
  } else {
    throw new Error(`unknown command "${command}": use up, down or images`)
  }
} catch (err) {
  process.stderr.write(`sandbox: ${(err as Error).message}\n`)
  process.exit(1)
}
