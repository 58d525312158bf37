/**
 * @module Hostile input never gets a 500: every operation of GET /openapi.json is walked with generated hostile
 * path parameters, query strings, headers and bodies (fast-check, seeded and bounded), in-process. Every answer is
 * below 500 (a 503 only where the operation documents it, e.g. no LLM configured), every 4xx is problem+json, and
 * the app still answers normally afterwards.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import type { JobMessage } from '@latentbase/shared/contract/job'
import type { AnalysisQueueMessage } from '@latentbase/shared/contract/analysis-job'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { EmbeddedQueue } from '@latentbase/shared/queue/embedded-queue'
import { createApp } from './app.ts'
import { syntheticCatalog, syntheticTopics, writeSyntheticDataset } from './bench/synthetic-store.ts'

const SEED = 20261206
const RUNS_PER_OPERATION = 40
const N_LATENTS = 64

/** Strings that broke (or could break) a handler: odd numbers, traversal, encodings, control characters, emoji, huge. */
const KNOWN_HOSTILE = [
  '-1',
  '{}',
  '%2500',
  '..%252f..%252f',
  '../../etc/passwd',
  '..%2F..%2F',
  '😀',
  '🧪💥',
  '0x10',
  ' ',
  '',
  'null',
  'undefined',
  'NaN',
  'Infinity',
  '-0',
  '1e309',
  '9007199254740993',
  '%00',
  '%',
  '%%',
  '\u0000',
  '\ud800',
  'a'.repeat(5000),
  '<script>',
  "' OR 1=1 --",
  '__proto__',
  'constructor',
  'ds_a/../ds_b',
  '.',
  '..',
  'ds_a',
  'ds_b',
  'ds_a,ds_b',
  '[]',
  'true',
  '0',
  '1.5'
]
const hostileString = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...KNOWN_HOSTILE) },
  { weight: 2, arbitrary: fc.string({ maxLength: 40, unit: 'binary' }) },
  { weight: 1, arbitrary: fc.integer().map(String) },
  { weight: 1, arbitrary: fc.double().map(String) },
  { weight: 1, arbitrary: fc.string({ minLength: 300, maxLength: 3000 }) }
)
/** JSON values: hostile strings, numbers at the edges, nested junk. */
const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  hostileString,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(-1, 0, 1e308, -1e308, 2 ** 53 + 1, 1e-320),
  fc.array(fc.oneof(hostileString, fc.integer()), { maxLength: 5 }),
  fc.jsonValue({ maxDepth: 3 })
)

/** encodeURIComponent, with lone surrogates (which it refuses) replaced as a client's encoder would. */
const enc = (s: string) =>
  encodeURIComponent(s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd'))

interface Operation {
  method: string
  path: string
  pathParams: string[]
  queryParams: string[]
  bodyProps: string[] | null
}
interface HostileRequest {
  url: string
  init: RequestInit
}

let dir: string
let app: ReturnType<typeof createApp>
let queues: Array<{ close(): Promise<void> }> = []
const operations: Operation[] = []

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'latentbase-hostile-'))
  const objects = new MemoryObjectStore()
  const datasets = new DatasetStore(objects)
  // ds_a and ds_b are the generator's plausible ids (it may delete them); ds_c and ds_d stay for the checks after.
  for (const id of ['ds_a', 'ds_b', 'ds_c', 'ds_d']) {
    await writeSyntheticDataset(
      objects,
      datasets,
      { tenant: 'local', id, encoderId: 'syn' },
      { nDocs: 30, nLatents: N_LATENTS, meanActive: 8, topics: 2, topicLatents: 6, seed: id.charCodeAt(3) }
    )
  }
  const queue = new EmbeddedQueue<JobMessage>(join(dir, 'queue'))
  const analysisQueue = new EmbeddedQueue<AnalysisQueueMessage>(join(dir, 'analysis'))
  queues = [queue, analysisQueue]
  app = createApp({
    objects,
    datasets,
    queue,
    analysisQueue,
    llm: null,
    mode: 'local',
    tenantOf: () => 'local',
    encoders: syntheticCatalog('syn', N_LATENTS, syntheticTopics(N_LATENTS, 2, 6))
  })
  const doc = (await (await app.request('/openapi.json')).json()) as {
    paths: Record<
      string,
      Record<
        string,
        {
          parameters?: Array<{ in: string; name: string }>
          requestBody?: { content: Record<string, { schema: Schema }> }
        }
      >
    >
    components?: { schemas?: Record<string, Schema> }
  }
  type Schema = { $ref?: string; properties?: Record<string, unknown>; anyOf?: Schema[]; allOf?: Schema[] }
  const resolve = (s: Schema | undefined): Schema | undefined =>
    s?.$ref ? doc.components?.schemas?.[s.$ref.split('/').pop()!] : s
  const propsOf = (s: Schema | undefined): string[] => {
    const r = resolve(s)
    if (!r) return []
    return [
      ...Object.keys(r.properties ?? {}),
      ...(r.anyOf ?? []).flatMap(propsOf),
      ...(r.allOf ?? []).flatMap(propsOf)
    ]
  }
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const params = op.parameters ?? []
      const body = op.requestBody?.content['application/json']?.schema
      operations.push({
        method: method.toUpperCase(),
        path,
        pathParams: params.filter(p => p.in === 'path').map(p => p.name),
        queryParams: params.filter(p => p.in === 'query').map(p => p.name),
        bodyProps: op.requestBody ? [...new Set(propsOf(body))] : null
      })
    }
  }
})

after(async () => {
  for (const q of queues) await q.close()
  await rm(dir, { recursive: true, force: true })
})

/** A path segment: URL-encoded, or raw (the router sees it as sent), or a plausible id. */
const pathValue = fc.oneof(
  { weight: 3, arbitrary: hostileString.map(enc) },
  { weight: 2, arbitrary: hostileString.map(s => s.replace(/[/?#]/g, enc)) },
  { weight: 1, arbitrary: fc.constantFrom('ds_a', '0', '5', 'syn') }
)
/** A query value: plausible (a ready dataset, a number) or hostile. */
const queryValue = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom('ds_a', 'ds_b', '1', '0', 'true', 'sae', 'bm25') },
  { weight: 3, arbitrary: hostileString }
)
/** Header values must be ByteStrings without CR/LF; anything else cannot be sent at all. */
const headerValue = hostileString.map(s => s.replace(/[^\x20-\x7e]/g, '').slice(0, 300))

function requestFor(op: Operation): fc.Arbitrary<HostileRequest> {
  const path = fc.tuple(...op.pathParams.map(() => pathValue), fc.constant(null)).map(values => {
    let p = op.path
    op.pathParams.forEach((name, i) => {
      p = p.replace(`{${name}}`, values[i] as string)
    })
    return p
  })
  const query = fc.array(
    fc.tuple(fc.oneof(fc.constantFrom(...(op.queryParams.length ? op.queryParams : ['x'])), hostileString), queryValue),
    { maxLength: 6 }
  )
  const body =
    op.bodyProps === null
      ? fc.constant(undefined)
      : fc.oneof(
          {
            weight: 3,
            arbitrary: fc
              .dictionary(
                fc.constantFrom(...(op.bodyProps.length ? op.bodyProps : ['x'])),
                fc.oneof(fc.constantFrom('ds_a', 'ds_b', ['ds_a'], 3), hostileJson),
                { maxKeys: 6 }
              )
              .map(o => JSON.stringify(o))
          },
          { weight: 1, arbitrary: hostileJson.map(v => JSON.stringify(v) ?? 'null') },
          {
            weight: 1,
            arbitrary: fc.constantFrom(
              '{',
              '{"a":',
              '[1,2',
              'nul',
              '\u0000',
              '{"__proto__": {"x": 1}}',
              '"'.repeat(1000),
              '{}'.repeat(1000)
            )
          }
        )
  const contentType = fc.constantFrom(
    'application/json',
    'application/json',
    'text/plain',
    'application/x-www-form-urlencoded',
    null
  )
  const extraHeaders = fc.dictionary(
    fc.constantFrom('idempotency-key', 'prefer', 'accept', 'x-api-key', 'authorization'),
    headerValue,
    { maxKeys: 2 }
  )
  return fc
    .record({ path, query, body, contentType, extraHeaders })
    .map(({ path, query, body, contentType, extraHeaders }) => {
      const qs = query.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&')
      const headers: Record<string, string> = { ...extraHeaders }
      if (body !== undefined && contentType) headers['content-type'] = contentType
      return { url: `http://latentbase.test${path}${qs ? `?${qs}` : ''}`, init: { method: op.method, headers, body } }
    })
}

/** The statuses of 5xx an operation documents (e.g. 503: no LLM configured); any other 5xx is a bug. */
async function documented5xx(): Promise<Map<string, Set<number>>> {
  const doc = (await (await app.request('/openapi.json')).json()) as {
    paths: Record<string, Record<string, { responses?: Record<string, unknown> }>>
  }
  const out = new Map<string, Set<number>>()
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      out.set(
        `${method.toUpperCase()} ${path}`,
        new Set(
          Object.keys(op.responses ?? {})
            .map(Number)
            .filter(s => s >= 500 && s !== 500)
        )
      )
    }
  }
  return out
}

test('every operation of /openapi.json answers hostile input with a 4xx problem+json (or its documented answer), never a 500', async () => {
  assert.ok(operations.length >= 15, `walked ${operations.length} operations`)
  const allowed5xx = await documented5xx()
  const failures: string[] = []
  const statuses = new Map<number, number>()
  for (const [i, op] of operations.entries()) {
    // Seeded samples (the same requests every run); every one is sent, and every broken answer is listed.
    for (const { url, init } of fc.sample(requestFor(op), { seed: SEED + i, numRuns: RUNS_PER_OPERATION })) {
      let res: Response
      try {
        res = await app.request(url, init)
      } catch (err) {
        if (err instanceof TypeError && /URL|header|ByteString/i.test(err.message)) continue // not a request a client can send
        throw err
      }
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1)
      const type = res.headers.get('content-type') ?? ''
      const text = await res.text()
      const where = `${init.method} ${url.slice(0, 160)} -> ${res.status} ${text.slice(0, 160)}`
      if (res.status >= 500 && !allowed5xx.get(`${op.method} ${op.path}`)?.has(res.status)) failures.push(where)
      else if (res.status >= 400 && !type.startsWith('application/problem+json'))
        failures.push(`not problem+json (${type}): ${where}`)
    }
  }
  assert.deepEqual(
    failures,
    [],
    `answers that broke the rules (statuses seen: ${JSON.stringify(Object.fromEntries(statuses))})`
  )
  assert.ok((statuses.get(400) ?? 0) + (statuses.get(404) ?? 0) > operations.length, 'the generator reached validation')
})

test('the app is healthy afterwards: /health and a normal request work', async () => {
  assert.equal((await app.request('/health')).status, 200)
  const ds = await app.request('/datasets/ds_c')
  assert.equal(ds.status, 200)
  assert.equal(((await ds.json()) as { status: string }).status, 'ready')
  const diff = await app.request('/diff?a=ds_c&b=ds_d&limit=3')
  assert.equal(diff.status, 200)
  assert.equal(((await diff.json()) as { latents: unknown[] }).latents.length, 3)
})

test('the known 500s are now 4xx problem+json: odd dataset ids and rows', async () => {
  for (const id of ['-1', '{}', '%2500', '..%252f..%252f', enc('😀'), '%20', 'a'.repeat(129)]) {
    for (const method of ['GET', 'DELETE']) {
      const res = await app.request(`/datasets/${id}`, { method })
      assert.ok(res.status === 400 || res.status === 404, `${method} /datasets/${id}: ${res.status}`)
      assert.equal(res.headers.get('content-type'), 'application/problem+json')
    }
  }
  for (const row of ['0x10', '%20', '-1', '1.5', '1e3', 'abc', '99999999999999999999']) {
    const res = await app.request(`/datasets/ds_c/documents/${row}`)
    assert.ok(res.status === 400 || res.status === 404, `row ${row}: ${res.status}`)
    assert.equal(res.headers.get('content-type'), 'application/problem+json')
  }
  assert.equal((await app.request('/datasets/ds_c/documents/3')).status, 200)
})
