import { parentPort, workerData } from 'node:worker_threads'
import { startLoad } from './load.ts'

// startLoad in a thread of its own (startLoadApart): the visitors' requests are sent and timed on an
// event loop that the runbook under test never blocks, as real visitors' are.
const load = startLoad(...(workerData as { args: Parameters<typeof startLoad> }).args)
parentPort?.once('message', async () => parentPort?.postMessage(await load.stop()))
parentPort?.postMessage('started')
