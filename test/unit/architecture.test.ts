import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import * as assert from 'uvu/assert'
import { suite } from '../harness.ts'
import { FLOORS, floorOf, KEPT_UP_ARROWS } from '../support/floors.ts'

// The shape docs/architecture.md promises, read from the code itself: floors, no circles, short runbooks.
const ROOT = resolve(import.meta.dirname, '..', '..')

function tsFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(join(ROOT, path)).isDirectory()) return tsFiles(path)
    return name.endsWith('.ts') ? [path] : []
  })
}

/** Every relative import of a file (static, type-only, re-export and dynamic), as repo paths. */
export function importsOf(file: string, source: string): string[] {
  const found = source.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)
  return [...found].map((m) => relative(ROOT, resolve(ROOT, dirname(file), m[1] as string)))
}

const libFiles = tsFiles('lib')
const graph = new Map<string, string[]>()
for (const file of [...libFiles, ...tsFiles('runbooks')])
  graph.set(file, importsOf(file, readFileSync(join(ROOT, file), 'utf8')))

/** Strongly connected components of more than one file, or a file importing itself (Tarjan). */
export function circles(edges: Map<string, string[]>): string[][] {
  let index = 0
  const idx = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const out: string[][] = []
  const visit = (v: string): void => {
    idx.set(v, index)
    low.set(v, index++)
    stack.push(v)
    onStack.add(v)
    for (const w of edges.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, idx.get(w) as number))
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = []
      let w: string
      do {
        w = stack.pop() as string
        onStack.delete(w)
        scc.push(w)
      } while (w !== v)
      if (scc.length > 1 || (edges.get(v) ?? []).includes(v)) out.push(scc.sort())
    }
  }
  for (const v of edges.keys()) if (!idx.has(v)) visit(v)
  return out
}

/** Imports from a lib/ file to a folder on a higher floor, less the kept ones. */
function upArrows(edges: Map<string, string[]>): string[] {
  const folder = (path: string) => path.split('/')[1] as string
  return [...edges].flatMap(([file, deps]) =>
    file.startsWith('lib/')
      ? deps
          .filter((dep) => dep.startsWith('lib/') && floorOf(folder(dep)) > floorOf(folder(file)))
          .map((dep) => `${file} -> ${dep}`)
          .filter((arrow) => !KEPT_UP_ARROWS[arrow])
      : [],
  )
}

const test = suite('architecture: floors, circles, runbook size')

test('the circle finder finds a circle of two and a self-import, and none in a chain', () => {
  const g = new Map([
    ['a', ['b']],
    ['b', ['a', 'c']],
    ['c', ['c']],
    ['d', ['a']],
  ])
  assert.equal(circles(g), [['c'], ['a', 'b']])
  assert.equal(
    circles(
      new Map([
        ['x', ['y']],
        ['y', []],
      ]),
    ),
    [],
  )
})

test('the floor check catches an arrow up a floor and lets one down through', () => {
  const g = new Map([
    ['lib/env/load.ts', ['lib/run/runbook.ts', 'lib/report/errors.ts']],
    ['lib/deploy/steps.ts', ['lib/run/runbook.ts', 'lib/backup/take.ts']],
  ])
  assert.equal(upArrows(g), ['lib/env/load.ts -> lib/run/runbook.ts'])
})

test('lib/ and runbooks/ have no import circle', () => {
  assert.equal(circles(graph), [])
})

test('folder level: no two lib/ folders import each other, even through others', () => {
  const folders = new Map<string, Set<string>>()
  for (const [file, deps] of graph) {
    if (!file.startsWith('lib/')) continue
    const from = file.split('/')[1] as string
    const set = folders.get(from) ?? new Set<string>()
    for (const dep of deps) {
      const to = dep.split('/')[1] as string
      if (dep.startsWith('lib/') && to !== from) set.add(to)
    }
    folders.set(from, set)
  }
  assert.equal(circles(new Map([...folders].map(([k, v]) => [k, [...v]]))), [])
})

test('no loose .ts file at the lib/ root', () => {
  const loose = readdirSync(join(ROOT, 'lib')).filter((f) => f.endsWith('.ts'))
  assert.equal(loose, [])
})

test('every lib/ folder has a floor, and a file imports only from its own floor or lower', () => {
  const unknown = [...new Set(libFiles.map((f) => f.split('/')[1] as string))].filter((d) => floorOf(d) < 0)
  assert.equal(unknown, [], `folders missing from test/support/floors.ts: ${unknown.join(', ')}`)
  const up = upArrows(graph)
  assert.equal(up, [], 'an arrow up a floor: move the shared words down, or name and justify it in floors.ts')
  // A kept arrow that no longer exists is a stale excuse.
  const all = new Set([...graph].flatMap(([f, deps]) => deps.map((d) => `${f} -> ${d}`)))
  assert.equal(
    Object.keys(KEPT_UP_ARROWS).filter((a) => !all.has(a)),
    [],
  )
  assert.ok(FLOORS.length >= 8)
})

test('every path a lib/ file builds from its own folder lands in the repository (a moved file keeps its ..)', () => {
  const wrong: string[] = []
  for (const file of libFiles) {
    const source = readFileSync(join(ROOT, file), 'utf8')
    for (const m of source.matchAll(/resolve\(\s*import\.meta\.dirname,((?:\s*'[^']*',?)+)\s*\)/g)) {
      const parts = [...(m[1] as string).matchAll(/'([^']*)'/g)].map((p) => p[1] as string)
      const path = resolve(ROOT, dirname(file), ...parts)
      // Either it exists (nginx/, compose/, env/) or it is a run-time folder at the top (.audit, .state).
      if (!existsSync(path) && dirname(path) !== ROOT) wrong.push(`${file}: ${parts.join('/')} -> ${path}`)
    }
  }
  assert.equal(wrong, [])
})

test('no runbook file is over 250 lines', () => {
  const long = tsFiles('runbooks')
    .map((f) => [f, readFileSync(join(ROOT, f), 'utf8').split('\n').length] as const)
    .filter(([, n]) => n > 250)
  assert.equal(long, [])
})

test.run()
