/** @module Tests of the LLM options of /search (expand, rerank) and /clusters (axis, nameClusters), the LLM analyses as jobs, and the 503s without an LLM, against a scripted loopback LLM. */
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
import { OfflineEmbedder } from '@latentbase/shared/embeddings/offline'
import { SearchResult } from '@latentbase/shared/contract/search'
import { ClustersResult } from '@latentbase/shared/contract/clusters'
import { DryRunEstimate, HypothesesResult, VerifyResult } from '@latentbase/shared/contract/llm'
import type { AnalysisQueueMessage, AnalysisJobMessage } from '@latentbase/shared/contract/analysis-job'
import type { JobQueue } from '@latentbase/shared/queue/job-queue'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { createApp } from '../app.ts'
import { computeClusters } from '../services/clusters-service.ts'
import { readDocuments } from '@latentbase/shared/store/documents/read'
import { layout } from '@latentbase/shared/store/layout'
import type { AppDeps } from '../deps.ts'
import { getJob, runAnalysisJob, readResultPage } from '../services/analysis-jobs.ts'
import { analysesClient } from '@latentbase/sdk/analyses'
import { llmClient } from '@latentbase/sdk/llm'

const TENANT = 'local'
const N_DOCS = 120
let failNaming = 0
let rerankMalformed = false
let selectMalformed = false

function scripted(req: RecordedRequest): ScriptedReply {
  const user = userText(req)
  const system = req.messages[0]?.content ?? ''
  if (/expand search queries/.test(system))
    return { json: { keywords: [MARKER, 'protocol'], phrases: [`mentions of the ${MARKER} protocol`] } }
  if (/choose text features/.test(system)) {
    if (selectMalformed) return { json: { latents: 'the first' } }
    const ids = [...user.matchAll(/^(\d+): (.*)$/gm)].map(m => ({ id: Number(m[1]), label: m[2] }))
    const marker = ids.find(x => x.label.includes(MARKER))
    return { json: { latents: [marker?.id ?? -1, 9999, 0] } } // 9999 is made up: dropped
  }
  if (/rank search results/.test(system)) {
    if (rerankMalformed) return { content: 'the first one is best' }
    const n = [...user.matchAll(/^\[(\d+)\]$/gm)].length
    return { json: { ranking: Array.from({ length: n }, (_, i) => n - i) } } // reversed
  }
  if (/clustering documents along an axis/.test(system))
    return { json: { phrases: [`mentions of the ${MARKER} protocol`, 'sentence openings'] } }
  if (/name clusters/.test(system)) {
    if (failNaming > 0) {
      failNaming--
      return { status: 500 }
    }
    return {
      json: { name: user.includes(MARKER) ? `${MARKER} documents` : 'Other documents', description: 'What they share.' }
    }
  }
  if (/^Latent \d+:/m.test(user))
    return { json: { hypotheses: [{ text: `This response mentions '${MARKER}'.`, latents: [MARKED_LATENT] }] } }
  const word = /Statement: [^\n]*'([^']+)'/.exec(user)?.[1]
  const doc = /<document>\n([\s\S]*)\n<\/document>/.exec(user)?.[1]
  if (word !== undefined && doc !== undefined) return { json: { answer: doc.includes(word) ? 'YES' : 'NO' } }
  return { content: 'unexpected prompt' }
}

/** An analysis queue that keeps what is sent: the tests run the jobs themselves. */
class Outbox implements Pick<JobQueue<AnalysisQueueMessage>, 'send'> {
  sent: AnalysisQueueMessage[] = []
  async send(m: AnalysisQueueMessage) {
    this.sent.push(m)
    return `m${this.sent.length}`
  }
}

let llm: ScriptedLlm
let client: LlmClient
let deps: AppDeps
let outbox: Outbox
let app: ReturnType<typeof createApp>
let bare: ReturnType<typeof createApp>

before(async () => {
  llm = await startScriptedLlm({ respond: scripted })
  const objects = new MemoryObjectStore()
  const datasets = new DatasetStore(objects)
  await writeMarkedDataset(objects, datasets, { tenant: TENANT, id: 'a', nDocs: N_DOCS, markerShare: 0.3, seed: 1 })
  await writeMarkedDataset(objects, datasets, { tenant: TENANT, id: 'b', nDocs: N_DOCS, markerShare: 0.05, seed: 2 })
  client = new LlmClient({
    baseURL: llm.baseURL,
    model: 'scripted',
    maxRetries: 0,
    jsonRetries: 0,
    concurrency: 8,
    prices: { inputPerMillion: 1, outputPerMillion: 2 }
  })
  outbox = new Outbox()
  deps = {
    objects,
    datasets,
    queue: {} as JobQueue<JobMessage>,
    encoders: markedCatalog(),
    mode: 'local',
    tenantOf: () => TENANT,
    embedder: new OfflineEmbedder(),
    analysisQueue: outbox as unknown as JobQueue<AnalysisQueueMessage>
  }
  app = createApp({ ...deps, llm: client })
  bare = createApp({ ...deps, env: {} })
})
after(() => llm.close())

const get = async (target: ReturnType<typeof createApp>, path: string) => {
  const res = await target.request(path)
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    body: (await res.json()) as Record<string, unknown>
  }
}
const post = async (
  target: ReturnType<typeof createApp>,
  path: string,
  body: unknown,
  headers: Record<string, string> = {}
) => {
  const res = await target.request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body)
  })
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    location: res.headers.get('location'),
    body: (await res.json()) as Record<string, unknown>
  }
}

test('without an LLM every LLM option and endpoint is a 503 problem naming the settings; everything else still answers', async () => {
  const llmNeeded = [
    await get(bare, '/search?dataset=a&q=protocol&method=bm25&expand=true'),
    await get(bare, '/search?dataset=a&q=protocol&method=bm25&rerank=true'),
    await post(bare, '/clusters', { dataset: 'a', k: 2, axis: 'secrecy' }),
    await post(bare, '/clusters', { dataset: 'a', k: 2, nameClusters: true }),
    await post(bare, '/diff/hypotheses?async=true', { a: 'a', b: 'b' }),
    await post(bare, '/hypotheses/verify', { a: 'a', b: 'b', hypotheses: ['x'] }, { prefer: 'respond-async' }),
    await post(bare, '/encoders/marked/relabel', { dataset: 'a' })
  ]
  for (const r of llmNeeded) {
    assert.equal(r.status, 503)
    assert.match(String(r.type), /application\/problem\+json/)
    assert.equal(r.body.code, 'llm-not-configured')
    assert.match(String(r.body.detail), /LLM_BASE_URL/)
  }
  assert.equal(outbox.sent.length, 0, 'nothing was queued')
  assert.equal((await get(bare, '/search?dataset=a&q=protocol&method=bm25')).status, 200)
  assert.equal((await get(bare, '/diff?a=a&b=b')).status, 200)
  assert.equal((await post(bare, '/clusters', { dataset: 'a', k: 2 })).status, 200)
  const misconfigured = createApp({
    ...deps,
    env: { LLM_BASE_URL: 'http://127.0.0.1:1/v1', LLM_MODEL: 'm', LLM_PRICE_IN: '1' }
  })
  assert.equal(
    (await get(misconfigured, '/search?dataset=a&q=x&method=bm25&expand=true')).body.code,
    'llm-misconfigured'
  )
})

test("expand=true: the keywords reach BM25 and the phrases pick latents; the usage is the server's", async () => {
  const plain = SearchResult.parse((await get(app, '/search?dataset=a&q=secret%20handshake&method=bm25&limit=50')).body)
  assert.equal(plain.matched, 0)
  assert.equal(plain.usage, undefined)
  const before = llm.usage()
  const expanded = SearchResult.parse(
    (await get(app, '/search?dataset=a&q=secret%20handshake&method=bm25&limit=50&expand=true')).body
  )
  const spent = {
    calls: llm.usage().calls - before.calls,
    inputTokens: llm.usage().inputTokens - before.inputTokens,
    outputTokens: llm.usage().outputTokens - before.outputTokens
  }
  assert.deepEqual(expanded.expansion?.keywords, [MARKER, 'protocol'])
  assert.equal(expanded.matched, Math.round(0.3 * N_DOCS), 'the marked documents, found through the keyword')
  for (const hit of expanded.results.slice(0, expanded.matched))
    assert.ok(hit.snippet.includes(MARKER) || hit.score > 0)
  assert.equal(expanded.usage?.calls, spent.calls)
  assert.equal(expanded.usage?.inputTokens, spent.inputTokens)
  assert.equal(expanded.usage?.outputTokens, spent.outputTokens)
  assert.ok(expanded.usage!.cost! > 0)

  const sae = SearchResult.parse(
    (await get(app, '/search?dataset=a&q=secret%20handshake&method=sae&k=1&expand=true')).body
  )
  assert.equal(sae.latents[0].latent, MARKED_LATENT, "the phrase matched the marker latent's label")
  assert.equal(sae.latents[0].labelSource, 'imported')
  assert.equal(sae.latents[0].labelScore, null)
})

test('select=true: the LLM keeps and orders latents among the closest labels; made-up ids are dropped; a bad answer falls back to similarity', async () => {
  const r = SearchResult.parse(
    (await get(app, '/search?dataset=a&q=secret%20handshake&method=sae&k=2&select=true')).body
  )
  assert.deepEqual(
    r.latents.map(l => l.latent),
    [MARKED_LATENT, 0]
  )
  assert.equal(r.selected, 2)
  assert.ok(r.latents[0].weight > r.latents[1].weight, "weights follow the LLM's order")
  const prompt = userText(llm.requests.at(-1)!)
  assert.equal(
    [...prompt.matchAll(/^(\d+): /gm)].length,
    24,
    'every labelled latent is a candidate (fewer than 100 here)'
  )
  const sent = llm.requests.length
  const estimate = DryRunEstimate.parse(
    (await get(app, '/search?dataset=a&q=secret%20handshake&method=sae&k=2&select=true&dryRun=true')).body
  )
  assert.equal(llm.requests.length, sent)
  assert.equal(estimate.steps[0].step, 'select')
  assert.equal(estimate.inputTokens, r.usage!.inputTokens, 'the selection prompt is planned exactly')

  selectMalformed = true
  try {
    const plain = SearchResult.parse((await get(app, '/search?dataset=a&q=secret%20handshake&method=sae&k=2')).body)
    const fallback = SearchResult.parse(
      (await get(app, '/search?dataset=a&q=secret%20handshake&method=sae&k=2&select=true')).body
    )
    assert.equal(fallback.selected, 0)
    assert.deepEqual(
      fallback.latents.map(l => l.latent),
      plain.latents.map(l => l.latent)
    )
    assert.equal(fallback.failed?.[0].step, 'select')
  } finally {
    selectMalformed = false
  }
  assert.equal((await get(bare, '/search?dataset=a&q=x&select=true')).body.code, 'llm-not-configured')
})

test("rerank=true: the top 50 come back in the LLM's order; a malformed answer keeps the order and says so", async () => {
  const base = SearchResult.parse((await get(app, '/search?dataset=a&q=protocol%20report&method=bm25&limit=50')).body)
  const reranked = SearchResult.parse(
    (await get(app, '/search?dataset=a&q=protocol%20report&method=bm25&limit=20&rerank=true')).body
  )
  assert.equal(reranked.reranked, 50)
  assert.deepEqual(
    reranked.results.map(r => r.row),
    base.results
      .map(r => r.row)
      .reverse()
      .slice(0, 20)
  )
  assert.equal(reranked.usage?.steps[0].step, 'rerank')
  const prompt = userText(llm.requests.at(-1)!)
  assert.equal([...prompt.matchAll(/^\[(\d+)\]$/gm)].length, 50)

  // The dry run plans both calls and spends nothing; the run then spends what it said (usage scale 1: exactly).
  const sent = llm.requests.length
  const estimate = DryRunEstimate.parse(
    (await get(app, '/search?dataset=a&q=protocol%20report&method=bm25&limit=20&rerank=true&expand=true&dryRun=true'))
      .body
  )
  assert.equal(llm.requests.length, sent)
  assert.deepEqual(
    estimate.steps.map(x => x.step),
    ['expand', 'rerank']
  )
  const both = SearchResult.parse(
    (await get(app, '/search?dataset=a&q=protocol%20report&method=bm25&limit=20&rerank=true&expand=true')).body
  )
  assert.ok(
    Math.abs(estimate.inputTokens - both.usage!.inputTokens) / both.usage!.inputTokens < 0.1,
    `${estimate.inputTokens} vs ${both.usage!.inputTokens}`
  )
  assert.equal(estimate.calls, both.usage!.calls)
  assert.equal((await get(bare, '/search?dataset=a&q=x&method=bm25&rerank=true&dryRun=true')).status, 503)

  rerankMalformed = true
  try {
    const kept = SearchResult.parse(
      (await get(app, '/search?dataset=a&q=protocol%20report&method=bm25&limit=20&rerank=true')).body
    )
    assert.equal(kept.reranked, 0)
    assert.deepEqual(
      kept.results.map(r => r.row),
      base.results.map(r => r.row).slice(0, 20)
    )
    assert.equal(kept.failed?.[0].step, 'rerank')
    assert.equal(kept.failed?.[0].kind, 'malformed-output')
  } finally {
    rerankMalformed = false
  }
})

test('clusters fitted on a sample are named at the merge, from their final central documents', async () => {
  const ctx = {
    objects: deps.objects,
    datasets: deps.datasets,
    encoders: deps.encoders,
    embedder: deps.embedder!,
    tenant: TENANT,
    llm: client
  }
  const sent = llm.requests.length
  // 120 documents, a sample of 100, parts of 50: fitted, then assigned in 3 parts and merged in this process.
  const result = await computeClusters(
    ctx,
    { dataset: 'a', k: 2, nameClusters: true, seed: 1, sampleMaxDocs: 100 },
    undefined,
    50
  )
  assert.deepEqual(result.fit, { sample: 100, of: N_DOCS, parts: 3, assign: 'nearest-centroid' })
  assert.ok(result.clusters.every(c => typeof c.name === 'string' && c.name.length > 0))
  assert.equal(result.usage?.calls, 2, 'one naming call per cluster, none at the fit')
  assert.deepEqual(result.failed, [])
  const naming = llm.requests.slice(sent).map(userText)
  assert.equal(naming.length, 2)
  const m = (await deps.datasets.getManifest(TENANT, 'a'))!
  const docs = await readDocuments(deps.objects, layout.datasetPrefix(TENANT, 'a'), m.documents.files, undefined, [
    'text'
  ])
  for (const c of result.clusters)
    assert.ok(
      naming.some(prompt => c.central.every(row => prompt.includes(String(docs.text[row])))),
      `cluster ${c.id} was named from its central rows ${c.central}`
    )
})

test('clusters: axis -> key phrases -> latents; nameClusters names each cluster; a failed name is null and reported', async () => {
  const r = await post(app, '/clusters', { dataset: 'a', k: 2, axis: 'secret procedures', nameClusters: true, seed: 1 })
  assert.equal(r.status, 200)
  const result = ClustersResult.parse(r.body)
  assert.deepEqual(result.axis, {
    text: 'secret procedures',
    phrases: [`mentions of the ${MARKER} protocol`, 'sentence openings']
  })
  assert.equal(result.phrases?.[0].latents[0], MARKED_LATENT)
  assert.ok(result.clusters.every(c => typeof c.name === 'string' && c.name.length > 0))
  assert.ok(
    result.clusters.some(c => c.name === `${MARKER} documents`),
    'the cluster whose features name the marker is named for it'
  )
  assert.equal(result.usage?.calls, 1 + 2)
  assert.deepEqual(result.failed, [])

  const sent = llm.requests.length
  const estimate = DryRunEstimate.parse(
    (await post(app, '/clusters', { dataset: 'a', k: 2, axis: 'secret procedures', nameClusters: true, dryRun: true }))
      .body
  )
  assert.equal(llm.requests.length, sent, 'a dry run spends nothing')
  assert.equal(estimate.calls, result.usage!.calls)
  assert.deepEqual(
    estimate.steps.map(x => x.step),
    ['axis', 'name-clusters']
  )
  const axisSpent = result.usage!.steps.find(x => x.step === 'axis')!.inputTokens
  assert.equal(estimate.steps[0].inputTokens, axisSpent, 'the axis call is planned exactly')
  const nameSpent = result.usage!.steps.find(x => x.step === 'name-clusters')!.inputTokens
  assert.ok(
    Math.abs(estimate.steps[1].inputTokens - nameSpent) / nameSpent < 0.2,
    `naming: ${estimate.steps[1].inputTokens} planned vs ${nameSpent} spent`
  )

  failNaming = 1
  const partial = ClustersResult.parse(
    (await post(app, '/clusters', { dataset: 'a', k: 2, nameClusters: true, seed: 1 })).body
  )
  assert.equal(partial.clusters.filter(c => c.name === null).length, 1)
  assert.equal(partial.failed?.length, 1)
  assert.equal(partial.failed?.[0].kind, 'request-failed')
  assert.equal(
    (await post(app, '/clusters', { dataset: 'a', k: 2, axis: 'x', phrases: ['y'] })).status,
    400,
    'axis and phrases both choose latents'
  )
})

test('hypotheses, verification and relabel as analysis jobs: 202 + Location, the consumer runs them with its LLM, results equal the direct answers', async () => {
  const jobDeps = {
    objects: deps.objects,
    datasets: deps.datasets,
    encoders: deps.encoders,
    embedder: deps.embedder!,
    queue: outbox as unknown as JobQueue<AnalysisQueueMessage>,
    llm: client
  }
  const direct = HypothesesResult.parse((await post(app, '/diff/hypotheses', { a: 'a', b: 'b', max: 3 })).body)
  const accepted = await post(app, '/diff/hypotheses?async=true', { a: 'a', b: 'b', max: 3 })
  assert.equal(accepted.status, 202)
  const id = (accepted.body.job as { id: string }).id
  assert.equal(accepted.location, `/jobs/${id}`)
  await runAnalysisJob(jobDeps, outbox.sent.at(-1) as AnalysisJobMessage)
  const record = (await getJob(deps.objects, TENANT, id))!
  assert.equal(record.status, 'ready')
  assert.equal(record.analysis, 'hypotheses')
  const fromJob = HypothesesResult.parse((await readResultPage(deps.objects, record, 0, 10)).result)
  assert.deepEqual(fromJob.hypotheses, direct.hypotheses)
  assert.deepEqual(fromJob.usedRows, direct.usedRows)

  const verifyBody = {
    a: 'a',
    b: 'b',
    hypotheses: fromJob.hypotheses.map(h => h.text),
    perDataset: 20,
    exclude: fromJob.usedRows
  }
  const v = await post(app, '/hypotheses/verify', verifyBody, { prefer: 'respond-async' })
  assert.equal(v.status, 202)
  await runAnalysisJob(jobDeps, outbox.sent.at(-1) as AnalysisJobMessage)
  const vr = (await getJob(deps.objects, TENANT, (v.body.job as { id: string }).id))!
  assert.equal(vr.status, 'ready')
  const verified = VerifyResult.parse((await readResultPage(deps.objects, vr, 0, 10)).result)
  const directVerify = VerifyResult.parse((await post(app, '/hypotheses/verify', verifyBody)).body)
  assert.deepEqual(verified.hypotheses, directVerify.hypotheses)

  // A webhook makes it a job too, with a generated secret; the job's end is queued for delivery.
  const hooked = await post(app, '/diff/hypotheses', {
    a: 'a',
    b: 'b',
    max: 2,
    webhook: { url: 'http://127.0.0.1:9/hook' }
  })
  assert.equal(hooked.status, 202)
  assert.match(String(hooked.body.webhookSecret), /^whsec_/)
  await runAnalysisJob(jobDeps, outbox.sent.at(-1) as AnalysisJobMessage)
  const event = outbox.sent.at(-1) as { kind: string; event?: string }
  assert.equal(event.kind, 'webhook')
  assert.equal(event.event, 'analysis.ready')

  // A dry run is answered directly even with async=true.
  assert.equal((await post(app, '/diff/hypotheses?async=true', { a: 'a', b: 'b', dryRun: true })).status, 200)

  // A relabel job on a dataset without top examples fails once with the reason; a consumer without an LLM fails with llm-not-configured.
  const rl = await post(app, '/encoders/marked/relabel?async=true', { dataset: 'a', latents: [1] })
  assert.equal(rl.status, 202)
  await runAnalysisJob(jobDeps, outbox.sent.at(-1) as AnalysisJobMessage)
  const rlRecord = (await getJob(deps.objects, TENANT, (rl.body.job as { id: string }).id))!
  assert.equal(rlRecord.status, 'failed')
  assert.equal(rlRecord.error?.code, 'no-examples')
  const noLlm = await post(app, '/diff/hypotheses?async=true', { a: 'a', b: 'b' })
  await runAnalysisJob({ ...jobDeps, llm: null }, outbox.sent.at(-1) as AnalysisJobMessage)
  const failed = (await getJob(deps.objects, TENANT, (noLlm.body.job as { id: string }).id))!
  assert.equal(failed.status, 'failed')
  assert.equal(failed.error?.code, 'llm-not-configured')
})

test('the SDK passes expand, rerank, axis and nameClusters, and submits LLM jobs', async () => {
  const call = async <T>(
    schema: { parse(x: unknown): T } | null,
    method: string,
    path: string,
    body?: unknown
  ): Promise<T> => {
    const res = await app.request(path, {
      method,
      headers: { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) })
    })
    const json = await res.json()
    if (res.status >= 400) throw new Error(JSON.stringify(json))
    return (schema ? schema.parse(json) : json) as T
  }
  const analyses = analysesClient(call as never)
  const s = await analyses.search({
    dataset: 'a',
    q: 'secret handshake',
    method: 'bm25',
    expand: true,
    rerank: true,
    limit: 5
  })
  assert.ok(
    s.expansion && s.reranked === Math.min(50, s.matched) && s.reranked > 1 && s.usage?.calls === 2,
    JSON.stringify({ e: s.expansion, r: s.reranked, u: s.usage?.calls })
  )
  assert.equal(
    (await analyses.estimateSearch({ dataset: 'a', q: 'secret handshake', select: true, rerank: true })).steps.length,
    2
  )
  assert.equal((await analyses.estimateClusters({ dataset: 'a', k: 3, nameClusters: true })).calls, 3)
  const c = await analyses.clusters({ dataset: 'a', k: 2, axis: 'secret procedures', nameClusters: true })
  assert.ok(c.axis && c.clusters.every(x => x.name))
  const jobs = llmClient(call as never)
  const accepted = await jobs.hypotheses.submit({ a: 'a', b: 'b', max: 2 })
  assert.equal(accepted.job.status, 'queued')
  const relabel = await jobs.labels.submit('marked', { dataset: 'a', latents: [1] })
  assert.ok(relabel.job.id)
})

test('the new options and endpoint are in the OpenAPI document', async () => {
  const doc = (await get(app, '/openapi.json')).body as {
    paths: Record<string, Record<string, { parameters?: Array<{ name: string }> }>>
  }
  assert.ok(doc.paths['/encoders/{id}/relabel']?.post)
  const names = doc.paths['/search'].get.parameters!.map(p => p.name)
  assert.ok(names.includes('expand') && names.includes('rerank'))
  assert.ok(doc.paths['/diff/hypotheses'].post.parameters!.some(p => p.name === 'async'))
})
