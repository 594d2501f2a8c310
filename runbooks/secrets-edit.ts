/**
 * secrets-edit — change the env's secrets, kept encrypted in the repository with age
 * (env/<env>.secrets.age, readable by the keys that secrets_recipients in env/<env>.yaml lists).
 *
 * When: a secret is new or changed (a new webhook, a token rotated at its provider); someone joins or
 *   leaves the team (edit secrets_recipients, then REKEY=1); once per env, to move the plaintext
 *   env/<env>.secrets.env into the encrypted file (IMPORT=1).
 * Options: none: $VISUAL or $EDITOR (vi) opens the decrypted secrets (in memory: /dev/shm), saved
 *   encrypted when it closes. SET=NAME: the value is read from stdin (never the command line).
 *   UNSET=NAME. IMPORT=1: the plaintext file's values, then it is deleted. REKEY=1: encrypt again to
 *   today's recipients even when no value changed.
 * Changes: env/<env>.secrets.age only (written whole: a temporary file, then a rename); nothing on a
 *   host. Commit it. The audit record names the secrets that changed, never a value.
 * Abort: leave the editor without saving (or exit it non-zero, :cq in vi): nothing is written.
 * On-call page: docs/runbooks/secrets.md
 */
import { readFileSync } from 'node:fs'
import { parse as parseDotenv } from 'dotenv'
import type { Env } from '../lib/env/load.ts'
import { secretsFile } from '../lib/env/secrets.ts'
import { ageFile, readAgeSecrets, readIdentities, recipientsOf } from '../lib/env/secrets-age.ts'
import { InputError } from '../lib/report/errors.ts'
import { print } from '../lib/report/output.ts'
import { stringArg } from '../lib/run/cli.ts'
import { perRun } from '../lib/run/per-run.ts'
import { type Context, isMain, main, type RunbookSpec } from '../lib/run/runbook.ts'
import {
  changedNames,
  checkEdited,
  describeChanges,
  editableText,
  noRecipients,
  privateFile,
  readIfExists,
  runEditor,
  type SecretValues,
  shred,
  writeAgeSecrets,
  writeAtomically,
} from '../lib/secrets/edit.ts'

const before = perRun<SecretValues>('the secrets as they were')
const after = perRun<SecretValues>('the secrets as edited')

function recipients(env: Env): string[] {
  if (!env.secretsRecipients)
    throw new InputError(
      `${env.file} has no secrets_recipients: its secrets are the plaintext ${secretsFile(env)} (the sandbox's way)`,
      [],
      "To keep them encrypted, add secrets_recipients: with your age public key (and CI's), then run this again with IMPORT=1.",
    )
  return env.secretsRecipients
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of process.stdin) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '')
}

export const secretsEdit: RunbookSpec = {
  name: 'secrets-edit',
  mutates: true,
  offline: true,
  // It reads and writes the whole file itself: the runner loads no secret for it.
  needs: () => [],
  options: [
    { name: 'set', makeVar: 'SET', value: true, help: 'set one secret: its value is read from stdin' },
    { name: 'unset', makeVar: 'UNSET', value: true, help: 'remove one secret from the file' },
    {
      name: 'import',
      makeVar: 'IMPORT=1',
      help: 'take the plaintext env/<env>.secrets.env in, then delete it',
    },
    { name: 'rekey', makeVar: 'REKEY=1', help: "encrypt again to today's secrets_recipients" },
  ],
  validate(args) {
    if (args.set && args.unset) throw new InputError('SET= and UNSET= together: one change per run')
  },
  steps: [
    {
      title: 'Read the secrets file with your age identity',
      next: (ctx) =>
        `Nothing was changed. Check your identity (AGE_IDENTITY or ~/.config/conciliaextrato/age.key) and ${ageFile(ctx.env)}.`,
      async run(ctx) {
        const to = recipients(ctx.env)
        const file = ageFile(ctx.env)
        if (to.length === 0) throw noRecipients(ctx.env)
        const ids = readIdentities()
        const found = await readAgeSecrets(ctx.env, ids)
        const values: SecretValues = { ...found }
        before.set(ctx, { ...values })
        if (ctx.args.import === true) {
          const plain = secretsFile(ctx.env)
          const text = readIfExists(plain)
          if (!text) throw new InputError(`IMPORT=1: ${plain} does not exist`, [], 'Nothing to import.')
          Object.assign(values, parseDotenv(text))
          print(`      ${plain}: ${Object.keys(parseDotenv(text)).length} secret(s) to import`)
        }
        after.set(ctx, values)
        print(`      ${found ? file : `${file} (new)`}: ${Object.keys(before.get(ctx)).length} secret(s) set`)
        const mine = ids ? await recipientsOf(ids) : []
        print(
          `      encrypted to ${to.length} recipient(s); yours (${mine[0] ?? 'no identity'}) ${mine.some((r) => to.includes(r)) ? 'is' : 'is NOT'} among them`,
        )
        return 'ok'
      },
    },
    {
      title: 'Edit',
      next: 'Nothing was written: the encrypted file is as it was.',
      async run(ctx) {
        const values = after.get(ctx)
        const set = stringArg(ctx.args, 'set')
        const unset = stringArg(ctx.args, 'unset')
        if (set || unset) {
          const name = (set ?? unset) as string
          if (!ctx.env.secrets.includes(name))
            throw new InputError(
              `${set ? 'SET' : 'UNSET'}=${name}: ${ctx.env.file} declares no such secret`,
              ctx.env.secrets.map((n) => `declared: ${n}`),
            )
          if (ctx.dryRun) {
            print(`      would ${set ? 'set' : 'remove'} ${name}`)
            return 'dry-run'
          }
          if (unset) delete values[name]
          else {
            if (process.stdin.isTTY)
              throw new InputError(
                `SET=${name} reads the value from stdin, and stdin is a terminal`,
                [],
                `Pipe it: printf %s "$VALUE" | make secrets-edit ENV=${ctx.env.name} SET=${name}`,
              )
            const value = await readStdin()
            if (!value)
              throw new InputError(`SET=${name}: stdin was empty`, [], `Use UNSET=${name} to remove it.`)
            values[name] = value
          }
          return 'changed'
        }
        if (ctx.args.import === true || ctx.args.rekey === true) return 'ok'
        if (ctx.dryRun) {
          print('      would open $VISUAL/$EDITOR on the decrypted secrets')
          return 'dry-run'
        }
        if (!process.stdin.isTTY && !process.env.VISUAL && !process.env.EDITOR)
          throw new InputError(
            'no terminal for an editor, and neither VISUAL nor EDITOR names one',
            [],
            'Use SET=NAME (value on stdin) or UNSET=NAME in scripts.',
          )
        const tmp = privateFile(`${ctx.env.name}.secrets.env`)
        ctx.onCleanup(async () => tmp.remove())
        writeAtomically(tmp.path, editableText(ctx.env, values), 0o600)
        const code = runEditor(tmp.path)
        const text = readFileSync(tmp.path, 'utf8')
        tmp.remove()
        if (code !== 0) throw new InputError(`the editor exited with status ${code}: nothing is saved`)
        const checked = checkEdited(ctx.env, text)
        if (checked.problems.length)
          throw new InputError(
            'the edited secrets have problems; nothing is saved:',
            checked.problems,
            'Run make secrets-edit again.',
          )
        if (checked.unset.length)
          print(`      not set here (CI or the environment must set them): ${checked.unset.join(', ')}`)
        after.set(ctx, checked.values)
        return 'changed'
      },
    },
    {
      title: 'Encrypt to the recipients and write the file',
      next: (ctx) =>
        `The file is written whole or not at all: ${ageFile(ctx.env)} is either the old one or the new one.`,
      async run(ctx: Context) {
        const file = ageFile(ctx.env)
        const changes = changedNames(before.get(ctx), after.get(ctx))
        const summary = describeChanges(changes)
        print(`      ${summary}`)
        const same = !changes.added.length && !changes.changed.length && !changes.removed.length
        if (same && ctx.args.rekey !== true && readIfExists(file)) {
          print(`      ${file} left as it was (after changing secrets_recipients, REKEY=1 encrypts again)`)
          return 'ok'
        }
        if (ctx.dryRun) return 'dry-run'
        await writeAgeSecrets(ctx.env, after.get(ctx))
        ctx.auditEvent(`secrets: ${summary}; encrypted to ${recipients(ctx.env).length} recipient(s)`)
        if (ctx.args.import === true) {
          shred(secretsFile(ctx.env))
          print(`      ${secretsFile(ctx.env)} deleted (overwritten first)`)
        }
        print(`      wrote ${file}: commit it (git add ${file})`)
        return 'changed'
      },
    },
  ],
}

if (isMain(import.meta.url)) await main(secretsEdit)
