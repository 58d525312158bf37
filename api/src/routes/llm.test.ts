/** @module Tests of the LLM routes over a labelled store and a scripted loopback LLM: 503 without an LLM, validation, hypotheses, verification, dry runs, and the SDK methods over the same app. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { LlmClient } from '@latentbase/shared/llm/client'
import {
  startScriptedLlm,
  userText,
  type ScriptedLlm,
  type RecordedRequest,
  type ScriptedReply
} from '@latentbase/shared/llm/testkit'
import { writeMarkedDataset, markedCatalog, MARKER, MARKED_LATENT } from '@latentbase/shared/llm/corpus-fixture'
import { HypothesesResult, VerifyResult, DryRunEstimate } from '@latentbase/shared/contract/llm'
import type { JobQueue } from '@latentbase/shared/queue/job-queue'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { createApp } from '../app.ts'
import type { AppDeps } from '../deps.ts'
import { llmClient } from '@latentbase/sdk/llm'

const TENANT = 'local'
let llm: ScriptedLlm
let deps: AppDeps
let app: ReturnType<typeof createApp>
let bare: ReturnType<typeof createApp>

function scripted(req: RecordedRequest): ScriptedReply {
  const user = userText(req)
  if (/^Latent \d+:/m.test(user))
    return {
      json: {
        hypotheses: [
          { text: `This response mentions '${MARKER}'.`, latents: [MARKED_LATENT] },
          { text: "This response mentions a 'river'.", latents: [] }
        ]
      }
    }
  const word = /Statement: [^\n]*'([^']+)'/.exec(user)?.[1]
  const doc = /<document>\n([\s\S]*)\n<\/document>/.exec(user)?.[1]
  if (word === undefined || doc === undefined) return { content: 'unsure' }
  return { json: { answer: doc.includes(word) ? 'YES' : 'NO' } }
}

before(async () => {
  llm = await startScriptedLlm({ respond: scripted })
  const objects = new MemoryObjectStore()
  const datasets = new DatasetStore(objects)
  await writeMarkedDataset(objects, datasets, { tenant: TENANT, id: 'a', nDocs: 300, markerShare: 0.3, seed: 1 })
  await writeMarkedDataset(objects, datasets, { tenant: TENANT, id: 'b', nDocs: 300, markerShare: 0.1, seed: 2 })
  deps = {
    objects,
    datasets,
    queue: {} as JobQueue<JobMessage>,
    encoders: markedCatalog(),
    mode: 'local',
    tenantOf: () => TENANT
  }
  app = createApp({
    ...deps,
    llm: new LlmClient({
      baseURL: llm.baseURL,
      model: 'scripted',
      maxRetries: 0,
      concurrency: 8,
      prices: { inputPerMillion: 0.5, outputPerMillion: 1.5 }
    })
  })
  bare = createApp({ ...deps, env: {} })
})
after(() => llm.close())

const post = async (target: ReturnType<typeof createApp>, path: string, body: unknown) => {
  const res = await target.request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    body: (await res.json()) as Record<string, unknown>
  }
}

test('without an LLM both endpoints answer 503 llm-not-configured naming the variables to set', async () => {
  for (const [path, body] of [
    ['/diff/hypotheses', { a: 'a', b: 'b' }],
    ['/hypotheses/verify', { a: 'a', b: 'b', hypotheses: ['x'] }]
  ] as const) {
    const r = await post(bare, path, body)
    assert.equal(r.status, 503, path)
    assert.equal(r.type, 'application/problem+json')
    assert.equal(r.body.code, 'llm-not-configured')
    for (const v of ['LLM_BASE_URL', 'LLM_MODEL', 'LLM_API_KEY', 'LLM_PRICE_IN', 'LLM_PRICE_OUT'])
      assert.match(String(r.body.detail), new RegExp(v))
  }
  const half = createApp({ ...deps, env: { LLM_BASE_URL: 'http://127.0.0.1:1/v1', LLM_MODEL: 'm', LLM_PRICE_IN: '1' } })
  const r = await post(half, '/diff/hypotheses', { a: 'a', b: 'b' })
  assert.equal(r.status, 503)
  assert.equal(r.body.code, 'llm-misconfigured')
  assert.match(String(r.body.detail), /LLM_PRICE_OUT/)
  assert.equal((await bare.request('/diff?a=a&b=b')).status, 200, 'everything else keeps working')
})

test('validation and dataset problems are problem+json', async () => {
  const cases: Array<[string, unknown, number, string]> = [
    ['/diff/hypotheses', { a: 'a', b: 'b', max: 11 }, 400, 'invalid-request'],
    ['/diff/hypotheses', { a: 'a' }, 400, 'invalid-request'],
    ['/hypotheses/verify', { a: 'a', b: 'b', hypotheses: [] }, 400, 'invalid-request'],
    ['/hypotheses/verify', { a: 'a', b: 'b', hypotheses: ['x'], perDataset: 0 }, 400, 'invalid-request'],
    ['/diff/hypotheses', { a: 'nope', b: 'b' }, 404, 'dataset-not-found'],
    ['/hypotheses/verify', { a: 'a', b: 'nope', hypotheses: ['x'] }, 404, 'dataset-not-found'],
    ['/diff/hypotheses', { a: 'a', b: 'b', minDifference: 0.95 }, 422, 'no-differences']
  ]
  for (const [path, body, status, code] of cases) {
    const r = await post(app, path, body)
    assert.equal(r.status, status, `${path} ${JSON.stringify(body)}`)
    assert.equal(r.type, 'application/problem+json')
    assert.equal(r.body.code, code)
  }
})

test('hypotheses, then verification on held-out rows, through HTTP; dry runs spend nothing', async () => {
  llm.requests.length = 0
  const est = DryRunEstimate.parse((await post(app, '/diff/hypotheses', { a: 'a', b: 'b', max: 2, dryRun: true })).body)
  assert.equal(llm.requests.length, 0)
  assert.ok(est.inputTokens > 0 && est.cost! > 0)
  const h = HypothesesResult.parse((await post(app, '/diff/hypotheses', { a: 'a', b: 'b', max: 2 })).body)
  assert.equal(h.hypotheses[0].latents[0], MARKED_LATENT)
  assert.ok(h.usage.cost! > 0)
  const body = {
    a: 'a',
    b: 'b',
    hypotheses: h.hypotheses.map(({ text, latents }) => ({ text, latents })),
    exclude: h.usedRows,
    perDataset: 120,
    seed: 1
  }
  const vest = DryRunEstimate.parse((await post(app, '/hypotheses/verify', { ...body, dryRun: true })).body)
  assert.equal(vest.calls, 2 * 240)
  const v = VerifyResult.parse((await post(app, '/hypotheses/verify', body)).body)
  assert.ok(!v.a.rows.some(r => h.usedRows.a.includes(r)) && !v.b.rows.some(r => h.usedRows.b.includes(r)))
  assert.ok(v.hypotheses[0].valid && v.hypotheses[0].significant)
  assert.ok(v.hypotheses[0].difference > 0.1 && v.hypotheses[0].difference < 0.3)
  assert.equal(
    v.usage.inputTokens + v.usage.outputTokens,
    vest.inputTokens + vest.outputTokens,
    'judge calls are estimated exactly'
  )
})

test('the SDK methods call the same endpoints and parse the contract', async () => {
  const call = async <T>(
    schema: { parse: (x: unknown) => T } | null,
    method: string,
    path: string,
    body?: unknown
  ): Promise<T> => {
    const res = await app.request(path, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body)
    })
    if (!res.ok) throw new Error(`${res.status} ${await res.text()}`)
    return schema ? schema.parse(await res.json()) : (undefined as T)
  }
  const sdk = llmClient(call as Parameters<typeof llmClient>[0])
  const est = await sdk.hypotheses.estimate({ a: 'a', b: 'b', max: 1 })
  assert.equal(est.dryRun, true)
  const { hypotheses, verification } = await sdk.hypotheses.createAndVerify({
    a: 'a',
    b: 'b',
    max: 2,
    perDataset: 60,
    baseline: true
  })
  assert.equal(hypotheses.hypotheses.length, 2)
  assert.ok(verification && verification.hypotheses.length === 2 && verification.baseline)
  assert.ok(!verification.a.rows.some(r => hypotheses.usedRows.a.includes(r)))
  // Slices given to createAndVerify reach both steps: the verification samples from them.
  const sliced = await sdk.hypotheses.createAndVerify({
    a: 'a',
    b: 'b',
    max: 2,
    perDataset: 60,
    aWhere: 'tokens >= 1',
    bWhere: [{ tokens: { gte: 1 } }]
  })
  assert.equal(sliced.verification?.a.where, 'tokens >= 1')
  assert.equal(sliced.verification?.b.where, 'tokens >= 1')
})

test('the endpoints are in the OpenAPI document', async () => {
  const doc = (await (await app.request('/openapi.json')).json()) as { paths: Record<string, { post?: unknown }> }
  assert.ok(doc.paths['/diff/hypotheses']?.post)
  assert.ok(doc.paths['/hypotheses/verify']?.post)
})
