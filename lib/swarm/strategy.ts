import { lockThenUndoOnFailure, type ReleaseStrategy } from '../deploy/strategy.ts'
import { swarmHosts } from './hosts.ts'
import {
  deliverSwarmImages,
  swarmDataServices,
  swarmMigrate,
  swarmPreconditions,
  swarmSecrets,
  writeSwarmConfig,
} from './prepare.ts'
import {
  notifySwarmOutcome,
  recordSwarmRelease,
  rollStack,
  swarmCleanupOnFailure,
  swarmGates,
} from './roll.ts'

/**
 * A release on a swarm env (a swarm: section): a rolling update of the stack, one web node at a time.
 * Swarm itself rolls back a release whose tasks fail their health check; the gates through every
 * node's nginx, a failure or Ctrl-C after the update put the previous release back. Data on the data host.
 */
export const swarmRelease: ReleaseStrategy = {
  historyHost: (ctx) => swarmHosts(ctx).manager,
  async preconditions(ctx, release, action) {
    await swarmPreconditions(ctx, release, action)
    notifySwarmOutcome(ctx)
  },
  lock: lockThenUndoOnFailure(swarmCleanupOnFailure),
  async deliver(ctx) {
    const images = await deliverSwarmImages(ctx)
    // The secrets need only the data host's address: made here, they are ready for the config and migrations.
    const secrets = await swarmSecrets(ctx)
    return images || secrets
  },
  writeConfig: writeSwarmConfig,
  dataServices: swarmDataServices,
  migrate: swarmMigrate,
  start: rollStack,
  // nginx on each node sends to its own task: the rolling update moved the traffic.
  switchTraffic: async () => false,
  gates: swarmGates,
  record: (ctx, note) => recordSwarmRelease(ctx, 'live', note),
}
