/**
 * @module The encode job in three steps that many workers can share: plan (source -> staged parts), encode a part
 * (tokens -> one fused reader+SAE+pooling graph per batch, which also returns the windows of top-example candidates
 * -> sparse shards, the part's top examples -> part marker), finalize (merged statistics, merged top examples ->
 * manifest, written once and last). Each document is read by the reader once.
 */
import type { DatasetRecord, DatasetStats, SourceSpec } from '@latentbase/shared/contract/dataset'
import { STORE_VERSION, type Manifest } from '@latentbase/shared/contract/manifest'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import { layout } from '@latentbase/shared/store/layout'
import { DatasetDeletedError, type DatasetStore } from '@latentbase/shared/store/dataset-store'
import { writeDocumentsShard } from '@latentbase/shared/store/documents/write'
import { writeLatentShards } from '@latentbase/shared/store/latent-shards/write'
import { statsFromCsr, mergeStats, HISTOGRAM_EDGES, DEFAULT_TOP_K, type LatentStats } from '@latentbase/shared/analysis/latent-stats'
import { writeLatentP90, writeLatentStats } from '@latentbase/shared/store/stats/write'
import { readLatentStats } from '@latentbase/shared/store/stats/read'
import { EncodePlan, PartMarker, type EncodePart, type PartProgress } from '@latentbase/shared/contract/encode-plan'
import { listParts, readPlan } from '@latentbase/shared/store/encode-progress'
import { mapLimit } from '@latentbase/shared/util/map-limit'
import { csrFromSortedRows, type PooledCsr } from '@latentbase/shared/analysis/sparse'
import { datasetFingerprint, type EncoderBatch, type LoadedEncoder } from '../encode/runtime.ts'
import { readSourceDocuments, SourceError, type SourceDocument } from '../ingest/records.ts'
import type { OpenSourceOptions } from '../ingest/open-source.ts'
import { prepareDocument, type PreparedDocument } from '../prepare/tokenize.ts'
import { planBatches, packBatch } from '../prepare/batches.ts'
import { EXAMPLE_HALF_WINDOW, mineTopExamples } from './top-examples.ts'
import { mergePartExamples, partExamplesPerLatent, TopExampleCapture } from './example-capture.ts'

/** A failure that retrying cannot fix: the job is marked failed with this code and message. */
export class PermanentJobError extends Error {
  constructor(readonly code: string, message: string) {
    super(message)
    this.name = 'PermanentJobError'
  }
}

export interface EncodeOptions {
  objects: ObjectStore
  datasets: DatasetStore
  encoder: LoadedEncoder
  allowLocalSources: boolean
  /** Cloud mode: sources are fetched through the URL guard (see OpenSourceOptions.guard). */
  sourceGuard?: OpenSourceOptions['guard']
  /** Documents per part (default 65,536): a part is one job for one worker, and is written as its own shards. */
  partDocuments?: number
  /** Reader tokens per part (default 2^20), so that parts cost about the same whatever the document lengths. */
  partTokens?: number
  /** Documents of a part tokenized and batched together (length-sorted within the chunk). */
  chunkDocuments?: number
  maxTokensPerBatch?: number
  maxBatchSize?: number
  progressIntervalMs?: number
  topExamplesPerLatent?: number
  signal?: AbortSignal
  log?: (line: string) => void
}

interface PartColumns {
  row: number[]; id: string[]; text: string[]; metadata: string[]; messages: string[]; tokenCount: number[]; truncated: boolean[]; maskedTokens: number[]
}
const emptyPart = (): PartColumns => ({ row: [], id: [], text: [], metadata: [], messages: [], tokenCount: [], truncated: [], maskedTokens: [] })

/** Growable typed-array columns of pooled (doc, latent, value, position) rows, in doc then latent order. */
class PooledRows {
  docs = new Int32Array(1 << 16); latents = new Int32Array(1 << 16); values = new Float32Array(1 << 16); positions = new Int32Array(1 << 16)
  length = 0
  push(doc: number, latent: number, value: number, position: number): void {
    if (this.length === this.docs.length) this.grow()
    const k = this.length++
    this.docs[k] = doc; this.latents[k] = latent; this.values[k] = value; this.positions[k] = position
  }
  private grow(): void {
    const n = this.docs.length * 2
    const g = <T extends Int32Array | Float32Array>(a: T, Ctor: new (n: number) => T): T => { const b = new Ctor(n); b.set(a); return b }
    this.docs = g(this.docs, Int32Array); this.latents = g(this.latents, Int32Array)
    this.values = g(this.values, Float32Array); this.positions = g(this.positions, Int32Array)
  }
}

export interface EncodeResult { manifest: Manifest; stats: DatasetStats }

const JSONL = { contentType: 'application/x-ndjson' }
const JSON_TYPE = { contentType: 'application/json' }

async function readJson<T>(objects: ObjectStore, key: string, schema: { parse(v: unknown): T }): Promise<T | null> {
  const bytes = await objects.get(key)
  return bytes ? schema.parse(JSON.parse(new TextDecoder().decode(bytes))) : null
}

const poolRolesOf = (record: DatasetRecord): string[] =>
  'url' in record.source ? (record.source as SourceSpec).poolRoles : (record.poolRoles ?? ['assistant'])

/** The marker of a finished part, or null. */
export function readPartMarker(objects: ObjectStore, record: Pick<DatasetRecord, 'tenant' | 'id'>, part: number): Promise<PartMarker | null> {
  return readJson(objects, layout.datasetPrefix(record.tenant, record.id) + layout.partDone(part), PartMarker)
}

/** Parts with a completion marker, from one listing. */
export async function finishedParts(objects: ObjectStore, record: Pick<DatasetRecord, 'tenant' | 'id'>): Promise<Set<number>> {
  return (await listParts(objects, record)).done
}

/**
 * Planning: read the source once, tokenize each document to decide whether it can be pooled (so that rows are
 * contiguous however the parts are spread), stage the documents as part inputs of at most partDocuments documents
 * and partTokens tokens, and write the plan. Idempotent: a plan already written is returned as is.
 */
export function planEncode(record: DatasetRecord, opts: EncodeOptions): Promise<EncodePlan> {
  return failIfDeleted(record, opts.datasets, () => planParts(record, opts))
}

/**
 * Run a step; should it fail because the dataset was deleted under it (a sweep removed what it reads), say that:
 * the caller drops the job instead of retrying it.
 */
async function failIfDeleted<T>(record: DatasetRecord, datasets: DatasetStore, step: () => Promise<T>): Promise<T> {
  try {
    return await step()
  } catch (err) {
    if (!(err instanceof DatasetDeletedError) && await datasets.isTombstoned(record.tenant, record.id).catch(() => false)) {
      throw new DatasetDeletedError(record.tenant, record.id)
    }
    throw err
  }
}

async function planParts(record: DatasetRecord, opts: EncodeOptions): Promise<EncodePlan> {
  const { objects, datasets, encoder } = opts
  const existing = await readPlan(objects, record)
  if (existing) return existing
  const log = opts.log ?? (() => {})
  const started = performance.now()
  const startedAt = new Date().toISOString()
  const prefix = layout.datasetPrefix(record.tenant, record.id)
  const partDocuments = opts.partDocuments ?? 65_536
  const partTokens = opts.partTokens ?? 2 ** 20
  const context = { ...encoder.prepareContext, poolRoles: poolRolesOf(record) }
  const skipped: Record<string, number> = {}
  const parts: EncodePart[] = []
  let lines: string[] = []
  let lineTokens = 0
  let documents = 0
  let tokens = 0
  const flush = async () => {
    if (lines.length === 0) return
    if (await datasets.isTombstoned(record.tenant, record.id)) throw new DatasetDeletedError(record.tenant, record.id)
    await objects.put(prefix + layout.partInput(parts.length), lines.join('\n') + '\n', JSONL)
    parts.push({ docStart: documents - lines.length, docCount: lines.length, tokens: lineTokens })
    lines = []
    lineTokens = 0
  }
  const source: AsyncIterable<SourceDocument | { skip: string }> = 'inline' in record.source
    ? readInlineDocuments(objects, layout.inlineInput(record.tenant, record.id))
    : readSourceDocuments(record.source as SourceSpec, { allowLocal: opts.allowLocalSources, signal: opts.signal, guard: opts.sourceGuard, uploads: { objects, tenant: record.tenant } })
  for await (const item of source) {
    opts.signal?.throwIfAborted()
    if ('skip' in item) { skipped[item.skip] = (skipped[item.skip] ?? 0) + 1; continue }
    let prep: PreparedDocument
    try {
      prep = prepareDocument(item, context)
    } catch (err) {
      skipped['tokenizer-error'] = (skipped['tokenizer-error'] ?? 0) + 1
      log(`skipped document ${item.id}: ${(err as Error).message}`)
      continue
    }
    if (prep.pooledTokens === 0) { skipped['nothing-to-pool'] = (skipped['nothing-to-pool'] ?? 0) + 1; continue }
    lines.push(JSON.stringify({
      id: item.id, ...(item.text !== undefined ? { text: item.text } : {}), ...(item.messages ? { messages: item.messages } : {}), metadata: item.metadata ?? {},
    }))
    documents++
    tokens += prep.tokenCount
    lineTokens += prep.tokenCount
    if (lines.length >= partDocuments || lineTokens >= partTokens) await flush()
  }
  await flush()
  if (documents === 0) {
    const reasons = Object.entries(skipped).map(([k, v]) => `${v} ${k}`).join(', ')
    throw new PermanentJobError('no-documents', `the source has no usable documents${reasons ? ` (skipped: ${reasons})` : ''}`)
  }
  const plan: EncodePlan = {
    tenant: record.tenant, datasetId: record.id, startedAt, documents, tokens, skipped, parts,
    seconds: (performance.now() - started) / 1000,
  }
  await objects.put(prefix + layout.encodePlan(), JSON.stringify(EncodePlan.parse(plan)), JSON_TYPE)
  log(`planned ${documents} documents, ${tokens} tokens in ${parts.length} part(s)`)
  return plan
}

/**
 * Encode one part of a plan: its staged documents -> one fused reader+SAE+pooling graph per batch -> the part's
 * shards and statistics -> its marker (last). Deterministic: a re-run writes the same bytes under the same keys.
 */
export function encodePart(record: DatasetRecord, plan: EncodePlan, part: number, opts: EncodeOptions & { receiveCount?: number }): Promise<PartMarker> {
  return failIfDeleted(record, opts.datasets, () => encodeOnePart(record, plan, part, opts))
}

async function encodeOnePart(record: DatasetRecord, plan: EncodePlan, part: number, opts: EncodeOptions & { receiveCount?: number }): Promise<PartMarker> {
  const { encoder, objects, datasets } = opts
  const log = opts.log ?? (() => {})
  const tenant = record.tenant
  const prefix = layout.datasetPrefix(tenant, record.id)
  const spec = plan.parts[part]
  if (!spec) throw new PermanentJobError('bad-part', `part ${part} is not in the plan of ${plan.parts.length} part(s)`)
  const input = await objects.get(prefix + layout.partInput(part))
  if (!input) throw new PermanentJobError('input-missing', `the staged documents of part ${part} are missing from the store`)
  const docs = parseStagedDocuments(input)
  const nLatents = encoder.info.dSae
  const chunkDocuments = opts.chunkDocuments ?? 512
  const pooling = record.pooling
  // Top examples are captured in this pass: the graph returns the windows of the documents that may enter a
  // latent's top list, and each latent keeps its running top list (perLatent as finalize asks, at most the stats' K).
  const perLatent = Math.min(opts.topExamplesPerLatent ?? 5, DEFAULT_TOP_K)
  const capture = perLatent > 0 ? new TopExampleCapture(nLatents, perLatent, EXAMPLE_HALF_WINDOW) : null
  const session = await encoder.createPoolingSession(pooling, capture ? { examples: { halfWindow: EXAMPLE_HALF_WINDOW } } : undefined)
  const prepareContext = { ...encoder.prepareContext, poolRoles: poolRolesOf(record) }

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
    const prepared = chunk.map((doc) => {
      const prep = prepareDocument(doc, prepareContext)
      // The planner kept only documents with something to pool; another answer means the encoder changed since.
      if (prep.pooledTokens === 0) throw new PermanentJobError('plan-mismatch', `document ${doc.id} was planned but has nothing to pool: did the encoder change since planning?`)
      return { doc, prep }
    })
    seconds.tokenize += (performance.now() - tPrepare) / 1000
    // Each window is one batch row; a document's windows are merged below.
    const windowDoc: number[] = []
    const windowItems: PreparedDocument['windows'] = []
    prepared.forEach((p, i) => { for (const w of p.prep.windows) { windowDoc.push(i); windowItems.push(w) } })
    const lengths = Int32Array.from(windowItems, (w) => w.ids.length)
    best.fill(0, 0, prepared.length * nLatents)
    bestPos.fill(-1, 0, prepared.length * nLatents)
    weight.fill(0, 0, prepared.length)
    const outliers = new Int32Array(prepared.length)
    const multi = prepared.map((p) => p.prep.windows.length > 1)
    const score = (d: number, s: number) => best[d * nLatents + s]
    for (const batchIdx of planBatches(lengths, { maxTokensPerBatch: opts.maxTokensPerBatch ?? 8192, maxBatchSize: opts.maxBatchSize ?? 32 })) {
      opts.signal?.throwIfAborted()
      const batch: EncoderBatch = packBatch(Array.from(batchIdx, (i) => windowItems[i]), encoder.padTokenId)
      if (capture) {
        batch.exampleThreshold = capture.threshold
        // Rows of long documents return every active latent: their pooled values are final only after the chunk.
        batch.exampleAll = Float32Array.from(batchIdx, (i) => (multi[windowDoc[i]] ? 1 : 0))
      }
      const t0 = performance.now()
      const out = await session.run(batch)
      seconds.encode += (performance.now() - t0) / 1000
      for (let b = 0; b < batchIdx.length; b++) {
        const w = windowItems[batchIdx[b]]
        const d = windowDoc[batchIdx[b]]
        outliers[d] += out.outliers[b]
        const wWeight = w.pooledTokens - out.outliers[b]
        mergeWindow(pooling.method, best, bestPos, weight, d, nLatents, out.pooled, out.argmax, b, w.offset, wWeight)
      }
      if (capture && out.examples) {
        const tc = performance.now()
        const rows = Array.from(batchIdx, (i) => ({ doc: windowDoc[i], row: row + windowDoc[i], ids: windowItems[i].ids, offset: windowItems[i].offset, multi: multi[windowDoc[i]] }))
        capture.takeBatch(out.examples, out.argmax, rows, score)
        seconds.examples += (performance.now() - tc) / 1000
      }
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
      columns.row.push(row); columns.id.push(doc.id); columns.text.push(prep.text)
      columns.metadata.push(JSON.stringify(doc.metadata ?? {}))
      columns.messages.push(doc.messages ? JSON.stringify(doc.messages) : '')
      columns.tokenCount.push(prep.tokenCount); columns.truncated.push(prep.truncated)
      columns.maskedTokens.push(prep.masked.special + prep.masked.role + outliers[d])
      masked.special += prep.masked.special; masked.role += prep.masked.role; masked.outlier += outliers[d]
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
    throw new PermanentJobError('plan-mismatch', `part ${part} holds ${row - spec.docStart} documents where the plan says ${spec.docCount}`)
  }

  const t0 = performance.now()
  const nDocs = columns.row.length
  const csr = csrFromSortedRows(nDocs, nLatents, spec.docStart, pooled.docs.subarray(0, pooled.length),
    pooled.latents.subarray(0, pooled.length), pooled.values.subarray(0, pooled.length), pooled.positions.subarray(0, pooled.length))
  const docsShard = writeDocumentsShard({
    row: Int32Array.from(columns.row), id: columns.id, text: columns.text, metadata: columns.metadata, messages: columns.messages,
    token_count: columns.tokenCount, truncated: columns.truncated, masked_tokens: columns.maskedTokens,
  })
  const latentShards = writeLatentShards(csr, { docOffset: spec.docStart })
  const keys = { docs: layout.documentsShard(part), byDoc: layout.byDocumentShard(part), byLat: layout.byLatentShard(part), stats: layout.partStats(part), examples: layout.partExamples(part) }
  await objects.put(prefix + keys.docs, docsShard.bytes)
  await objects.put(prefix + keys.byDoc, latentShards.byDocument.bytes)
  await objects.put(prefix + keys.byLat, latentShards.byLatent.bytes)
  await objects.put(prefix + keys.stats, writeLatentStats(statsFromCsr(csr, spec.docStart)))
  seconds.write += (performance.now() - t0) / 1000
  if (capture) {
    const tc = performance.now()
    await objects.put(prefix + keys.examples, capture.write(encoder.tokenText))
    seconds.examples += (performance.now() - tc) / 1000
  }
  const marker: PartMarker = {
    part, docStart: spec.docStart, docCount: nDocs, tokens, truncated, masked, nnz: pooled.length,
    files: {
      documents: { key: keys.docs, ...docsShard.file },
      byDocument: { key: keys.byDoc, ...latentShards.byDocument.file },
      byLatent: { key: keys.byLat, ...latentShards.byLatent.file },
    },
    statsKey: keys.stats, ...(capture ? { examplesKey: keys.examples } : {}), seconds, receiveCount: opts.receiveCount ?? 1,
  }
  // The marker goes last, and only if the dataset was not deleted meanwhile.
  if (await datasets.isTombstoned(tenant, record.id)) throw new DatasetDeletedError(tenant, record.id)
  await objects.put(prefix + layout.partDone(part), JSON.stringify(PartMarker.parse(marker)), JSON_TYPE)
  log(`part ${part}: ${nDocs} documents, ${pooled.length} pooled latents`)
  return marker
}

/**
 * Once every part is done: merge the parts' statistics in part order, mine top examples, and commit the manifest
 * create-only (exactly once however many finalizers race). `committed` is false when another had committed it.
 */
export function finalizeEncode(record: DatasetRecord, plan: EncodePlan, opts: EncodeOptions): Promise<EncodeResult & { committed: boolean }> {
  return failIfDeleted(record, opts.datasets, () => finalizeParts(record, plan, opts))
}

async function finalizeParts(record: DatasetRecord, plan: EncodePlan, opts: EncodeOptions): Promise<EncodeResult & { committed: boolean }> {
  const { encoder, objects, datasets } = opts
  const log = opts.log ?? (() => {})
  const tenant = record.tenant
  const prefix = layout.datasetPrefix(tenant, record.id)
  const nLatents = encoder.info.dSae
  const markers = await mapLimit(plan.parts.map((_, p) => p), 16, async (p) => {
    const marker = await readPartMarker(objects, record, p)
    if (!marker) throw new Error(`part ${p} is not done yet: the manifest waits for every part`)
    return marker
  })
  const seconds = { plan: plan.seconds, tokenize: 0, encode: 0, write: 0, topExamples: 0 }
  let captureSeconds = 0
  const masked = { special: 0, outlier: 0, role: 0 }
  let tokens = 0, truncated = 0, nnz = 0, documents = 0, redelivered = 0
  for (const m of markers) {
    seconds.tokenize += m.seconds.tokenize; seconds.encode += m.seconds.encode; seconds.write += m.seconds.write
    captureSeconds += m.seconds.examples ?? 0
    masked.special += m.masked.special; masked.outlier += m.masked.outlier; masked.role += m.masked.role
    tokens += m.tokens; truncated += m.truncated; nnz += m.nnz; documents += m.docCount
    if (m.receiveCount > 1) redelivered++
  }
  const t0 = performance.now()
  let stats: LatentStats | null = null
  for (const m of markers) {
    const partStats = await readLatentStats(objects, prefix + m.statsKey)
    stats = stats ? mergeStats(stats, partStats) : partStats
  }
  const finalStats = stats!
  const statsKey = layout.latentStats()
  await objects.put(prefix + statsKey, writeLatentStats(finalStats))
  // What search reads of the statistics, precomputed: a fresh process need not decode every histogram.
  await objects.put(prefix + layout.latentP90(), writeLatentP90(finalStats))
  seconds.write += (performance.now() - t0) / 1000
  let activeLatents = 0
  for (let s = 0; s < nLatents; s++) if (finalStats.docCount[s] > 0) activeLatents++

  const documentFiles = markers.map((m) => m.files.documents)
  const perLatent = opts.topExamplesPerLatent ?? 5
  let topExamples: Manifest['topExamples']
  if (perLatent > 0) {
    const examplesKey = layout.topExamples()
    const tExamples = performance.now()
    const bytes = await capturedTopExamples(objects, prefix, markers, finalStats, perLatent, log)
      ?? await mineTopExamples({ objects, prefix, encoder, stats: finalStats, documentFiles, perLatent, poolRoles: poolRolesOf(record), log })
    await objects.put(prefix + examplesKey, bytes)
    // The parts' capture (host side: cutting windows, the running lists, their files) plus this merge.
    seconds.topExamples = captureSeconds + (performance.now() - tExamples) / 1000
    topExamples = { key: examplesKey, perLatent }
  }

  const summary: DatasetStats = {
    documents, tokens, meanTokens: tokens / documents, truncated, skipped: plan.skipped, maskedTokens: masked,
    activeLatents, meanActivePerDocument: nnz / documents,
    seconds: { total: (Date.now() - Date.parse(plan.startedAt)) / 1000, ...seconds },
    parts: { count: markers.length, redelivered },
  }
  const manifest: Manifest = {
    storeVersion: STORE_VERSION,
    // Derived from the record, not the clock, so a re-run writes a byte-identical manifest.
    datasetId: record.id, tenant, createdAt: record.createdAt,
    encoder: { id: encoder.info.id, hookName: encoder.info.hookName, dSae: nLatents, architecture: encoder.info.architecture },
    encoderFingerprint: datasetFingerprint(encoder.baseFingerprint, record.pooling, encoder.info.maxTokens, encoder.config.reader.longDocuments),
    pooling: record.pooling, maxTokens: encoder.info.maxTokens, longDocuments: encoder.config.reader.longDocuments,
    documents: { count: documents, tokens, files: documentFiles },
    latents: { nnz, byDocument: markers.map((m) => m.files.byDocument), byLatent: markers.map((m) => m.files.byLatent) },
    stats: { key: statsKey, histogramEdges: Array.from(HISTOGRAM_EDGES) },
    ...(topExamples ? { topExamples } : {}),
    // Timings and redeliveries differ from run to run: the record has them, the manifest stays reproducible.
    summary: { ...summary, seconds: undefined, parts: undefined } as unknown as Record<string, unknown>,
  }
  // The manifest goes last, and only if the dataset was not deleted meanwhile.
  const committed = await datasets.commitManifest(tenant, record.id, manifest, { once: true })
  return { manifest, stats: summary, committed }
}

/**
 * The parts' captured top examples merged, or null when a part has none (encoded without capture, or for fewer
 * examples per latent than asked) or when they disagree with the statistics: the caller then mines them.
 */
async function capturedTopExamples(objects: ObjectStore, prefix: string, markers: PartMarker[], stats: LatentStats, perLatent: number,
  log: (line: string) => void): Promise<Uint8Array | null> {
  const want = Math.min(perLatent, stats.topK)
  const files: Uint8Array[] = []
  for (const m of markers) {
    const bytes = m.examplesKey ? await objects.get(prefix + m.examplesKey) : null
    if (!bytes || partExamplesPerLatent(bytes) < want) {
      log(`top examples: part ${m.part} has no captured examples (for ${want} per latent): mining them in a second pass`)
      return null
    }
    files.push(bytes)
  }
  const merged = await mergePartExamples(files, stats, want)
  if ('mismatch' in merged) {
    log(`top examples: the captured lists disagree with the statistics (${merged.mismatch}): mining them in a second pass`)
    return null
  }
  log(`top examples: merged ${merged.rows} captured examples of ${markers.length} part(s)`)
  return merged.bytes
}

/** After the commit: delete the plan, staged inputs, markers, progress and part statistics (idempotent). */
export async function sweepBookkeeping(objects: ObjectStore, record: Pick<DatasetRecord, 'tenant' | 'id'>): Promise<void> {
  const prefix = layout.datasetPrefix(record.tenant, record.id)
  for (const entry of layout.encodeBookkeeping) {
    const keys = entry.endsWith('/') ? (await objects.list(prefix + entry)).map((o) => o.key) : [prefix + entry]
    await mapLimit(keys, 16, (key) => objects.delete(key))
  }
}

/**
 * The whole encoding in this process: plan, every part not yet done, finalize, sweep. What tests, benchmarks and
 * evaluations use; the queue handler spreads the same steps over workers.
 */
export async function encodeDataset(record: DatasetRecord, opts: EncodeOptions): Promise<EncodeResult> {
  const committed = await opts.datasets.getManifest(record.tenant, record.id)
  if (committed) {
    // Committed by an earlier run that may have died before its sweep.
    await sweepBookkeeping(opts.objects, record)
    return { manifest: committed, stats: committed.summary as unknown as DatasetStats }
  }
  const plan = await planEncode(record, opts)
  const done = await finishedParts(opts.objects, record)
  for (let p = 0; p < plan.parts.length; p++) if (!done.has(p)) await encodePart(record, plan, p, opts)
  const result = await finalizeEncode(record, plan, opts)
  await sweepBookkeeping(opts.objects, record)
  return result
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
function mergeWindow(method: string, best: Float32Array, bestPos: Int32Array, weight: Float64Array, d: number, nLatents: number,
  pooled: Float32Array, argmax: Int32Array, b: number, offset: number, wWeight: number): void {
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
    if (v > best[base + s]) { best[base + s] = v; bestPos[base + s] = argmax[src + s] + offset }
  }
}

async function* readInlineDocuments(objects: ObjectStore, key: string): AsyncIterable<SourceDocument | { skip: string }> {
  const bytes = await objects.get(key)
  if (!bytes) throw new PermanentJobError('input-missing', 'the inline documents of this dataset are missing from the store')
  const lines = new TextDecoder().decode(bytes).split('\n')
  let i = 0
  for (const line of lines) {
    if (!line) continue
    const d = JSON.parse(line) as { id?: string; text?: string; messages?: Array<{ role: string; content: string }>; metadata?: Record<string, unknown> }
    yield { id: d.id ?? String(i), ...(d.text !== undefined ? { text: d.text } : {}), ...(d.messages ? { messages: d.messages } : {}), metadata: d.metadata ?? {} }
    i++
  }
}

export function isPermanent(err: unknown): err is PermanentJobError | SourceError {
  return err instanceof PermanentJobError || err instanceof SourceError
}

export type { PooledCsr }
