/** @module The api's files import downwards only (app -> routes -> deps -> services -> shared): any import cycle fails this test. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, existsSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const SRC = dirname(fileURLToPath(import.meta.url))

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(e => {
    const path = join(dir, e.name)
    if (e.isDirectory()) return e.name === 'node_modules' || e.name === 'fixtures' ? [] : sourceFiles(path)
    return /\.tsx?$/.test(e.name) && !e.name.endsWith('.d.ts') ? [path] : []
  })
}

/**
 * `import ... from '...'`, `export ... from '...'`, `import '...'` (each at the start of a line, over several lines too)
 * and `import('...')`. A regex, not a parser: TypeScript 7's compiler (our tsc) has no JavaScript API, and madge or
 * dpdm would bring a second TypeScript (v5's) only to list specifiers; the fixture test below keeps this honest.
 */
const SPECIFIER =
  /^[ \t]*(?:import|export)\s+(?:type\s+)?(?:[\w*${}\s,]+?\s+from\s+)?['"]([^'"\n]+)['"]|\bimport\(\s*['"]([^'"\n]+)['"]\s*\)/gm

export function importSpecifiers(source: string): string[] {
  return [...source.matchAll(SPECIFIER)].map(m => m[1] ?? m[2])
}

/**
 * Each file's imports inside `files` (relative specifiers and `@latentbase/api/*`), type-only ones included: a type
 * import is still a dependency a reader has to follow.
 */
export function importGraph(files: string[]): Map<string, string[]> {
  const known = new Set(files)
  const graph = new Map<string, string[]>()
  for (const file of files) {
    const targets = new Set<string>()
    for (const spec of importSpecifiers(readFileSync(file, 'utf8'))) {
      let target: string | undefined
      if (spec.startsWith('.')) target = resolve(dirname(file), spec)
      else if (spec.startsWith('@latentbase/api/')) target = join(SRC, `${spec.slice('@latentbase/api/'.length)}.ts`)
      if (!target) continue
      if (!known.has(target) && known.has(`${target}.ts`)) target = `${target}.ts`
      if (known.has(target)) targets.add(target)
    }
    graph.set(file, [...targets])
  }
  return graph
}

/** Strongly connected components of more than one file (or a file importing itself): Tarjan's algorithm. */
export function importCycles(graph: Map<string, string[]>): string[][] {
  let counter = 0
  const index = new Map<string, number>(),
    low = new Map<string, number>(),
    onStack = new Set<string>(),
    stack: string[] = []
  const cycles: string[][] = []
  const visit = (v: string) => {
    index.set(v, counter)
    low.set(v, counter)
    counter++
    stack.push(v)
    onStack.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = []
      let w: string
      do {
        w = stack.pop()!
        onStack.delete(w)
        component.push(w)
      } while (w !== v)
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(component.sort())
    }
  }
  for (const v of graph.keys()) if (!index.has(v)) visit(v)
  return cycles
}

test('the specifiers of every import form, and none from comments or strings', () => {
  const source = [
    "/** @module what it is; import { x } from './in-a-comment.ts' is prose here */",
    "import { a } from './a.ts'",
    "import type {\n  B,\n  C as D,\n} from '../b.ts'",
    "import e, { f } from '@latentbase/api/e'",
    "import * as g from './g.ts'",
    "import './h.ts'",
    "export { i } from './i.ts'",
    "export type * from './j.ts'",
    "const k = await import('./k.ts')",
    "const text = 'see x from \\'./not-an-import.ts\\''"
  ].join('\n')
  assert.deepEqual(importSpecifiers(source), [
    './a.ts',
    '../b.ts',
    '@latentbase/api/e',
    './g.ts',
    './h.ts',
    './i.ts',
    './j.ts',
    './k.ts'
  ])
})

test('the scanner finds a cycle through a type-only, multi-line import and none in a chain', () => {
  const dir = join(SRC, 'testing', 'import-cycle-fixture')
  assert.ok(existsSync(join(dir, 'a.ts')), 'fixture present')
  const files = sourceFiles(dir)
  const cycles = importCycles(importGraph(files))
  assert.deepEqual(
    cycles.map(c => c.map(f => relative(dir, f))),
    [['a.ts', 'b.ts']]
  )
  const chain = importCycles(importGraph(files.filter(f => !f.endsWith('b.ts'))))
  assert.deepEqual(chain, [])
})

test('no import cycle in api/src', () => {
  const files = sourceFiles(SRC).filter(f => !f.includes(`${join('testing', 'import-cycle-fixture')}`))
  const cycles = importCycles(importGraph(files))
  assert.deepEqual(
    cycles.map(c => c.map(f => relative(SRC, f))),
    [],
    'files that import each other (directly or in a circle): move the shared type or helper one floor down (deps.ts, services/context.ts or shared/)'
  )
})
