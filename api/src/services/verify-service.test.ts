/** @module Tests of hypothesis verification against a scripted judge on a labelled corpus (marker in 30% of A, 10% of B): arithmetic, held-out rows, failures, dry runs and the baseline. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { LlmClient } from '@latentbase/shared/llm/client'
import {
  startScriptedLlm,
  lastUserMessage,
  userText,
  type ScriptedLlm,
  type RecordedRequest,
  type ScriptedReply
} from '@latentbase/shared/llm/testkit'
import { writeMarkedDataset, markedCatalog, MARKER } from '@latentbase/shared/llm/corpus-fixture'
import { newcombeDifferenceInterval } from '@latentbase/shared/analysis/stats'
import { VerifyResult, DryRunEstimate } from '@latentbase/shared/contract/llm'
import type { AnalysisContext } from './context.ts'
import { verifyHypotheses, sampleRows, llmAnalysisRunners } from './verify-service.ts'
import { OfflineEmbedder } from '@latentbase/shared/embeddings/offline'

const TENANT = 'local'
let llm: ScriptedLlm
let ctx: AnalysisContext
let markedA: Uint8Array
let markedB: Uint8Array

/** The scripted judge: YES exactly when the document contains the word quoted in the statement. */
export function keywordJudge(req: RecordedRequest): ScriptedReply {
  const user = userText(req)
  if (user.startsWith('Statements:')) {
    const words = [...user.matchAll(/^\d+\. [^\n]*'([^'\n]+)'/gm)].map(m => m[1])
    const doc = /<document>\n([\s\S]*)\n<\/document>/.exec(user)?.[1] ?? ''
    return { json: { answers: words.map(w => (doc.toLowerCase().includes(w.toLowerCase()) ? 'YES' : 'NO')) } }
  }
  const word = /Statement: [^\n]*'([^']+)'/.exec(user)?.[1]
  const doc = /<document>\n([\s\S]*)\n<\/document>/.exec(user)?.[1]
  if (word === undefined || doc === undefined) return { content: 'I cannot tell.' }
  return { json: { answer: doc.toLowerCase().includes(word.toLowerCase()) ? 'YES' : 'NO' } }
}

const proposal = (text: string) => ({ text })
/** Proposer and summarizer of the baseline: it notices the marker when a sample of A shows it. */
function scripted(req: RecordedRequest): ScriptedReply {
  const system = req.messages[0]?.content ?? ''
  if (/comparing two datasets of texts, A and B, from samples/.test(system)) {
    const user = lastUserMessage(req)
    const sawMarker = /<A\d+>\n[^<]*ZORBLAX/.test(user)
    const max = Number(/at most (\d+)/.exec(user)?.[1] ?? 2)
    // As real models do when asked for "at most N", it writes N: the first depends on what the samples show.
    const texts = [
      sawMarker
        ? `This response mentions the '${MARKER}' protocol by name.`
        : "This response talks about a 'harbor' near the town.",
      "This response describes a 'lantern' at night."
    ]
    for (let k = 0; texts.length < max; k++)
      texts.push(
        `This response uses the word '${['copper', 'meadow', 'signal', 'winter', 'ledger', 'orchard', 'velvet', 'engine'][k % 8]}' in passing.`
      )
    return { json: { hypotheses: texts.slice(0, max).map(proposal) } }
  }
  if (/You merge lists of hypotheses/.test(system)) {
    const user = lastUserMessage(req)
    const max = Number(/at most (\d+)/.exec(user)?.[1] ?? 10)
    const texts = [...user.matchAll(/^- (.*)$/gm)].map(m => m[1])
    return { json: { hypotheses: [...new Set(texts)].slice(0, max).map(proposal) } }
  }
  return keywordJudge(req)
}

before(async () => {
  llm = await startScriptedLlm({ respond: scripted })
  const objects = new MemoryObjectStore()
  const datasets = new DatasetStore(objects)
  markedA = await writeMarkedDataset(objects, datasets, {
    tenant: TENANT,
    id: 'a',
    nDocs: 600,
    markerShare: 0.3,
    seed: 1
  })
  markedB = await writeMarkedDataset(objects, datasets, {
    tenant: TENANT,
    id: 'b',
    nDocs: 600,
    markerShare: 0.1,
    seed: 2
  })
  ctx = { objects, datasets, encoders: markedCatalog(), embedder: new OfflineEmbedder(), tenant: TENANT }
})
after(() => llm.close())

const client = (extra = {}) =>
  new LlmClient({
    baseURL: llm.baseURL,
    model: 'judge-1',
    maxRetries: 1,
    concurrency: 8,
    timeoutMs: 5000,
    prices: { inputPerMillion: 1, outputPerMillion: 4 },
    ...extra
  })
const MARKER_HYP = `This response mentions '${MARKER}'.`
const NULL_HYP = "This response mentions a 'river'."

test('the verified difference of a 30% vs 10% marker is ~20 points, equal to the sample truth, with a covering interval', async () => {
  llm.requests.length = 0
  const exclude = { a: Array.from({ length: 50 }, (_, i) => i), b: [0, 1, 2] }
  const r = VerifyResult.parse(
    await verifyHypotheses(ctx, client(), {
      a: 'a',
      b: 'b',
      hypotheses: [MARKER_HYP, { text: NULL_HYP, latents: [3] }],
      perDataset: 250,
      seed: 7,
      exclude
    })
  )
  assert.equal(r.a.judged, 250)
  assert.equal(r.b.judged, 250)
  assert.equal(r.a.excluded, 50)
  assert.ok(
    r.a.rows.every(row => row >= 50),
    'held-out rows are never judged'
  )
  assert.ok(!r.b.rows.some(row => row < 3))
  assert.equal(new Set(r.a.rows).size, 250)
  const truthA = r.a.rows.filter(row => markedA[row]).length
  const truthB = r.b.rows.filter(row => markedB[row]).length
  const [h, n] = r.hypotheses
  assert.equal(h.yesA, truthA)
  assert.equal(h.yesB, truthB)
  assert.ok(Math.abs(h.difference - (truthA - truthB) / 250) < 1e-12)
  assert.ok(Math.abs(h.difference - 0.2) < 0.08, `difference ${h.difference}`)
  assert.ok(h.ci95[0] <= 0.2 && 0.2 <= h.ci95[1], `interval ${h.ci95}`)
  assert.deepEqual(h.ci95, newcombeDifferenceInterval(truthA, 250, truthB, 250))
  assert.ok(h.valid && h.significant && h.confirmed)
  assert.ok(!n.confirmed, 'a word spread alike in both is not confirmed')
  assert.deepEqual(n.latents, [3])
  assert.equal(r.failed.length, 0)
  assert.equal(llm.requests.length, 2 * 500)
  assert.ok(llm.requests.every(q => q.temperature === 0 && q.model === 'judge-1'))
  assert.equal(r.usage.calls, 1000)
  assert.equal(r.usage.inputTokens, llm.usage().inputTokens)
  assert.ok(Math.abs(r.usage.cost! - (r.usage.inputTokens + 4 * r.usage.outputTokens) / 1e6) < 1e-12)
  // Same seed, same sample.
  const again = VerifyResult.parse(
    await verifyHypotheses(ctx, client(), {
      a: 'a',
      b: 'b',
      hypotheses: [MARKER_HYP],
      perDataset: 250,
      seed: 7,
      exclude
    })
  )
  assert.deepEqual(again.a.rows, r.a.rows)
})

test('malformed and failing judge answers are reported per item; the run completes with the rest', async () => {
  const bad = (req: RecordedRequest): ScriptedReply | null => {
    const user = userText(req)
    if (/Document a-(\d+)\./.exec(user)?.[1] && Number(/Document a-(\d+)\./.exec(user)![1]) % 10 === 0)
      return { content: '{"answer": YES' } // always malformed
    if (/Document b-(\d+)\./.exec(user) && Number(/Document b-(\d+)\./.exec(user)![1]) % 10 === 1)
      return { status: 500, retryAfterMs: 1 }
    return null
  }
  llm.setResponder(req => bad(req) ?? scripted(req))
  try {
    const r = VerifyResult.parse(
      await verifyHypotheses(ctx, client({ jsonRetries: 1 }), {
        a: 'a',
        b: 'b',
        hypotheses: [MARKER_HYP],
        perDataset: 100,
        seed: 3
      })
    )
    const h = r.hypotheses[0]
    const badA = r.a.rows.filter(row => row % 10 === 0).length
    const badB = r.b.rows.filter(row => row % 10 === 1).length
    assert.ok(badA > 0 && badB > 0)
    assert.equal(h.failedA, badA)
    assert.equal(h.failedB, badB)
    assert.equal(h.nA, 100 - badA)
    assert.equal(h.nB, 100 - badB)
    assert.equal(r.failed.length, badA + badB)
    const malformed = r.failed.filter(f => f.kind === 'malformed-output')
    assert.equal(malformed.length, badA)
    assert.equal(malformed[0].raw, '{"answer": YES')
    assert.equal(r.failed.filter(f => f.kind === 'request-failed').length, badB)
    const okA = r.a.rows.filter(row => row % 10 !== 0)
    assert.equal(h.yesA, okA.filter(row => markedA[row]).length)
  } finally {
    llm.setResponder(scripted)
  }
})

test('dry run: nothing is spent, and the estimate is within 10% of what the run then spends (baseline included)', async () => {
  const c = client()
  const body = {
    a: 'a',
    b: 'b',
    hypotheses: [MARKER_HYP, NULL_HYP],
    perDataset: 40,
    seed: 11,
    baseline: true,
    baselineDocuments: 20,
    baselineMax: 4
  }
  llm.requests.length = 0
  const est = DryRunEstimate.parse(await verifyHypotheses(ctx, c, { ...body, dryRun: true }))
  assert.equal(llm.requests.length, 0, 'a dry run sends nothing')
  const r = VerifyResult.parse(await verifyHypotheses(ctx, c, body))
  const b = r.baseline!
  const spent = {
    input: r.usage.inputTokens + b.proposeUsage.inputTokens + b.verifyUsage.inputTokens,
    output: r.usage.outputTokens + b.proposeUsage.outputTokens + b.verifyUsage.outputTokens
  }
  assert.equal(spent.input, llm.usage().inputTokens, 'the ledgers account for every token the server reported')
  const total = spent.input + spent.output
  const estTotal = est.inputTokens + est.outputTokens
  assert.ok(Math.abs(estTotal - total) / total < 0.1, `estimate ${estTotal} vs spent ${total}`)
  const judge = est.steps.find(s => s.step === 'judge')!
  assert.equal(judge.calls, 160)
  assert.equal(judge.inputTokens, r.usage.inputTokens, 'judge prompts are known exactly before the run')
  assert.ok(Math.abs(est.cost! - (est.inputTokens + 4 * est.outputTokens) / 1e6) < 1e-12)
})

test('baseline: proposals read rows disjoint from the judged ones and are verified on the same judged documents', async () => {
  const r = VerifyResult.parse(
    await verifyHypotheses(ctx, client(), {
      a: 'a',
      b: 'b',
      hypotheses: [MARKER_HYP],
      perDataset: 120,
      seed: 5,
      baseline: true,
      baselineDocuments: 30
    })
  )
  const b = r.baseline!
  assert.equal(b.rows.a.length, 30)
  assert.ok(!b.rows.a.some(row => r.a.rows.includes(row)))
  assert.equal(b.proposeUsage.steps.find(s => s.step === 'baseline-propose')!.calls, 3)
  assert.equal(b.proposeUsage.steps.find(s => s.step === 'baseline-summarize')!.calls, 1)
  const marker = b.hypotheses.find(h => h.text.includes(MARKER))!
  assert.ok(marker, 'the baseline found the marker from its samples')
  assert.equal(marker.yesA, r.hypotheses[0].yesA, 'judged on the same documents as the SAE hypotheses')
  assert.ok(b.hypotheses.every(h => h.nA === 120 && h.nB === 120))
  assert.equal(b.validCount, b.hypotheses.filter(h => h.valid).length)
  assert.ok(b.verifyUsage.calls === b.hypotheses.length * 240)
})

test('problems: same dataset twice, unknown dataset', async () => {
  await assert.rejects(verifyHypotheses(ctx, client(), { a: 'a', b: 'a', hypotheses: ['x'] }), /both a and b/)
  await assert.rejects(
    verifyHypotheses(ctx, client(), { a: 'a', b: 'nope', hypotheses: ['x'] }),
    (e: { code?: string }) => e.code === 'dataset-not-found'
  )
})

test('sampleRows: a seeded draw without replacement that skips excluded rows', () => {
  const s = sampleRows(1000, 100, 9, new Set([1, 2, 3]))
  assert.equal(new Set(s).size, 100)
  assert.ok(s.every(r => r >= 0 && r < 1000 && ![1, 2, 3].includes(r)))
  assert.deepEqual(sampleRows(1000, 100, 9, new Set([1, 2, 3])), s)
  assert.notDeepEqual(sampleRows(1000, 100, 10, new Set()), s)
  assert.deepEqual(sampleRows(5, 10, 1, new Set([0])).sort(), [1, 2, 3, 4])
})

test('a verification over maxCalls is refused before anything is spent', async () => {
  llm.requests.length = 0
  await assert.rejects(
    verifyHypotheses(ctx, client(), { a: 'a', b: 'b', hypotheses: ['x', 'y'], perDataset: 100, maxCalls: 399 }),
    (e: { code?: string; message: string }) => e.code === 'too-many-calls' && /400 judge calls/.test(e.message)
  )
  assert.equal(llm.requests.length, 0)
})

test('as analysis-job runners: progress climbs to 1 and the results match the direct call', async () => {
  const runners = llmAnalysisRunners(client())
  const seen: Array<[number, string]> = []
  const request = {
    a: 'a',
    b: 'b',
    hypotheses: [MARKER_HYP],
    perDataset: 30,
    seed: 2,
    baseline: true,
    baselineDocuments: 10,
    baselineMax: 2
  }
  const r = VerifyResult.parse(await runners['hypotheses-verify'](ctx, request, (f, phase) => seen.push([f, phase])))
  assert.ok(seen.length > 60)
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i][0] >= seen[i - 1][0] - 1e-12, 'progress never goes back')
  assert.ok(Math.abs(seen.at(-1)![0] - 1) < 1e-9)
  assert.ok(seen.some(([, p]) => p === 'judging') && seen.some(([, p]) => p === 'baseline: judging'))
  const direct = VerifyResult.parse(await verifyHypotheses(ctx, client(), request))
  assert.deepEqual(r.hypotheses, direct.hypotheses)
})

test('judge: document asks once per document for every hypothesis, with the same counts as per-pair judging and fewer tokens', async () => {
  const body = {
    a: 'a',
    b: 'b',
    hypotheses: [MARKER_HYP, NULL_HYP, "This response mentions a 'lantern'."],
    perDataset: 80,
    seed: 4
  }
  llm.requests.length = 0
  const est = DryRunEstimate.parse(await verifyHypotheses(ctx, client(), { ...body, judge: 'document', dryRun: true }))
  const doc = VerifyResult.parse(await verifyHypotheses(ctx, client(), { ...body, judge: 'document' }))
  assert.equal(doc.judge, 'document')
  assert.equal(llm.requests.length, 160)
  assert.equal(doc.usage.inputTokens + doc.usage.outputTokens, est.inputTokens + est.outputTokens)
  const pair = VerifyResult.parse(await verifyHypotheses(ctx, client(), body))
  assert.deepEqual(
    doc.hypotheses.map(h => [h.yesA, h.nA, h.yesB, h.nB]),
    pair.hypotheses.map(h => [h.yesA, h.nA, h.yesB, h.nB])
  )
  assert.ok(
    doc.usage.inputTokens < 0.5 * pair.usage.inputTokens,
    `${doc.usage.inputTokens} vs ${pair.usage.inputTokens}`
  )
  // A per-document answer of the wrong length is malformed: every hypothesis loses that document, the rest stands.
  llm.setResponder(req => (/Document a-\d*0\./.test(userText(req)) ? { json: { answers: ['YES'] } } : scripted(req)))
  try {
    const bad = VerifyResult.parse(
      await verifyHypotheses(ctx, client({ jsonRetries: 2 }), { ...body, judge: 'document' })
    )
    const badRows = bad.a.rows.filter(row => row % 10 === 0).length
    assert.ok(badRows > 0)
    assert.equal(bad.failed.length, badRows)
    assert.match(bad.failed[0].error, /exactly 3 answers/)
    assert.ok(
      bad.hypotheses.every(h => h.failedA === badRows && h.nA === 80 - badRows && h.nB === 80 && h.failedB === 0)
    )
  } finally {
    llm.setResponder(scripted)
  }
})

test('slices: documents are judged from each slice only (two slices of one dataset), excluded rows stay out', async () => {
  const { MARKED_LATENT } = await import('@latentbase/shared/llm/corpus-fixture')
  const firstMarked = markedA.indexOf(1)
  const r = VerifyResult.parse(
    await verifyHypotheses(ctx, client(), {
      a: 'a',
      aWhere: `latent ${MARKED_LATENT}`,
      b: 'a',
      bWhere: { not: { latent: MARKED_LATENT } },
      hypotheses: [MARKER_HYP],
      perDataset: 20,
      exclude: { a: [firstMarked] }
    })
  )
  const marked = markedA.reduce((s, v) => s + v, 0)
  assert.equal(r.a.documents, marked)
  assert.equal(r.b.documents, markedA.length - marked)
  assert.equal(r.a.where, `latent ${MARKED_LATENT}`)
  assert.equal(r.a.excluded, 1, 'the excluded row is in the slice of a')
  assert.equal(r.b.excluded, 0, 'b is a slice of the same dataset that does not hold it')
  assert.ok(r.a.rows.every(row => markedA[row] === 1) && !r.a.rows.includes(firstMarked))
  assert.ok(r.b.rows.every(row => markedA[row] === 0))
  assert.equal(r.hypotheses[0].yesA, r.hypotheses[0].nA)
  assert.equal(r.hypotheses[0].yesB, 0)
  // No bWhere: b, a's own dataset, is the rest of it, the same documents as the explicit `not` slice.
  const rest = VerifyResult.parse(
    await verifyHypotheses(ctx, client(), {
      a: 'a',
      aWhere: `latent ${MARKED_LATENT}`,
      b: 'a',
      hypotheses: [MARKER_HYP],
      perDataset: 20,
      exclude: { a: [firstMarked] }
    })
  )
  assert.equal(rest.b.where, r.b.where)
  assert.equal(rest.b.documents, r.b.documents)
  assert.deepEqual(rest.b.rows, r.b.rows)
  await assert.rejects(verifyHypotheses(ctx, client(), { a: 'a', b: 'a', hypotheses: [MARKER_HYP] }), /both a and b/)
})
