/** @module Runs every recipe of docs/store-recipes.md (DuckDB SQL and pandas) on datasets the real worker encoded, and checks them against the API. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api'
import { createClient } from '@latentbase/sdk'
import { startDemoServer, type DemoServer } from './testing/demo-server.ts'

const DOC = fileURLToPath(new URL('../../docs/store-recipes.md', import.meta.url))
const PYTHON = process.env.PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3')
const close = (x: number, y: number, what: string) =>
  assert.ok(Math.abs(x - y) <= 1e-6 * Math.max(1, Math.abs(y)), `${what}: ${x} vs ${y}`)

let demo: DemoServer
let markdown: string
let con: DuckDBConnection
let tmp: string
let client: ReturnType<typeof createClient>
let latent: number

/** Fenced blocks whose info string names them: ```sql diff ... ``` -> blocks.sql.diff. */
function blocks(lang: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const m of markdown.matchAll(/^```(\w+) (\w+)\n([\s\S]*?)^```$/gm)) if (m[1] === lang) out[m[2]] = m[3]
  return out
}
const sql = () => blocks('sql')

/** Runs a recipe's Python in the test's folder (where the exported CSV files are). */
function runPython(code: string): Promise<{ status: number | null; output: string }> {
  return new Promise((ok, fail) => {
    const child = spawn(PYTHON, ['-c', code], { cwd: tmp, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } })
    let out = ''
    child.stdout.on('data', d => {
      out += d
    })
    child.stderr.on('data', d => {
      out += d
    })
    child.on('error', fail)
    child.on('close', s => ok({ status: s, output: out }))
  })
}

async function rows(query: string): Promise<Array<Record<string, unknown>>> {
  const result = await con.runAndReadAll(query)
  return result.getRowObjectsJson() as Array<Record<string, unknown>>
}

before(async () => {
  markdown = await readFile(DOC, 'utf8')
  demo = await startDemoServer(12)
  client = createClient({ baseUrl: demo.server.url })
  tmp = await mkdtemp(join(tmpdir(), 'latentbase-recipes-'))
  con = await (await DuckDBInstance.create(':memory:', { threads: '1' })).connect()
  // The latent the recipes look at: the API's top latent of spam vs ham.
  latent = (await client.diff({ a: demo.spam, b: demo.ham, limit: 1 })).latents[0].latent
  // The setup block as documented, pointed at this test's datasets.
  const setup = sql().setup
  assert.deepEqual(
    [...setup.matchAll(/^SET VARIABLE (\w+) = /gm)].map(m => m[1]),
    ['a', 'b', 'latent'],
    'the setup block names a, b and latent'
  )
  const folder = (id: string) => join(demo.dataDir, 'store', 'local', 'datasets', id)
  await con.run(
    setup
      .replace(/(SET VARIABLE a = )'[^']*'/, `$1'${folder(demo.spam)}'`)
      .replace(/(SET VARIABLE b = )'[^']*'/, `$1'${folder(demo.ham)}'`)
      .replace(/(SET VARIABLE latent = )\d+/, `$1${latent}`)
  )
})
after(async () => {
  con?.closeSync()
  await demo?.close()
  await rm(tmp, { recursive: true, force: true })
})

test("the documented columns and types are the files' own", async () => {
  const documented = new Map<string, Array<[string, string]>>()
  for (const m of markdown.matchAll(/^\| `([^`]+\.parquet)` \| `(\w+)` \| ([A-Z[\]]+) \|/gm)) {
    if (!documented.has(m[1])) documented.set(m[1], [])
    documented.get(m[1])!.push([m[2], m[3]])
  }
  assert.deepEqual([...documented.keys()].sort(), [
    'documents/*.parquet',
    'latents/by-document/*.parquet',
    'latents/by-latent/*.parquet',
    'stats/latent-stats.parquet'
  ])
  for (const [file, columns] of documented) {
    const described = await rows(`DESCRIBE SELECT * FROM read_parquet(getvariable('a') || '/${file}')`)
    assert.deepEqual(
      described.map(r => [r.column_name, r.column_type]),
      columns,
      file
    )
  }
})

test("frequency of a latent: the latent page's numbers", async () => {
  const [row] = await rows(sql().frequency)
  const page = await client.latents.get(demo.spam, latent)
  assert.equal(Number(row.latent), latent)
  assert.equal(Number(row.documents), page.documents)
  close(Number(row.frequency), page.frequency, 'frequency')
  close(Number(row.max), page.max, 'max')
  close(Number(row.mean), page.mean!, 'mean')
})

test('documents where a latent fires: every one, strongest first, as the documents themselves say', async () => {
  const fires = await rows(sql().fires)
  const page = await client.latents.get(demo.spam, latent, { examples: 50 })
  assert.equal(fires.length, page.documents)
  assert.deepEqual(
    fires
      .map(r => Number(r.row))
      .slice(0, page.topExamples.length)
      .sort(),
    page.topExamples.map(e => e.row).sort()
  )
  for (const r of fires) {
    const doc = await client.documents.get(demo.spam, Number(r.row))
    assert.equal(r.id, doc.id)
    const mine = doc.latents.find(l => l.latent === latent)
    assert.ok(mine, `row ${r.row} has latent ${latent}`)
    close(Number(r.value), mine.value, `value in row ${r.row}`)
    assert.equal(Number(r.position), mine.position)
    assert.equal(r.text, doc.text.slice(0, 120))
  }
  for (let i = 1; i < fires.length; i++) assert.ok(Number(fires[i - 1].value) >= Number(fires[i].value))
})

test("the SQL diff gives the API diff's frequencies and differences", async () => {
  const mine = await rows(sql().diff)
  const api = await client.diff({ a: demo.spam, b: demo.ham, limit: 20 })
  assert.equal(mine.length, 20)
  // Same differences in the same order (latents tied on a difference may come in another order).
  mine.forEach((r, i) => {
    close(Number(r.difference), api.latents[i].difference, `difference #${i}`)
  })
  const byLatent = new Map(mine.map(r => [Number(r.latent), r]))
  for (const l of api.latents) {
    const r = byLatent.get(l.latent)
    if (!r) continue
    assert.equal(Number(r.count_a), l.countA)
    assert.equal(Number(r.count_b), l.countB)
    close(Number(r.frequency_a), l.frequencyA, `frequency_a of ${l.latent}`)
    close(Number(r.frequency_b), l.frequencyB, `frequency_b of ${l.latent}`)
  }
  assert.ok(api.latents.filter(l => byLatent.has(l.latent)).length >= 15, 'the two top-20 lists mostly agree')
})

test('pandas: the exported CSV and the documented steps give the same diff and firing documents', async () => {
  // The export block writes relative paths; here they go to the test's folder.
  await con.run(sql().export.replaceAll(" TO '", ` TO '${tmp}/`))
  const { status, output } = await runPython(blocks('python').pandas)
  assert.equal(status, 0, output)
  const result = JSON.parse(output) as {
    diff: Array<{ latent: number; difference: number; frequency_a: number }>
    top: number
    fires: Array<{ doc: number; value: number; position: number }>
  }
  const sqlDiff = await rows(sql().diff)
  assert.deepEqual(
    result.diff.map(r => r.latent),
    sqlDiff.map(r => Number(r.latent)),
    'pandas and SQL order the diff alike'
  )
  result.diff.forEach((r, i) => {
    close(r.difference, Number(sqlDiff[i].difference), `difference #${i}`)
  })
  await con.run(`SET VARIABLE latent = ${result.top}`)
  const fires = await rows(sql().fires)
  assert.deepEqual(
    result.fires.map(f => f.doc),
    fires.map(f => Number(f.row))
  )
  result.fires.forEach((f, i) => {
    close(f.value, Number(fires[i].value), `value #${i}`)
  })
})

test("scikit-learn: the exported rows as a sparse matrix, and a linear probe that tells a from b by the diff's latents", async () => {
  await con.run(sql().export.replaceAll(" TO '", ` TO '${tmp}/`))
  const { status, output } = await runPython(blocks('python').probe)
  assert.equal(status, 0, output)
  const result = JSON.parse(output) as { shape: [number, number]; nnz: number; accuracy: number; top: number[] }
  const [entriesA, entriesB] = await Promise.all(
    ['a', 'b'].map(async side =>
      Number(
        (
          await rows(`SELECT count(*) AS n FROM read_parquet(getvariable('${side}') || '/latents/by-latent/*.parquet')`)
        )[0].n
      )
    )
  )
  assert.equal(result.shape[0], demo.documents.spam.length + demo.documents.ham.length, 'one row per document')
  assert.equal(result.nnz, entriesA + entriesB, 'one entry per stored (document, latent)')
  assert.ok(result.accuracy >= 0.75, `held-out accuracy ${result.accuracy}`)
  // The probe leans on latents the diff finds more frequent in a.
  const diff = await client.diff({ a: demo.spam, b: demo.ham, direction: 'both', limit: 5000 })
  const difference = new Map(diff.latents.map(l => [l.latent, l.difference]))
  const agree = result.top.filter(l => (difference.get(l) ?? 0) > 0).length
  assert.ok(agree >= 7, `${agree} of the probe's top 10 latents are more frequent in a`)
})
