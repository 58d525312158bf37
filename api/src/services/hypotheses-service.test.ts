/** @module Tests of hypotheses from a diff against a scripted LLM: what the prompt shows (labels, activating and non-activating examples), citations, failures and the dry-run estimate. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { LlmClient } from '@latentbase/shared/llm/client'
import {
  startScriptedLlm,
  lastUserMessage,
  type ScriptedLlm,
  type RecordedRequest,
  type ScriptedReply
} from '@latentbase/shared/llm/testkit'
import { writeMarkedDataset, markedCatalog, MARKER, MARKED_LATENT } from '@latentbase/shared/llm/corpus-fixture'
import { HypothesesResult, DryRunEstimate, DEFAULT_QUESTION } from '@latentbase/shared/contract/llm'
import { OfflineEmbedder } from '@latentbase/shared/embeddings/offline'
import type { AnalysisContext } from './context.ts'
import { generateHypotheses, hypothesesMessages, type ShownExample } from './hypotheses-service.ts'

const TENANT = 'local'
let llm: ScriptedLlm
let ctx: AnalysisContext
let markedA: Uint8Array
let markedB: Uint8Array

/** Writes as many hypotheses as asked, citing the latents listed in the prompt (and one that was not shown). */
function writer(req: RecordedRequest): ScriptedReply {
  const user = lastUserMessage(req)
  const max = Number(/at most (\d+) hypotheses/.exec(user)?.[1] ?? 1)
  const shown = [...user.matchAll(/^Latent (\d+):/gm)].map(m => Number(m[1]))
  const hypotheses = [{ text: `This response mentions the ${MARKER} protocol.`, latents: [MARKED_LATENT, 999] }]
  for (let i = 1; i < max; i++)
    hypotheses.push({
      text: `This response has property number ${i} of latent ${shown[i % shown.length]}, described at some length.`,
      latents: [shown[i % shown.length]]
    })
  return { json: { hypotheses } }
}

before(async () => {
  llm = await startScriptedLlm({ respond: writer })
  const objects = new MemoryObjectStore()
  const datasets = new DatasetStore(objects)
  markedA = await writeMarkedDataset(objects, datasets, {
    tenant: TENANT,
    id: 'a',
    nDocs: 300,
    markerShare: 0.3,
    seed: 1
  })
  markedB = await writeMarkedDataset(objects, datasets, {
    tenant: TENANT,
    id: 'b',
    nDocs: 300,
    markerShare: 0.1,
    seed: 2
  })
  ctx = { objects, datasets, encoders: markedCatalog(), embedder: new OfflineEmbedder(), tenant: TENANT }
})
after(() => llm.close())

const client = (extra = {}) =>
  new LlmClient({ baseURL: llm.baseURL, model: 'writer-1', maxRetries: 0, timeoutMs: 5000, jsonRetries: 2, ...extra })

test('the top latent with its label, an activating example of A and a non-activating one of B go to the LLM; citations are checked', async () => {
  llm.requests.length = 0
  const r = HypothesesResult.parse(await generateHypotheses(ctx, client(), { a: 'a', b: 'b', max: 3 }))
  assert.equal(llm.requests.length, 1)
  const prompt = lastUserMessage(llm.requests[0])
  assert.ok(prompt.startsWith(DEFAULT_QUESTION), "the paper's default question")
  assert.match(prompt, /at most 3 hypotheses/)
  assert.equal(r.latents[0].latent, MARKED_LATENT, 'the planted latent tops the diff')
  assert.ok(r.latents.every(l => l.difference >= 0.03))
  const block = prompt
    .split('\n\n')
    .findIndex(p => p.startsWith(`Latent ${MARKED_LATENT}: mentions of the ${MARKER} protocol`))
  assert.ok(block >= 0, 'the label is shown')
  const [activating, nonActivating] = [
    ...prompt.slice(prompt.indexOf(`Latent ${MARKED_LATENT}:`)).matchAll(/<example>\n([\s\S]*?)\n<\/example>/g)
  ].map(m => m[1])
  assert.ok(activating.includes(MARKER) && !nonActivating.includes(MARKER))
  const shown = r.latents[0]
  assert.equal(markedA[shown.activatingRow!], 1)
  assert.equal(markedB[shown.nonActivatingRow!], 0)
  assert.ok(activating.startsWith(`Document a-${shown.activatingRow}.`))
  assert.ok(nonActivating.startsWith(`Document b-${shown.nonActivatingRow}.`))
  assert.equal(r.hypotheses.length, 3)
  assert.deepEqual(
    r.hypotheses[0],
    { id: 0, text: `This response mentions the ${MARKER} protocol.`, latents: [MARKED_LATENT] },
    'latent 999 was not shown: dropped'
  )
  assert.ok(r.usedRows.a.includes(shown.activatingRow!) && r.usedRows.b.includes(shown.nonActivatingRow!))
  assert.equal(r.usage.calls, 1)
  assert.equal(r.usage.cost, null)
  assert.equal(r.failed.length, 0)
})

test('malformed answers are retried, then reported as a failed item with the raw text and the tokens spent', async () => {
  llm.requests.length = 0
  llm.enqueue(
    { content: 'Here are my thoughts: A is nicer.' },
    { json: { hypotheses: 'none' } },
    { content: '{"hypotheses": [' }
  )
  const r = HypothesesResult.parse(await generateHypotheses(ctx, client(), { a: 'a', b: 'b', max: 2 }))
  assert.equal(llm.requests.length, 3)
  assert.deepEqual(r.hypotheses, [])
  assert.equal(r.failed.length, 1)
  assert.equal(r.failed[0].kind, 'malformed-output')
  assert.equal(r.failed[0].raw, '{"hypotheses": [')
  assert.equal(r.usage.calls, 3)
  assert.equal(r.usage.inputTokens, llm.usage().inputTokens)
  assert.ok(r.latents.length > 0, 'the diff part of the result stands')
  llm.enqueue({ status: 500 })
  const down = HypothesesResult.parse(await generateHypotheses(ctx, client(), { a: 'a', b: 'b' }))
  assert.equal(down.failed[0].kind, 'request-failed')
})

test('dry run: no call, and the estimate is within 10% of the tokens then spent', async () => {
  const c = client({ prices: { inputPerMillion: 3, outputPerMillion: 15 } })
  llm.requests.length = 0
  const est = DryRunEstimate.parse(await generateHypotheses(ctx, c, { a: 'a', b: 'b', max: 10, dryRun: true }))
  assert.equal(llm.requests.length, 0)
  const r = HypothesesResult.parse(await generateHypotheses(ctx, c, { a: 'a', b: 'b', max: 10 }))
  assert.equal(est.inputTokens, r.usage.inputTokens, 'the prompt is known exactly')
  const spent = r.usage.inputTokens + r.usage.outputTokens
  const rel = Math.abs(est.inputTokens + est.outputTokens - spent) / spent
  assert.ok(rel < 0.1, `estimate off by ${(100 * rel).toFixed(1)}%`)
  assert.ok(Math.abs(est.cost! - (3 * est.inputTokens + 15 * est.outputTokens) / 1e6) < 1e-12)
})

test('no latent above minDifference is a 422 no-differences', async () => {
  await assert.rejects(
    generateHypotheses(ctx, client(), { a: 'a', b: 'b', minDifference: 0.9 }),
    (e: { status?: number; code?: string }) => e.status === 422 && e.code === 'no-differences'
  )
})

test('slices: examples come from the slices, and two slices of one dataset are two sides', async () => {
  // Token counts are text length / 4: a slice of the shorter documents of a, against the longer ones of a.
  const { readDocuments } = await import('@latentbase/shared/store/documents/read')
  const manifest = (await ctx.datasets.getManifest(TENANT, 'a'))!
  const docs = await readDocuments(ctx.objects, `${TENANT}/datasets/a/`, manifest.documents.files, undefined, [
    'token_count'
  ])
  const sorted = Array.from(docs.token_count).sort((x, y) => x - y)
  const median = sorted[sorted.length >> 1]
  const short = (row: number) => docs.token_count[row] < median
  llm.requests.length = 0
  const r = HypothesesResult.parse(
    await generateHypotheses(ctx, client(), {
      a: 'a',
      aWhere: `tokens < ${median}`,
      b: ['a', 'b'],
      bWhere: [{ tokens: { gte: median } }, ''],
      max: 2,
      minDifference: 0
    })
  )
  assert.equal(llm.requests.length, 1)
  assert.ok(r.latents.length > 0)
  for (const l of r.latents) {
    if (l.activatingRow !== null)
      assert.ok(short(l.activatingRow), `activating row ${l.activatingRow} is in the slice of a`)
    if (l.nonActivatingRow !== null && l.against === 'a')
      assert.ok(!short(l.nonActivatingRow), `non-activating row ${l.nonActivatingRow} is in the slice of b`)
  }
  await assert.rejects(
    generateHypotheses(ctx, client(), { a: 'a', aWhere: 'tokens < 5', b: ['a', 'b'], bWhere: ['tokens >= 5'] }),
    /bWhere has 1 slice\(s\) for 2 b dataset/
  )
})

test('a latent without a label is described to the LLM by the token it peaks on, when the diff has one', () => {
  const base: ShownExample = {
    latent: 5,
    label: null,
    frequencyA: 0.4,
    frequencyB: 0.1,
    difference: 0.3,
    against: 'b',
    activating: 'text a',
    nonActivating: 'text b'
  }
  const userOf = (shown: ShownExample[]) => String(hypothesesMessages('q', 3, shown)[1].content)
  assert.match(
    userOf([{ ...base, peak: { token: MARKER, count: 4, examples: 8 } }]),
    new RegExp(`^Latent 5: \\(no label; it peaks on the token "${MARKER}" in 4 of its 8 strongest examples\\)$`, 'm')
  )
  assert.match(userOf([base]), /^Latent 5: \(no label\)$/m)
  assert.match(
    userOf([{ ...base, label: 'a label', peak: { token: MARKER, count: 4, examples: 8 } }]),
    /^Latent 5: a label$/m
  )
})
