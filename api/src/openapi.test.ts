/** @module Tests that GET /openapi.json is fit for tools: Redocly's recommended rules pass, and a generated client compiles and calls the API. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { serve, type ServerType } from '@hono/node-server'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { StaticEncoderCatalog } from '@latentbase/shared/catalog/catalog'
import { ApiKeyStore } from '@latentbase/shared/auth/api-keys'
import type { JobQueue } from '@latentbase/shared/queue/job-queue'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { createApp } from './app.ts'
import { CACHED_ANSWER_OPERATIONS, OPERATION_IDS, PUBLIC_PATHS } from './openapi.ts'
import { openApiDocument } from './write-openapi.ts'

const run = promisify(execFile)
const root = resolve(import.meta.dirname, '..', '..')
const bin = (name: string) => join(root, 'node_modules', '.bin', name)
const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const

let dir: string
let doc: Record<string, any>
let docPath: string

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'latentbase-openapi-'))
  doc = await openApiDocument('http://127.0.0.1:8787')
  docPath = join(dir, 'openapi.json')
  await writeFile(docPath, JSON.stringify(doc, null, 2))
})
after(() => rm(dir, { recursive: true, force: true }))

function operations(d: Record<string, any>) {
  return Object.entries(d.paths as Record<string, Record<string, any>>).flatMap(([path, item]) =>
    METHODS.filter(m => item[m]).map(method => ({ path, method, op: item[method] as Record<string, any> }))
  )
}

test('every operation has its listed operationId, key security unless public, and problem+json on every error', () => {
  const ops = operations(doc)
  assert.ok(ops.length >= 17, `only ${ops.length} operations documented`)
  assert.equal(new Set(ops.map(o => o.op.operationId)).size, ops.length, 'operationIds are unique')
  for (const { path, method, op } of ops) {
    const where = `${method.toUpperCase()} ${path}`
    assert.equal(
      op.operationId,
      OPERATION_IDS[`${method} ${path}`],
      `${where}: operationId from OPERATION_IDS (stable names for generators)`
    )
    if (PUBLIC_PATHS.has(path)) assert.deepEqual(op.security, [], `${where} is public`)
    else {
      assert.deepEqual(op.security, [{ bearerAuth: [] }, { apiKeyHeader: [] }], where)
      assert.ok(op.responses['401'] && op.responses['429'], `${where} documents 401 and 429`)
    }
    const errors = Object.entries(op.responses as Record<string, any>).filter(([s]) => Number(s) >= 400)
    assert.ok(errors.length > 0, `${where} documents its errors`)
    for (const [status, r] of errors) {
      assert.deepEqual(
        r.content,
        { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
        `${where} ${status}`
      )
    }
  }
  assert.deepEqual(Object.keys(doc.components.securitySchemes).sort(), ['apiKeyHeader', 'bearerAuth'])
  assert.equal(doc.components.securitySchemes.apiKeyHeader.name, 'x-api-key')
  assert.deepEqual(doc.components.schemas.Problem.required?.sort(), ['status', 'title', 'type'])
  assert.deepEqual(
    doc.servers.map((s: { url: string }) => s.url),
    ['http://127.0.0.1:8787']
  )
})

test('the operations whose answers carry an ETag declare If-None-Match, the ETag header and the 304', async () => {
  const cached = operations(doc).filter(o => o.op.responses['304'])
  assert.deepEqual(cached.map(o => `${o.method} ${o.path}`).sort(), [...CACHED_ANSWER_OPERATIONS].sort())
  for (const { op } of cached) {
    assert.ok(op.parameters.some((p: any) => p.in === 'header' && p.name === 'If-None-Match'))
    assert.ok(op.responses['200'].headers.ETag && op.responses['200'].headers['Cache-Control'])
    assert.equal(op.responses['304'].content, undefined, 'a 304 has no body')
  }
  // Every route file that answers through the answer cache is in the set (and nothing else is).
  const routes = resolve(import.meta.dirname, 'routes')
  const files = (await readdir(routes)).filter(f => f.endsWith('.ts') && !f.endsWith('.test.ts'))
  const caching = []
  for (const f of files) if ((await readFile(join(routes, f), 'utf8')).includes('cachedJson(')) caching.push(f)
  assert.deepEqual(caching.sort(), ['correlations.ts', 'datasets.ts', 'diff.ts', 'latents.ts', 'search.ts'])
})

test('servers names the origin the document was asked from', async () => {
  assert.deepEqual(
    (await openApiDocument('https://api.example.org')).servers.map((s: { url: string }) => s.url),
    ['https://api.example.org']
  )
})

test("Redocly's recommended rules find no error", async () => {
  const { stdout } = await run(bin('redocly'), ['lint', docPath, '--extends=recommended', '--format=json'], {
    maxBuffer: 16 << 20
  }).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }))
  const report = JSON.parse(stdout) as {
    totals: { errors: number; warnings: number }
    problems: Array<{ ruleId: string; severity: string; message: string; location: Array<{ pointer: string }> }>
  }
  const errors = report.problems
    .filter(p => p.severity === 'error')
    .map(p => `${p.ruleId} at ${p.location[0]?.pointer}: ${p.message}`)
  assert.deepEqual(errors, [])
  const warnings = report.problems.map(p => `${p.ruleId} at ${p.location[0]?.pointer}`)
  console.log(
    `redocly lint --extends=recommended: ${report.totals.errors} errors, ${report.totals.warnings} warnings (${warnings.join('; ')})`
  )
})

test('a client generated by swagger-typescript-api type-checks and calls the API with an API key', async () => {
  const gen = join(dir, 'client')
  await run(bin('swagger-typescript-api'), ['generate', '--path', docPath, '--output', gen, '--name', 'api.ts'])
  // Code written against the generated client: it must compile, and the types must be the API's (not any).
  await writeFile(
    join(gen, 'call.ts'),
    `
import { Api, type HttpResponse, type Problem } from './api.ts'
export function client(baseUrl: string, key?: string) {
  const api = new Api<string>({ baseUrl, securityWorker: (k) => (k ? { headers: { authorization: 'Bearer ' + k } } : {}) })
  api.setSecurityData(key ?? null)
  return api
}
export async function createAndList(baseUrl: string, key: string): Promise<{ created: string; listed: string[] }> {
  const api = client(baseUrl, key)
  const created = await api.datasets.createDataset({ encoder: 'syn', documents: [{ text: 'hello' }] })
  const listed = await api.datasets.listDatasets()
  // @ts-expect-error the generated types know an id is a string
  const wrong: number = listed.data.datasets[0].id
  void wrong
  return { created: created.data.id, listed: listed.data.datasets.map((d) => d.id) }
}
export async function problemOf(call: Promise<unknown>): Promise<Problem> {
  try { await call } catch (err) { return (err as HttpResponse<unknown, Problem>).error }
  throw new Error('expected an error answer')
}
`
  )
  await writeFile(
    join(gen, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: 'es2022',
        module: 'nodenext',
        moduleResolution: 'nodenext',
        lib: ['es2022', 'dom'],
        types: [],
        allowImportingTsExtensions: true,
        skipLibCheck: true
      },
      files: ['call.ts']
    })
  )
  const tsc = await run(bin('tsc'), ['-p', join(gen, 'tsconfig.json')]).catch(
    (err: { stdout?: string; stderr?: string }) => ({ stdout: `${err.stdout}${err.stderr}` })
  )
  assert.equal(tsc.stdout.trim(), '', 'the generated client and the code using it compile')

  const objects = new MemoryObjectStore()
  const keys = new ApiKeyStore(objects)
  const { key } = await keys.create('acme', 'openapi-test')
  const sent: JobMessage[] = []
  const queue = {
    send: async (m: JobMessage) => {
      sent.push(m)
      return String(sent.length)
    }
  } as unknown as JobQueue<JobMessage>
  const encoders = new StaticEncoderCatalog([
    {
      info: {
        id: 'syn',
        fingerprint: 'syn',
        hookName: 'blocks.0.hook_resid_post',
        dIn: 8,
        dSae: 16,
        architecture: 'topk',
        maxTokens: 512,
        labelled: 0
      },
      labels: Array(16).fill(null)
    }
  ])
  const app = createApp({
    objects,
    datasets: new DatasetStore(objects),
    queue,
    encoders,
    mode: 'local',
    tenantOf: () => 'local',
    apiKeys: keys,
    env: {}
  })
  const server: ServerType = await new Promise(ok => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => ok(s))
  })
  try {
    const baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`
    const call = await import(pathToFileURL(join(gen, 'call.ts')).href)
    const { created, listed } = await call.createAndList(baseUrl, key)
    assert.match(created, /^ds_/)
    assert.deepEqual(listed, [created])
    assert.equal(sent.length, 1, 'the create queued one encode job')
    const unauthorized = await call.problemOf(call.client(baseUrl).datasets.listDatasets())
    assert.equal(unauthorized.status, 401)
    assert.equal(unauthorized.code, 'unauthorized')
    const missing = await call.problemOf(call.client(baseUrl, key).datasets.getDataset('ds_missing'))
    assert.equal(missing.code, 'dataset-not-found')
  } finally {
    await new Promise<void>(ok => server.close(() => ok()))
  }
})
