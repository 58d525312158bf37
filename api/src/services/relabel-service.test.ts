/** @module Tests of relabel (delphi-style labels with detection and fuzzing scores) against a scripted loopback LLM, and of the label overlay reaching diff, correlations, clusters, search, latent pages and documents. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { MemoryObjectStore } from '@latentbase/shared/store/memory-store'
import { DatasetStore } from '@latentbase/shared/store/dataset-store'
import { layout } from '@latentbase/shared/store/layout'
import { readDocuments } from '@latentbase/shared/store/documents/read'
import { LlmClient } from '@latentbase/shared/llm/client'
import {
  startScriptedLlm,
  userText,
  type ScriptedLlm,
  type RecordedRequest,
  type ScriptedReply
} from '@latentbase/shared/llm/testkit'
import {
  writeMarkedDataset,
  markedCatalog,
  markedLabels,
  MARKER,
  MARKED_LATENT,
  MARKED_ENCODER,
  markedWordOf as wordOf,
  writeMarkedTopExamples,
  everyPairQuery
} from '@latentbase/shared/llm/corpus-fixture'
import { OfflineEmbedder } from '@latentbase/shared/embeddings/offline'
import { labelsDigest } from '@latentbase/shared/embeddings/label-cache'
import { labelOverlayPrefix, readLabelOverlay } from '@latentbase/shared/catalog/label-overlay'
import { DiffResult } from '@latentbase/shared/contract/diff'
import { RelabelResult, DryRunEstimate } from '@latentbase/shared/contract/llm'
import type { JobQueue } from '@latentbase/shared/queue/job-queue'
import type { JobMessage } from '@latentbase/shared/contract/job'
import { createApp } from '../app.ts'
import type { AppDeps } from '../deps.ts'
import type { AnalysisContext } from './context.ts'
import { balancedAccuracy, markWindow, offlineLabel, relabelEncoder } from './relabel-service.ts'
import { computeClusters } from './clusters-service.ts'
import { computeCorrelations } from './correlations-service.ts'
import { CorrelationsQuery } from '@latentbase/shared/contract/correlations'
import { llmClient } from '@latentbase/sdk/llm'
import { OFFLINE_EMBEDDER_ID } from '@latentbase/shared/embeddings/offline'

const TENANT = 'local'
const N_DOCS = 120
/** The word a prompt's marks or feature line names. */
const markedWord = (text: string) => {
  const counts = new Map<string, number>()
  for (const m of text.matchAll(/<<([^>]+)>>/g))
    counts.set(m[1].replace(/\W/g, ''), (counts.get(m[1].replace(/\W/g, '')) ?? 0) + 1)
  return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? ''
}
const textsOf = (user: string) => [...user.matchAll(/^\d+\. (.*)$/gm)].map(m => m[1])

/** An oracle LLM: labels a latent by its marked word, and answers detection and fuzzing exactly by that word. */
type Mode = 'oracle' | 'yes' | 'malformed-detection'
let mode: Mode = 'oracle'
function scripted(req: RecordedRequest): ScriptedReply {
  const user = userText(req)
  if (/Texts where it fires:/.test(user))
    return { json: { label: `the word ${markedWord(user.split('Texts where it does not fire:')[0])}` } }
  const word = /^Feature: the word (\S+)$/m.exec(user)?.[1] ?? '?'
  const texts = textsOf(user.split('Texts:\n')[1] ?? '')
  if (/does the feature fire somewhere/.test(user)) {
    if (mode === 'malformed-detection') return { content: 'I think most of them.' }
    return { json: { answers: texts.map(t => (mode === 'yes' ? 1 : new RegExp(`\\b${word}\\b`).test(t) ? 1 : 0)) } }
  }
  if (/are the marked tokens the ones/.test(user)) {
    return {
      json: {
        answers: texts.map(t =>
          mode === 'yes' ? 'yes' : [...t.matchAll(/<<([^>]+)>>/g)].some(m => m[1].replace(/\W/g, '') === word) ? 1 : 0
        )
      }
    }
  }
  return { content: 'unexpected prompt' }
}

let llm: ScriptedLlm
let client: LlmClient
let objects: MemoryObjectStore
let deps: AppDeps
let ctx: AnalysisContext
/** Every text the embedder was asked for, to see what is embedded again. */
const embedded: string[] = []

before(async () => {
  llm = await startScriptedLlm({ respond: scripted })
  objects = new MemoryObjectStore()
  const datasets = new DatasetStore(objects)
  await writeMarkedDataset(objects, datasets, { tenant: TENANT, id: 'a', nDocs: N_DOCS, markerShare: 0.3, seed: 1 })
  await writeMarkedDataset(objects, datasets, { tenant: TENANT, id: 'b', nDocs: N_DOCS, markerShare: 0.1, seed: 2 })
  await writeMarkedTopExamples(objects, datasets, { tenant: TENANT, id: 'a' })
  client = new LlmClient({
    baseURL: llm.baseURL,
    model: 'scripted',
    maxRetries: 0,
    jsonRetries: 0,
    concurrency: 8,
    prices: { inputPerMillion: 1, outputPerMillion: 2 }
  })
  deps = {
    objects,
    datasets,
    queue: {} as JobQueue<JobMessage>,
    encoders: markedCatalog(),
    mode: 'local',
    tenantOf: () => TENANT,
    embedder: countingEmbedder()
  }
  ctx = { objects, datasets, encoders: deps.encoders, embedder: deps.embedder!, tenant: TENANT, llm: client }
})
after(() => llm.close())

test('markWindow wraps runs of firing tokens, leading spaces outside; balancedAccuracy is the mean of both rates', () => {
  assert.equal(markWindow(['The', ' big', ' red', ' dog'], [0, 1, 1, 0]), 'The <<big red>> dog')
  assert.equal(markWindow(['a', ' b'], [0, 1]), 'a <<b>>')
  assert.equal(balancedAccuracy([1, 1, 0, 0], [1, 1, 0, 0]), 1)
  assert.equal(balancedAccuracy([1, 1, 0, 0], [1, 1, 1, 1]), 0.5)
  assert.equal(balancedAccuracy([1, 1, 1, 0], [1, 0, 0, 0]), (1 / 3 + 1) / 2)
  assert.equal(balancedAccuracy([], []), null)
})

test('an oracle LLM writes the right labels with perfect detection and fuzzing; a yes-sayer scores chance; the dry run is within 10% of the tokens spent', async () => {
  mode = 'oracle'
  const sent = llm.requests.length
  const estimate = DryRunEstimate.parse(
    await relabelEncoder(ctx, MARKED_ENCODER, client, { dataset: 'a', latents: [1, 2, 3], dryRun: true })
  )
  assert.equal(llm.requests.length, sent, 'a dry run sends nothing')
  const before = llm.usage()
  const result = RelabelResult.parse(
    await relabelEncoder(ctx, MARKED_ENCODER, client, { dataset: 'a', latents: [1, 2, 3] })
  )
  const spent = { calls: llm.usage().calls - before.calls, input: llm.usage().inputTokens - before.inputTokens }
  assert.equal(estimate.calls, spent.calls, 'explain + detection + fuzzing per latent')
  assert.equal(spent.calls, 9)
  assert.ok(
    Math.abs(estimate.inputTokens - spent.input) / spent.input < 0.1,
    `estimate ${estimate.inputTokens} vs spent ${spent.input}`
  )
  assert.equal(result.usage.inputTokens, spent.input)
  assert.deepEqual(result.failed, [])
  for (const l of result.labels) {
    assert.equal(l.label, `the word ${wordOf(l.latent)}`)
    assert.equal(l.source, 'llm:scripted')
    if (l.latent === MARKED_LATENT) {
      // The marker is in a document exactly when the latent fires: the oracle's answers are the truth.
      assert.equal(l.detection, 1)
      assert.equal(l.fuzzing, 1)
    } else {
      // Plain words also turn up in the filler of documents where their latent is absent: the oracle errs there, above chance.
      assert.ok(l.detection! > 0.5 && l.detection! <= 1, String(l.detection))
      assert.ok(l.fuzzing! > 0.5 && l.fuzzing! <= 1, String(l.fuzzing))
    }
    assert.equal(l.previous.label, markedLabels()[l.latent])
    assert.equal(l.previous.source, 'imported')
    assert.ok(
      l.examples.explain >= 3 && l.examples.activating >= 3 && l.examples.nonActivating >= 3,
      JSON.stringify(l.examples)
    )
  }
  assert.ok(result.overlayKey?.startsWith(labelOverlayPrefix(TENANT, 'fp-marked')))
  // Firing tokens reach the explainer marked, and the scored windows are not the ones it saw.
  const explain = llm.requests.find(
    r => /Texts where it fires:/.test(userText(r)) && userText(r).includes(`<<${MARKER}`)
  )!
  assert.ok(explain, 'the marker latent was explained from windows with the marker marked')

  mode = 'yes'
  const chance = RelabelResult.parse(await relabelEncoder(ctx, MARKED_ENCODER, client, { dataset: 'a', latents: [2] }))
  assert.equal(chance.labels[0].detection, 0.5)
  assert.equal(chance.labels[0].fuzzing, 0.5)
})

test('a malformed scoring answer loses only that score: the label is kept with detection null and the failure reported', async () => {
  mode = 'malformed-detection'
  const r = RelabelResult.parse(await relabelEncoder(ctx, MARKED_ENCODER, client, { dataset: 'a', latents: [4] }))
  assert.equal(r.labels[0].label, `the word ${wordOf(4)}`)
  assert.equal(r.labels[0].detection, null)
  assert.ok(r.labels[0].fuzzing! > 0.5)
  assert.equal(r.failed.length, 1)
  assert.equal(r.failed[0].step, 'detection')
  assert.equal(r.failed[0].kind, 'malformed-output')
  const overlay = await readLabelOverlay(objects, TENANT, 'fp-marked')
  assert.equal(overlay.lines.get(4)?.detection, null)
  mode = 'oracle'
})

test('relabelled latents show their LLM label, source and scores in diff, correlations, clusters, search, latent pages and documents; others stay imported with null scores', async () => {
  mode = 'oracle'
  await relabelEncoder(ctx, MARKED_ENCODER, client, { dataset: 'a', latents: [1] })
  const app = createApp({ ...deps, llm: null })
  const get = async (path: string) => {
    const res = await app.request(path)
    assert.equal(res.status, 200, path)
    return res.json() as Promise<Record<string, unknown>>
  }

  const diff = DiffResult.parse(await get('/diff?a=a&b=b&limit=24'))
  const marked = diff.latents.find(l => l.latent === MARKED_LATENT)!
  assert.equal(marked.label, `the word ${MARKER}`)
  assert.equal(marked.labelSource, 'llm:scripted')
  assert.deepEqual(marked.labelScore, { detection: 1, fuzzing: 1 })
  const plain = diff.latents.find(l => l.latent > 5)
  if (plain) {
    assert.equal(plain.labelSource, 'imported')
    assert.equal(plain.labelScore, null)
  }

  const page = await get(`/latents/${MARKED_LATENT}?dataset=a`)
  assert.equal(page.labelSource, 'llm:scripted')
  assert.deepEqual(page.labelScore, { detection: 1, fuzzing: 1 })

  // The document view of a document where it fires.
  let inDoc: { label: string | null; labelSource?: string | null } | undefined
  for (let row = 0; row < 120 && !inDoc; row++) {
    const doc = (await get(`/datasets/a/documents/${row}`)) as {
      latents: Array<{ latent: number; label: string | null; labelSource?: string | null }>
    }
    inDoc = doc.latents.find(l => l.latent === MARKED_LATENT)
  }
  assert.ok(inDoc, 'the marked latent fires in some document of a')
  assert.equal(inDoc.label, `the word ${MARKER}`)
  assert.equal(inDoc.labelSource, 'llm:scripted')

  const search = (await get(`/search?dataset=a&latents=${MARKED_LATENT},7`)) as {
    latents: Array<{ latent: number; label: string; labelSource: string; labelScore: unknown }>
  }
  assert.equal(search.latents[0].label, `the word ${MARKER}`)
  assert.deepEqual(search.latents[0].labelScore, { detection: 1, fuzzing: 1 })
  assert.equal(search.latents[1].labelSource, 'imported')
  assert.equal(search.latents[1].labelScore, null)

  const corr = await computeCorrelations({ ...ctx, llm: null }, CorrelationsQuery.parse(everyPairQuery('a')))
  const sides = corr.pairs.flatMap(p => [p.a, p.b])
  const inCorr = sides.find(s => s.latent === MARKED_LATENT)
  assert.ok(inCorr, 'the marked latent is in some pair')
  assert.equal(inCorr.labelSource, 'llm:scripted')
  assert.deepEqual(inCorr.labelScore, { detection: 1, fuzzing: 1 })
  for (const s of sides) assert.ok('labelScore' in s && 'labelSource' in s)

  const clusters = await computeClusters(
    { ...ctx, llm: null },
    { dataset: 'a', k: 2, latents: [0, MARKED_LATENT, 2, 3] }
  )
  const refs = clusters.clusters.flatMap(c => c.latents)
  const ref = refs.find(l => l.latent === MARKED_LATENT)!
  assert.ok(ref, 'the marked latent describes a cluster')
  assert.equal(ref.labelSource, 'llm:scripted')
  assert.deepEqual(ref.labelScore, { detection: 1, fuzzing: 1 })

  // The new label is matched by words (only the overlay's labels are embedded apart; the encoder's cached embeddings stay as they were).
  const embeddingsKey = `_encoders/fp-marked/label-embeddings/${OFFLINE_EMBEDDER_ID}.json`
  const byWords = (await get(`/search?dataset=a&q=${encodeURIComponent(`the word ${MARKER}`)}&k=1`)) as {
    latents: Array<{ latent: number; labelSource: string }>
  }
  assert.equal(byWords.latents[0].latent, MARKED_LATENT)
  assert.equal(byWords.latents[0].labelSource, 'llm:scripted')
  const header = JSON.parse(new TextDecoder().decode((await objects.get(embeddingsKey))!)) as { labelsSha256: string }
  assert.equal(
    header.labelsSha256,
    labelsDigest(markedLabels()),
    "the stored embeddings are of the encoder's own labels"
  )
  embedded.length = 0
  await get(`/search?dataset=a&q=${encodeURIComponent('copper harbor')}&k=1`)
  assert.deepEqual(
    embedded,
    ['copper harbor'],
    "a second search embeds its query only: labels and the overlay's stay cached"
  )
  const byPhrase = await computeClusters(
    { ...ctx, llm: null },
    { dataset: 'a', k: 2, phrases: [`the word ${MARKER}`], latentsPerPhrase: 1 }
  )
  assert.deepEqual(byPhrase.phrases?.[0].latents, [MARKED_LATENT])

  // Hypotheses show the LLM the new label with its scores, and report them with each latent.
  const withLlm = createApp({ ...deps, llm: client })
  const res = await withLlm.request('/diff/hypotheses', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ a: 'a', b: 'b', max: 2 })
  })
  const hyp = (await res.json()) as { latents: Array<{ latent: number; labelSource: string; labelScore: unknown }> }
  const shown = hyp.latents.find(l => l.latent === MARKED_LATENT)!
  assert.equal(shown.labelSource, 'llm:scripted')
  assert.deepEqual(shown.labelScore, { detection: 1, fuzzing: 1 })
  assert.match(
    userText(llm.requests.at(-1)!),
    new RegExp(`Latent ${MARKED_LATENT}: the word ${MARKER} \\(.*detection 1, fuzzing 1\\)`)
  )

  // Another tenant's analyses do not see this tenant's labels.
  const other = await loadOther()
  assert.equal(other.lines.size, 0)
})

function countingEmbedder() {
  const inner = new OfflineEmbedder()
  return {
    id: inner.id,
    dimensions: inner.dimensions,
    embed: (texts: string[]) => {
      embedded.push(...texts)
      return inner.embed(texts)
    }
  }
}

async function loadOther() {
  return readLabelOverlay(objects, 'other', 'fp-marked')
}

test('POST /encoders/:id/relabel: the result, its dry run, the direct cap, encoder checks, and 503 without an LLM; SDK methods', async () => {
  mode = 'oracle'
  const app = createApp({ ...deps, llm: client })
  const bare = createApp({ ...deps, env: {} })
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
  const none = await post(bare, `/encoders/${MARKED_ENCODER}/relabel`, { dataset: 'a', latents: [1] })
  assert.equal(none.status, 503)
  assert.match(String(none.type), /problem\+json/)
  assert.equal(none.body.code, 'llm-not-configured')
  assert.match(String(none.body.detail), /LLM_BASE_URL/)

  const ok = await post(app, `/encoders/${MARKED_ENCODER}/relabel`, { dataset: 'a', latents: [2] })
  assert.equal(ok.status, 200)
  assert.equal(RelabelResult.parse(ok.body).labels[0].label, `the word ${wordOf(2)}`)
  const dry = await post(app, `/encoders/${MARKED_ENCODER}/relabel`, { dataset: 'a', latents: [2], dryRun: true })
  assert.equal(DryRunEstimate.parse(dry.body).calls, 3)
  assert.equal(
    (await post(app, `/encoders/${MARKED_ENCODER}/relabel`, { dataset: 'a', limit: 51 })).body.code,
    'too-many-latents'
  )
  assert.equal((await post(app, '/encoders/nope/relabel', { dataset: 'a' })).status, 404)
  assert.equal(
    (await post(app, `/encoders/${MARKED_ENCODER}/relabel`, { dataset: 'b', latents: [1] })).body.code,
    'no-examples'
  )
  assert.equal(
    (await post(app, `/encoders/${MARKED_ENCODER}/relabel?async=true`, { dataset: 'a', latents: [1] })).body.code,
    'jobs-not-available',
    'no analysis queue: no job'
  )

  const sdk = llmClient(async (schema, method, path, body) => {
    const res = await app.request(path, {
      method,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body)
    })
    const json = await res.json()
    if (res.status >= 400) throw new Error(JSON.stringify(json))
    return schema ? schema.parse(json) : json
  })
  const viaSdk = await sdk.labels.relabel(MARKED_ENCODER, { dataset: 'a', latents: [MARKED_LATENT] })
  assert.equal(viaSdk.labels[0].detection, 1)
  assert.equal((await sdk.labels.estimate(MARKED_ENCODER, { dataset: 'a', latents: [3] })).calls, 3)
})

test('offlineLabel: the fired-on words by lift over silent windows, then one window; words everywhere give null', () => {
  const w = (text: string, fire: string) => {
    const tokens = text.split(/(?= )/)
    return { tokens, firing: tokens.map(t => (t.trim() === fire ? 1 : 0)) }
  }
  const windows = [w('On Sun, John wrote: hi', 'wrote:'), w('Bob wrote: the code', 'wrote:'), w('the dog ran', 'the')]
  assert.equal(offlineLabel(windows, ['the cat sat', 'a dog']), '"wrote" (e.g. "...On Sun, John wrote: hi...")')
  assert.equal(
    offlineLabel([w('the a', 'the'), w('the b', 'the')], ['the c', 'the d']),
    null,
    'the silent windows have it too'
  )
  assert.equal(offlineLabel([], []), null)
})

test('the offline labeler: no LLM and no calls; the word each latent fires on, scored by rule, in the overlay; the route needs no LLM for it', async () => {
  const store = new MemoryObjectStore()
  const datasets = new DatasetStore(store)
  await writeMarkedDataset(store, datasets, { tenant: TENANT, id: 'a', nDocs: N_DOCS, markerShare: 0.3, seed: 1 })
  await writeMarkedTopExamples(store, datasets, { tenant: TENANT, id: 'a' })
  const c: AnalysisContext = {
    objects: store,
    datasets,
    encoders: deps.encoders,
    embedder: deps.embedder!,
    tenant: TENANT
  }
  const sent = llm.requests.length
  const dry = DryRunEstimate.parse(
    await relabelEncoder(c, MARKED_ENCODER, null, {
      dataset: 'a',
      latents: [1, 2, 3],
      labeler: 'offline',
      dryRun: true
    })
  )
  assert.equal(dry.calls, 0)
  const r = RelabelResult.parse(
    await relabelEncoder(c, MARKED_ENCODER, null, { dataset: 'a', latents: [1, 2, 3], labeler: 'offline' })
  )
  assert.equal(llm.requests.length, sent, 'no LLM request')
  assert.deepEqual([r.model, r.source, r.usage.calls], ['offline', 'offline-examples', 0])
  assert.deepEqual(
    r.labels.map(l => l.latent),
    [1, 2, 3]
  )
  for (const l of r.labels) {
    assert.match(l.label ?? '', new RegExp(`^"${wordOf(l.latent).toLowerCase()}"`), `latent ${l.latent}: ${l.label}`)
    assert.ok(l.detection !== null && l.detection >= 0 && l.detection <= 1 && l.fuzzing !== null)
  }
  // The marked latent fires exactly where its word is, so the rule tells its windows apart perfectly; the fixture's
  // other latents fire at random in the pooled data, so windows where they are silent have their word too.
  const marked = r.labels.find(l => l.latent === MARKED_LATENT)!
  assert.deepEqual([marked.detection, marked.fuzzing], [1, 1])
  assert.ok(
    r.labels.some(l => l.latent !== MARKED_LATENT && l.detection! < 1),
    'a label word in silent windows costs'
  )
  const fingerprint = (await datasets.getManifest(TENANT, 'a'))!.encoderFingerprint
  const overlay = await readLabelOverlay(store, TENANT, fingerprint)
  assert.deepEqual(
    [...overlay.lines.values()].map(line => line.source),
    ['offline-examples', 'offline-examples', 'offline-examples']
  )
  // Over HTTP on an app with no LLM configured: the offline labeler answers, the LLM one still says how to configure one.
  const app = createApp({ ...deps, objects: store, datasets, llm: undefined })
  const post = (body: unknown) =>
    app.request(`/encoders/${MARKED_ENCODER}/relabel`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body)
    })
  const ok = await post({ dataset: 'a', latents: [2], labeler: 'offline' })
  assert.equal(ok.status, 200)
  assert.equal(((await ok.json()) as { source: string }).source, 'offline-examples')
  const refused = await post({ dataset: 'a', latents: [2] })
  assert.equal(refused.status, 503)
})

test('with a window miner, scoring windows are sampled across activation quantiles (top examples excluded) and re-encoded', async () => {
  mode = 'oracle'
  const prefix = layout.datasetPrefix(TENANT, 'a')
  const manifest = (await deps.datasets.getManifest(TENANT, 'a'))!
  const docs = await readDocuments(objects, prefix, manifest.documents.files, undefined, ['text'])
  const asked: Array<{ latent: number; doc: number }> = []
  // Stands in for the local server's re-encoding: a window around the latent's word, activation on it.
  const windowMiner: AnalysisContext['windowMiner'] = async (_ds, pairs) => {
    asked.push(...pairs)
    return pairs.flatMap(({ latent, doc }) => {
      const words = String(docs.text[docs.row.indexOf(doc)]).split(' ')
      const at = words.findIndex(w => w.replace(/\W/g, '') === wordOf(latent))
      if (at < 0) return []
      const lo = Math.max(0, at - 6)
      const tokens = words.slice(lo, at + 7).map((w, j) => (j === 0 ? w : ` ${w}`))
      return [{ latent, doc, tokens, activations: tokens.map((_, j) => (lo + j === at ? 0.7 : 0)) }]
    })
  }
  const r = RelabelResult.parse(
    await relabelEncoder({ ...ctx, windowMiner }, MARKED_ENCODER, client, {
      dataset: 'a',
      latents: [MARKED_LATENT],
      scoreExamples: 5
    })
  )
  assert.equal(r.sampling, 'quantiles')
  assert.equal(asked.length, 5, 'one document per quantile')
  // The fixture's stored top examples are each latent's first 8 documents holding its word.
  const topDocs = new Set<number>()
  const withMarker = docs.row.filter((_, i) => String(docs.text[i]).includes(MARKER))
  withMarker.slice(0, 8).forEach(d => {
    topDocs.add(d)
  })
  assert.ok(
    asked.every(p => p.latent === MARKED_LATENT && !topDocs.has(p.doc)),
    'stored top examples are not scored on'
  )
  assert.equal(new Set(asked.map(p => p.doc)).size, 5)
  assert.equal(r.labels[0].examples.activating, 5, 'scored on the mined windows')
  assert.equal(r.labels[0].examples.explain, 8, 'every stored top example explains')
  assert.equal(r.labels[0].detection, 1)
  assert.equal(r.labels[0].fuzzing, 1)
  const without = RelabelResult.parse(
    await relabelEncoder(ctx, MARKED_ENCODER, client, { dataset: 'a', latents: [MARKED_LATENT] })
  )
  assert.equal(without.sampling, 'top-examples')
})
