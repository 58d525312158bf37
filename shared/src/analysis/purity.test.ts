/**
 * @module Guards the analysis core's purity: no file under shared/src/analysis imports the store (shared/src/store)
 * or a Parquet library, so the core stays pure functions over typed arrays that any adapter can feed.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ANALYSIS = fileURLToPath(new URL('.', import.meta.url))
const STORE = resolve(ANALYSIS, '../store')

/** Every module specifier of a file: static imports and re-exports, `import()` and `import type`. */
export function specifiersOf(source: string): string[] {
  const out: string[] = []
  for (const m of source.matchAll(/(?:\bimport|\bexport)\s+(?:type\s+)?(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]/g))
    out.push(m[1])
  for (const m of source.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1])
  return out
}

/** Why a specifier is not allowed in the analysis core, or null. */
export function forbidden(specifier: string, fromDir: string): string | null {
  if (/^hyparquet/.test(specifier)) return 'a Parquet library'
  if (specifier.startsWith('@latentbase/shared/store/')) return 'the store'
  if (specifier.startsWith('.')) {
    const target = resolve(fromDir, specifier)
    if (target === STORE || target.startsWith(STORE + '/')) return 'the store'
  }
  return null
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true })
  return entries.filter(e => e.isFile() && e.name.endsWith('.ts')).map(e => join(e.parentPath, e.name))
}

test('the import scan sees every import form and flags the store and hyparquet', () => {
  const src = `import { a } from '../store/x.ts'\nimport type { B } from "hyparquet"\nexport { c } from './c.ts'\nconst d = await import('hyparquet-writer')\nimport './side-effect.ts'`
  assert.deepEqual(specifiersOf(src), ['../store/x.ts', 'hyparquet', './c.ts', './side-effect.ts', 'hyparquet-writer'])
  assert.equal(forbidden('../store/x.ts', ANALYSIS), 'the store')
  assert.equal(forbidden('../../store/layout.ts', join(ANALYSIS, 'clustering')), 'the store')
  assert.equal(forbidden('@latentbase/shared/store/layout', ANALYSIS), 'the store')
  assert.equal(forbidden('hyparquet-writer', ANALYSIS), 'a Parquet library')
  assert.equal(forbidden('./sparse.ts', ANALYSIS), null)
  assert.equal(forbidden('../util/sorted.ts', ANALYSIS), null)
})

test('no file under shared/src/analysis imports the store or hyparquet', async () => {
  // This file names forbidden imports in its fixtures, so it is the one file not scanned.
  const files = (await filesUnder(ANALYSIS)).filter(f => f !== fileURLToPath(import.meta.url))
  assert.ok(files.length > 10, `found only ${files.length} files under ${ANALYSIS}`)
  const problems: string[] = []
  for (const file of files) {
    const dir = resolve(file, '..')
    for (const spec of specifiersOf(await readFile(file, 'utf8'))) {
      const why = forbidden(spec, dir)
      if (why) problems.push(`${relative(ANALYSIS, file)} imports ${why} ('${spec}')`)
    }
  }
  assert.deepEqual(problems, [], 'the analysis core must stay pure: move the helper into analysis/ or util/')
})
