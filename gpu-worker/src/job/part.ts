/** @module The part step of an encoding: a part's staged documents -> one fused reader+SAE+pooling graph per batch (which also returns the windows of top-example candidates) -> its sparse shards, statistics and examples -> its marker. */
import type { DatasetRecord } from '@latentbase/shared/contract/dataset'
import { layout } from '@latentbase/shared/store/layout'
import { DatasetDeletedError } from '@latentbase/shared/store/dataset-store'
import { writeDocumentsShard } from '@latentbase/shared/store/documents/write'
import { bm25SidecarKey } from '@latentbase/shared/store/documents/bm25-sidecar'
import { writeLatentShards } from '@latentbase/shared/store/latent-shards/write'
import { cscKey } from '@latentbase/shared/store/latent-shards/csc'
import { statsFromCsr, DEFAULT_TOP_K } from '@latentbase/shared/analysis/latent-stats'
import { writeLatentStats } from '@latentbase/shared/store/stats/write'
import { writeFacets } from '@latentbase/shared/store/stats/facets'
import { facetsOf } from '@latentbase/shared/analysis/facets'
import { PartMarker, type EncodePlan, type PartProgress } from '@latentbase/shared/contract/encode-plan'
import { csrFromSortedRows } from '@latentbase/shared/analysis/sparse'
import type { EncoderBatch } from '../encode/runtime.ts'
import type { SourceDocument } from '../ingest/records.ts'
import { prepareDocument, type PreparedDocument } from '../prepare/tokenize.ts'
import { planBatches, packBatch } from '../prepare/batches.ts'
import { EXAMPLE_HALF_WINDOW } from './top-examples.ts'
import { TopExampleCapture } from './example-capture.ts'
import { failIfDeleted, JSON_TYPE, PermanentJobError, poolRolesOf, type EncodeOptions } from './encode-options.ts'

interface PartColumns {
  row: number[]
  id: string[]
  text: string[]
  metadata: string[]
  messages: string[]
  tokenCount: number[]
  truncated: boolean[]
  maskedTokens: number[]
}
/**
 * LATENTBASE_LATENT_SIDECARS=off leaves out the by-latent sidecars (~40% of a store): readers fall back to the Parquet
 * shards file by file, so a dataset may mix parts with and without them.
 */
export function latentSidecars(value = process.env.LATENTBASE_LATENT_SIDECARS): boolean {
  if (value === undefined || value === '' || value === 'on') return true
  if (value === 'off') return false
  throw new Error(`LATENTBASE_LATENT_SIDECARS must be "on" or "off", got "${value}"`)
}

const emptyPart = (): PartColumns => ({
  row: [],
  id: [],
  text: [],
  metadata: [],
  messages: [],
  tokenCount: [],
  truncated: [],
  maskedTokens: []
})

/** Growable typed-array columns of pooled (doc, latent, value, position) rows, in doc then latent order. */
class PooledRows {
  docs = new Int32Array(1 << 16)
  latents = new Int32Array(1 << 16)
  values = new Float32Array(1 << 16)
  positions = new Int32Array(1 << 16)
  length = 0
  push(doc: number, latent: number, value: number, position: number): void {
    if (this.length === this.docs.length) this.grow()
    const k = this.length++
    this.docs[k] = doc
    this.latents[k] = latent
    this.values[k] = value
    this.positions[k] = position
  }
  private grow(): void {
    const n = this.docs.length * 2
    const g = <T extends Int32Array | Float32Array>(a: T, Ctor: new (n: number) => T): T => {
      const b = new Ctor(n)
      b.set(a)
      return b
    }
    this.docs = g(this.docs, Int32Array)
    this.latents = g(this.latents, Int32Array)
    this.values = g(this.values, Float32Array)
    this.positions = g(this.positions, Int32Array)
  }
}

/**
 * Encode one part of a plan: its staged documents -> one fused reader+SAE+pooling graph per batch -> the part's
 * shards and statistics -> its marker (last). Deterministic: a re-run writes the same bytes under the same keys.
 */
export function encodePart(
  record: DatasetRecord,
  plan: EncodePlan,
  part: number,
  opts: EncodeOptions & { receiveCount?: number }
): Promise<PartMarker> {
  return failIfDeleted(record, opts.datasets, () => encodeOnePart(record, plan, part, opts))
}

async function encodeOnePart(
  record: DatasetRecord,
  plan: EncodePlan,
  part: number,
  opts: EncodeOptions & { receiveCount?: number }
): Promise<PartMarker> {
  const { encoder, objects, datasets } = opts
  const log = opts.log ?? (() => {})
  const tenant = record.tenant
  const prefix = layout.datasetPrefix(tenant, record.id)
  // Read before the forward pass, so a mistyped value fails the part before its encode time is spent.
  const sidecar = latentSidecars()
  const spec = plan.parts[part]
  if (!spec) throw new PermanentJobError('bad-part', `part ${part} is not in the plan of ${plan.parts.length} part(s)`)
  const input = await objects.get(prefix + layout.partInput(part))
  if (!input)
    throw new PermanentJobError('input-missing', `the staged documents of part ${part} are missing from the store`)
  const docs = parseStagedDocuments(input)
  const nLatents = encoder.info.dSae
  const chunkDocuments = opts.chunkDocuments ?? 512
  const pooling = record.pooling
  // Top examples are captured in this pass: the graph returns the windows of the documents that may enter a
  // latent's top list, and each latent keeps its running top list (perLatent as finalize asks, at most the stats' K).
  const perLatent = Math.min(opts.topExamplesPerLatent ?? 5, DEFAULT_TOP_K)
  const capture = perLatent > 0 ? new TopExampleCapture(nLatents, perLatent, EXAMPLE_HALF_WINDOW) : null
  const session = await encoder.createPoolingSession(
    pooling,
    capture ? { examples: { halfWindow: EXAMPLE_HALF_WINDOW } } : undefined
  )
  const prepareContext = { ...encoder.prepareContext, poolRoles: poolRolesOf(record) }
  const overlapHost = opts.overlapHost ?? session.provider !== 'cpu'

  const masked = { special: 0, outlier: 0, role: 0 }
  let row = spec.docStart
  let tokens = 0
  let truncated = 0
  const seconds = { tokenize: 0, encode: 0, write: 0, examples: 0 }
  const columns = emptyPart()
  const pooled = new PooledRows()
  let lastProgress = performance.now()

  const reportProgress = async (force = false) => {
    if (!force && performance.now() - lastProgress < (opts.progressIntervalMs ?? 2000)) return
    lastProgress = performance.now()
    if (await datasets.isTombstoned(tenant, record.id)) throw new DatasetDeletedError(tenant, record.id)
    const progress: PartProgress = { part, documents: row - spec.docStart, tokens }
    await objects.put(prefix + layout.partProgress(part), JSON.stringify(progress), JSON_TYPE)
  }

  // Dense per-chunk pooled buffers: chunk x latents, small (512 x 16k floats = 32 MB at most), reused.
  const best = new Float32Array(chunkDocuments * nLatents)
  const bestPos = new Int32Array(chunkDocuments * nLatents)
  const weight = new Float64Array(chunkDocuments)

  const encodeChunk = async (chunk: SourceDocument[]) => {
    const tPrepare = performance.now()
    const prepared = chunk.map(doc => {
      const prep = prepareDocument(doc, prepareContext)
      // The planner kept only documents with something to pool; another answer means the encoder changed since.
      if (prep.pooledTokens === 0)
        throw new PermanentJobError(
          'plan-mismatch',
          `document ${doc.id} was planned but has nothing to pool: did the encoder change since planning?`
        )
      return { doc, prep }
    })
    seconds.tokenize += (performance.now() - tPrepare) / 1000
    // Each window is one batch row; a document's windows are merged below.
    const windowDoc: number[] = []
    const windowItems: PreparedDocument['windows'] = []
    prepared.forEach((p, i) => {
      for (const w of p.prep.windows) {
        windowDoc.push(i)
        windowItems.push(w)
      }
    })
    const lengths = Int32Array.from(windowItems, w => w.ids.length)
    best.fill(0, 0, prepared.length * nLatents)
    bestPos.fill(-1, 0, prepared.length * nLatents)
    weight.fill(0, 0, prepared.length)
    const outliers = new Int32Array(prepared.length)
    const multi = prepared.map(p => p.prep.windows.length > 1)
    const score = (d: number, s: number) => best[d * nLatents + s]
    const plans = planBatches(lengths, {
      maxTokensPerBatch: opts.maxTokensPerBatch ?? 8192,
      maxBatchSize: opts.maxBatchSize ?? 32,
      lengthCap: encoder.info.maxTokens
    })
    // With overlap, the next batch runs while the host merges this one's output and takes its examples (onnxruntime
    // runs off the main thread), so on a GPU the host's share of a batch hides behind the graph. That batch sees the
    // example thresholds of one batch back: lower ones, so a few more candidates, and the same lists.
    const dispatch = (batchIdx: Int32Array) => {
      // Rounded to a length the pooled graph's argmax search splits well (never past the encoder's window).
      const batch: EncoderBatch = packBatch(
        Array.from(batchIdx, i => windowItems[i]),
        encoder.padTokenId,
        encoder.info.maxTokens
      )
      if (capture) {
        batch.exampleThreshold = capture.threshold.slice()
        // Rows of long documents return every active latent: their pooled values are final only after the chunk.
        batch.exampleAll = Float32Array.from(batchIdx, i => (multi[windowDoc[i]] ? 1 : 0))
      }
      const out = session.run(batch)
      out.catch(() => {}) // awaited below; this only keeps a failure during the host's work from going unhandled
      return { batchIdx, out }
    }
    const takeBatchOutput = (batchIdx: Int32Array, out: Awaited<ReturnType<typeof session.run>>) => {
      for (let b = 0; b < batchIdx.length; b++) {
        const w = windowItems[batchIdx[b]]
        const d = windowDoc[batchIdx[b]]
        outliers[d] += out.outliers[b]
        const wWeight = w.pooledTokens - out.outliers[b]
        mergeWindow(pooling.method, best, bestPos, weight, d, nLatents, out.pooled, out.argmax, b, w.offset, wWeight)
      }
      if (capture && out.examples) {
        const tc = performance.now()
        const rows = Array.from(batchIdx, i => ({
          doc: windowDoc[i],
          row: row + windowDoc[i],
          ids: windowItems[i].ids,
          offset: windowItems[i].offset,
          multi: multi[windowDoc[i]]
        }))
        capture.takeBatch(out.examples, out.argmax, rows, score)
        seconds.examples += (performance.now() - tc) / 1000
      }
    }
    let next = plans.length > 0 ? dispatch(plans[0]) : null
    try {
      for (let k = 0; k < plans.length; k++) {
        opts.signal?.throwIfAborted()
        const batchIdx = next!.batchIdx
        const t0 = performance.now()
        const out = await next!.out
        seconds.encode += (performance.now() - t0) / 1000
        if (overlapHost) next = k + 1 < plans.length ? dispatch(plans[k + 1]) : null
        takeBatchOutput(batchIdx, out)
        if (!overlapHost) next = k + 1 < plans.length ? dispatch(plans[k + 1]) : null
      }
    } catch (err) {
      // The session is released after a failure: never while a run is still in flight.
      if (next) await next.out.catch(() => {})
      throw err
    }
    if (capture) {
      const tc = performance.now()
      capture.endChunk(score)
      seconds.examples += (performance.now() - tc) / 1000
    }
    for (let d = 0; d < prepared.length; d++) {
      const { doc, prep } = prepared[d]
      const base = d * nLatents
      for (let s = 0; s < nLatents; s++) {
        const v = best[base + s]
        if (v > 0) pooled.push(row, s, v, bestPos[base + s])
      }
      columns.row.push(row)
      columns.id.push(doc.id)
      columns.text.push(prep.text)
      columns.metadata.push(JSON.stringify(doc.metadata ?? {}))
      columns.messages.push(doc.messages ? JSON.stringify(doc.messages) : '')
      columns.tokenCount.push(prep.tokenCount)
      columns.truncated.push(prep.truncated)
      columns.maskedTokens.push(prep.masked.special + prep.masked.role + outliers[d])
      masked.special += prep.masked.special
      masked.role += prep.masked.role
      masked.outlier += outliers[d]
      tokens += prep.tokenCount
      if (prep.truncated) truncated++
      row++
    }
  }

  try {
    for (let i = 0; i < docs.length; i += chunkDocuments) {
      await encodeChunk(docs.slice(i, i + chunkDocuments))
      await reportProgress()
    }
  } finally {
    await session.release()
  }
  if (row - spec.docStart !== spec.docCount) {
    throw new PermanentJobError(
      'plan-mismatch',
      `part ${part} holds ${row - spec.docStart} documents where the plan says ${spec.docCount}`
    )
  }

  const t0 = performance.now()
  const nDocs = columns.row.length
  const csr = csrFromSortedRows(
    nDocs,
    nLatents,
    spec.docStart,
    pooled.docs.subarray(0, pooled.length),
    pooled.latents.subarray(0, pooled.length),
    pooled.values.subarray(0, pooled.length),
    pooled.positions.subarray(0, pooled.length)
  )
  const docsShard = writeDocumentsShard(
    {
      row: Int32Array.from(columns.row),
      id: columns.id,
      text: columns.text,
      metadata: columns.metadata,
      messages: columns.messages,
      token_count: columns.tokenCount,
      truncated: columns.truncated,
      masked_tokens: columns.maskedTokens
    },
    { bm25: true }
  )
  const latentShards = writeLatentShards(csr, { docOffset: spec.docStart, sidecar })
  const keys = {
    docs: layout.documentsShard(part),
    byDoc: layout.byDocumentShard(part),
    byLat: layout.byLatentShard(part),
    stats: layout.partStats(part),
    facets: layout.partFacets(part),
    examples: layout.partExamples(part)
  }
  await objects.put(prefix + keys.docs, docsShard.bytes)
  if (docsShard.bm25) await objects.put(prefix + bm25SidecarKey(keys.docs), docsShard.bm25)
  await objects.put(prefix + keys.byDoc, latentShards.byDocument.bytes)
  await objects.put(prefix + keys.byLat, latentShards.byLatent.bytes)
  if (latentShards.byLatent.csc) await objects.put(prefix + cscKey(keys.byLat), latentShards.byLatent.csc)
  await objects.put(prefix + keys.stats, writeLatentStats(statsFromCsr(csr, spec.docStart)))
  await objects.put(prefix + keys.facets, writeFacets(facetsOf(csr, columns.metadata, columns.tokenCount)))
  seconds.write += (performance.now() - t0) / 1000
  if (capture) {
    const tc = performance.now()
    await objects.put(prefix + keys.examples, capture.write(encoder.tokenText))
    seconds.examples += (performance.now() - tc) / 1000
  }
  const marker: PartMarker = {
    part,
    docStart: spec.docStart,
    docCount: nDocs,
    tokens,
    truncated,
    masked,
    nnz: pooled.length,
    files: {
      documents: { key: keys.docs, ...docsShard.file },
      byDocument: { key: keys.byDoc, ...latentShards.byDocument.file },
      byLatent: { key: keys.byLat, ...latentShards.byLatent.file }
    },
    statsKey: keys.stats,
    facetsKey: keys.facets,
    ...(capture ? { examplesKey: keys.examples } : {}),
    seconds,
    receiveCount: opts.receiveCount ?? 1
  }
  // The marker goes last, and only if the dataset was not deleted meanwhile.
  if (await datasets.isTombstoned(tenant, record.id)) throw new DatasetDeletedError(tenant, record.id)
  await objects.put(prefix + layout.partDone(part), JSON.stringify(PartMarker.parse(marker)), JSON_TYPE)
  log(`part ${part}: ${nDocs} documents, ${pooled.length} pooled latents`)
  return marker
}

function parseStagedDocuments(bytes: Uint8Array): SourceDocument[] {
  const out: SourceDocument[] = []
  for (const line of new TextDecoder().decode(bytes).split('\n')) if (line) out.push(JSON.parse(line) as SourceDocument)
  return out
}

/**
 * Merge one window's pooled row into its document. max/binary keep the larger value (and its position);
 * sum/count add; mean averages windows weighted by their pooled token counts.
 */
function mergeWindow(
  method: string,
  best: Float32Array,
  bestPos: Int32Array,
  weight: Float64Array,
  d: number,
  nLatents: number,
  pooled: Float32Array,
  argmax: Int32Array,
  b: number,
  offset: number,
  wWeight: number
): void {
  const base = d * nLatents
  const src = b * nLatents
  if (method === 'sum' || method === 'count') {
    for (let s = 0; s < nLatents; s++) {
      const v = pooled[src + s]
      if (v <= 0) continue
      if (bestPos[base + s] < 0) bestPos[base + s] = argmax[src + s] + offset
      best[base + s] += v
    }
    return
  }
  if (method === 'mean') {
    const prev = weight[d]
    const total = prev + wWeight
    if (total <= 0) return
    for (let s = 0; s < nLatents; s++) {
      const v = pooled[src + s]
      if (v > 0 && bestPos[base + s] < 0) bestPos[base + s] = argmax[src + s] + offset
      best[base + s] = (best[base + s] * prev + v * wWeight) / total
    }
    weight[d] = total
    return
  }
  for (let s = 0; s < nLatents; s++) {
    const v = pooled[src + s]
    if (v > best[base + s]) {
      best[base + s] = v
      bestPos[base + s] = argmax[src + s] + offset
    }
  }
}
