import { InputError } from '../report/errors.ts'
import { projectContainers, projectName } from './compose.ts'
import { APP_SERVICES, DATA_SERVICES, LOG_SERVICES } from './logs.ts'
import { liveColourProbe } from './nginx.ts'
import { quote } from './shell.ts'
import { stackName } from './swarm.ts'

// `make exec`: one command inside a running container of a service, as argv (the app images have no
// shell to hand a string to). Pure: strings only.

/** SERVICE= is required here (one service): one of the stack's. */
export function parseService(raw: string | undefined): string {
  if (!raw || !LOG_SERVICES.includes(raw))
    throw new InputError(
      raw ? `SERVICE=${raw}: not a service of the stack` : 'SERVICE is required',
      [],
      `Name one of ${LOG_SERVICES.join(', ')}: make exec ENV=<env> SERVICE=api CMD="..."`,
    )
  return raw
}

/**
 * CMD= split into words as a POSIX shell would split a simple command: blanks separate, '...' keeps
 * everything, "..." keeps everything but \" and \\, a backslash escapes one character. No
 * expansion, no operators: the words reach the program as they are.
 */
export function splitWords(raw: string | undefined): string[] {
  const text = raw ?? ''
  const words: string[] = []
  let word = ''
  let inWord = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string
    if (c === "'") {
      const end = text.indexOf("'", i + 1)
      if (end < 0) throw unbalanced(raw, "'")
      word += text.slice(i + 1, end)
      i = end
      inWord = true
    } else if (c === '"') {
      let j = i + 1
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === '\\' && (text[j + 1] === '"' || text[j + 1] === '\\')) j++
        word += text[j]
      }
      if (j >= text.length) throw unbalanced(raw, '"')
      i = j
      inWord = true
    } else if (c === '\\') {
      if (i + 1 < text.length) word += text[++i]
      inWord = true
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word)
      word = ''
      inWord = false
    } else {
      word += c
      inWord = true
    }
  }
  if (inWord) words.push(word)
  if (words.length === 0)
    throw new InputError(
      'CMD is required',
      [],
      'Give the command: make exec ENV=<env> SERVICE=api CMD="api --version"',
    )
  return words
}

function unbalanced(raw: string | undefined, q: string): InputError {
  return new InputError(`CMD=${raw}: a ${q} is not closed`, [], 'Close the quote, or quote CMD differently.')
}

/** Postgres or Redis: runs in the data project, on the data host. */
export function isDataService(service: string): boolean {
  return (DATA_SERVICES as readonly string[]).includes(service)
}

/**
 * On one host: the service's running container (an app service: the live colour's; a data service:
 * the data project's; on a swarm node: the stack's task), or exit 3 naming what is not running; then
 * the words, each quoted, run in it. Prints `container <name>` first, on stderr.
 */
export function execCommand(env: string, service: string, words: string[]): string {
  const first = (project: string) => `$(${projectContainers(project, service)} | head -n1)`
  const find = (APP_SERVICES as readonly string[]).includes(service)
    ? [
        `colour=$(${liveColourProbe(env)})`,
        `case "$colour" in blue) c=${first(projectName(env, 'blue'))} ;; green) c=${first(projectName(env, 'green'))} ;; *) c="" ;; esac`,
      ]
    : isDataService(service)
      ? [`c=${first(projectName(env, 'data'))}`]
      : ['c=""']
  return [
    'set -eu',
    ...find,
    `[ -n "$c" ] || c=$(docker ps -q --filter ${quote(`label=com.docker.swarm.service.name=${stackName(env)}_${service}`)} | head -n1)`,
    `[ -n "$c" ] || { echo ${quote(`no running ${service} container of ${env} on this host: make status ENV=${env} shows what runs where`)} >&2; exit 3; }`,
    `echo "container $(docker inspect -f '{{.Name}}' "$c" | sed 's|^/||')" >&2`,
    `exec docker exec "$c" ${words.map(quote).join(' ')}`,
  ].join('\n')
}
