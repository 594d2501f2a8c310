import { Client } from 'ssh2'
import { sshFingerprint } from '../env/fingerprint.ts'
import type { Host } from '../env/load.ts'

/**
 * Which authentication methods the host offers to `user`, learned by offering none (the server then
 * lists what it accepts). Sends no key and no password; the host key is pinned as everywhere else.
 */
export function offeredAuthMethods(host: Host, user: string, timeoutS = 10): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const client = new Client()
    let offered: string[] | undefined
    const done = (err?: Error) => {
      client.end()
      if (offered) resolve(offered)
      else reject(err ?? new Error(`${host.name} did not list its authentication methods`))
    }
    client.on('error', (err) => done(err))
    client.on('close', () => done())
    client.on('ready', () => done(new Error(`${host.name} let ${user} in without any credential`)))
    client.connect({
      host: host.address,
      port: host.sshPort,
      username: user,
      readyTimeout: timeoutS * 1000,
      algorithms: { serverHostKey: ['ssh-ed25519'] },
      hostVerifier: (key: Buffer) => sshFingerprint(key) === host.hostKey,
      authHandler: (methodsLeft, _partial, next) => {
        if (methodsLeft === null) return next({ type: 'none', username: user })
        offered = [...methodsLeft]
        return next(false as never)
      },
    })
  })
}
