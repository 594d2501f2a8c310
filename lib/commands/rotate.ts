import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto'
import { container, type DataTarget } from './backup.ts'
import { quote } from './shell.ts'

// `make rotate-secret`: what runs on the data services while the apps move to a new password. Pure:
// strings only. Passwords travel on stdin (psql's, redis-cli's), never on a command line; Postgres is
// only ever given a SCRAM verifier, so the password itself never reaches the server or its logs.

/** The rotation's second login role: it acts as `user` (SET role), so what it creates is `user`'s. */
export function twinRole(user: string): string {
  return `${user}_rotating`
}

/** A new password: 32 random bytes, URL-safe (no quoting needed anywhere it goes). */
export function newPassword(): string {
  return randomBytes(32).toString('base64url')
}

/** What Postgres stores for a password (RFC 5802/7677, as libpq's PQencryptPasswordConn makes it). */
export function scramVerifier(password: string, salt = randomBytes(16), iterations = 4096): string {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256')
  const clientKey = createHmac('sha256', salted).update('Client Key').digest()
  const storedKey = createHash('sha256').update(clientKey).digest()
  const serverKey = createHmac('sha256', salted).update('Server Key').digest()
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`
}

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`
const literal = (text: string) => `'${text.replace(/'/g, "''")}'`

/** SQL: the twin role logs in with the verifier's password and acts as `user` (its member). */
export function acceptTwinSql(user: string, verifier: string): string {
  const twin = twinRole(user)
  return [
    `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = ${literal(twin)}) THEN CREATE ROLE ${ident(twin)}; END IF; END $$;`,
    `ALTER ROLE ${ident(twin)} LOGIN PASSWORD ${literal(verifier)};`,
    `GRANT ${ident(user)} TO ${ident(twin)};`,
    `ALTER ROLE ${ident(twin)} SET role = ${literal(user)};`,
    '',
  ].join('\n')
}

/** SQL: `user` logs in with the verifier's password from now on (open sessions are not affected). */
export function setPasswordSql(user: string, verifier: string): string {
  return `ALTER ROLE ${ident(user)} PASSWORD ${literal(verifier)};\n`
}

/** SQL: the twin can no longer log in (its open sessions end with its colour). */
export function retireTwinSql(user: string): string {
  const twin = twinRole(user)
  return `DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = ${literal(twin)}) THEN ALTER ROLE ${ident(twin)} NOLOGIN PASSWORD NULL; END IF; END $$;\n`
}

/** psql in the env's Postgres container (local socket), the SQL on stdin, stopping at the first error. */
export function psqlFromStdin(t: DataTarget): string {
  return [
    'set -eu',
    container(t, 'postgres', 'pg'),
    `docker exec -i "$pg" psql -X -q -v ON_ERROR_STOP=1 -U ${quote(t.user)} -d ${quote(t.db)}`,
  ].join('\n')
}

/** A Redis string argument as redis-cli reads it from stdin: every byte as \xHH inside double quotes. */
export function redisArg(text: string): string {
  return `"${[...Buffer.from(text, 'utf8')].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('')}"`
}

/**
 * redis-cli's stdin: log in with the password Redis has now, then one ACL change of the default user
 * (`>pw` adds a password, `<pw` removes one; both stay valid in between). Every reply is printed.
 */
export function redisAclInput(current: string, rule: '>' | '<', password: string): string {
  return `AUTH ${redisArg(current)}\nACL SETUSER default ${redisArg(`${rule}${password}`)}\n`
}

/** redis-cli in the env's Redis container, its commands on stdin; fails unless every reply is OK. */
export function redisCliFromStdin(t: DataTarget): string {
  return [
    'set -eu',
    container(t, 'redis', 'r'),
    'out=$(docker exec -i "$r" redis-cli --no-auth-warning)',
    'echo "$out"',
    '[ -n "$out" ] && ! printf \'%s\\n\' "$out" | grep -qv \'^OK$\'',
  ].join('\n')
}

/**
 * Which data passwords the host's data services use (its data.env, written by the last deploy or
 * rotation), as `<NAME> <sha256 of salt + value>` lines, nothing when there is no data.env yet (a new
 * host). Only salted hashes leave the host; the values stay in the file.
 */
export function heldPasswordsProbe(dataEnvFile: string, names: readonly string[], salt: string): string {
  const hashes = names
    .map((n) => `printf '%s%s' ${quote(salt)} "$${n}" | sha256sum | sed 's/ .*//; s/^/${n} /'`)
    .join('; ')
  return `if [ -f ${quote(dataEnvFile)} ]; then (set -a; . ${quote(dataEnvFile)}; ${hashes}); fi`
}

/** The names whose value here differs from what heldPasswordsProbe printed (none when it printed nothing). */
export function passwordsDiffering(
  out: string,
  values: Record<string, string | undefined>,
  salt: string,
): string[] {
  const held = new Map(
    out
      .split('\n')
      .map((l) => l.trim().split(' '))
      .filter((w) => w.length === 2) as [string, string][],
  )
  return Object.entries(values)
    .filter(([name, value]) => held.has(name) && held.get(name) !== saltedHash(salt, value ?? ''))
    .map(([name]) => name)
}

export function saltedHash(salt: string, value: string): string {
  return createHash('sha256')
    .update(salt + value)
    .digest('hex')
}
