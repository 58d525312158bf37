/** @module The encode job: source -> tokens -> one fused reader+SAE+pooling graph per batch -> sparse shards -> manifest (last). */
import type { DatasetRecord, DatasetStats, SourceSpec } from '@latentbase/shared/contract/dataset'
import { STORE_VERSION, type Manifest, type ShardFile } from '@latentbase/shared/contract/manifest'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import { layout } from '@latentbase/shared/store/layout'
import { DatasetDeletedError, type DatasetStore } from '@latentbase/shared/store/dataset-store'
import { writeDocumentsShard, writeLatentShards } from '@latentbase/shared/store/shards'
import { statsFromCsr, mergeStats, writeLatentStats, HISTOGRAM_EDGES, type LatentStats } from '@latentbase/shared/store/latent-stats'
import { csrFromSortedRows, type PooledCsr } from '@latentbase/shared/analysis/sparse'
import { datasetFingerprint, type LoadedEncoder } from '../encoder/runtime.ts'
import { readSourceDocuments, SourceError, type SourceDocument } from '../source/records.ts'
import type { OpenSourceOptions } from '../source/fetch.ts'
import { prepareDocument, type PreparedDocument } from '../prepare/tokenize.ts'
import { planBatches, packBatch } from '../prepare/batches.ts'
import { mineTopExamples } from './top-examples.ts'

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
  /** Documents per part: each part is written as its own shards, bounding memory. */
  partDocuments?: number
  /** Documents tokenized and batched together (length-sorted within the chunk). */
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

export async function encodeDataset(record: DatasetRecord, opts: EncodeOptions): Promise<EncodeResult> {
  const started = performance.now()
  const { encoder, objects, datasets } = opts
  const log = opts.log ?? (() => {})
  const tenant = record.tenant
  const prefix = layout.datasetPrefix(tenant, record.id)
  const nLatents = encoder.info.dSae
  const partDocuments = opts.partDocuments ?? 65_536
  const chunkDocuments = opts.chunkDocuments ?? 512
  const pooling = record.pooling
  const session = await encoder.createPoolingSession(pooling)
  const poolRoles = 'url' in record.source ? (record.source as SourceSpec).poolRoles : (record.poolRoles ?? ['assistant'])
  const prepareContext = { ...encoder.prepareContext, poolRoles }

  const skipped: Record<string, number> = {}
  const masked = { special: 0, outlier: 0, role: 0 }
  let row = 0
  let tokens = 0
  let truncatedCount = 0
  const seconds = { tokenize: 0, encode: 0, write: 0, topExamples: 0 }
  let part = 0
  let partStart = 0
  let columns = emptyPart()
  let pooled = new PooledRows()
  let stats: LatentStats | null = null
  const documentFiles: ShardFile[] = []
  const byDocumentFiles: ShardFile[] = []
  const byLatentFiles: ShardFile[] = []
  let nnz = 0
  let lastProgress = performance.now()
  const total = 'inline' in record.source ? record.source.inline : null

  const reportProgress = async (force = false) => {
    if (!force && performance.now() - lastProgress < (opts.progressIntervalMs ?? 2000)) return
    lastProgress = performance.now()
    if (await datasets.isTombstoned(tenant, record.id)) throw new DatasetDeletedError(tenant, record.id)
    await datasets.putRecord({ ...record, progress: { documents: { done: row, total }, tokens }, updatedAt: new Date().toISOString() })
  }

  const flushPart = async () => {
    if (columns.row.length === 0) return
    const t0 = performance.now()
    const nDocs = columns.row.length
    const csr = csrFromSortedRows(nDocs, nLatents, partStart, pooled.docs.subarray(0, pooled.length),
      pooled.latents.subarray(0, pooled.length), pooled.values.subarray(0, pooled.length), pooled.positions.subarray(0, pooled.length))
    const docsShard = writeDocumentsShard({
      row: Int32Array.from(columns.row), id: columns.id, text: columns.text, metadata: columns.metadata, messages: columns.messages,
      token_count: columns.tokenCount, truncated: columns.truncated, masked_tokens: columns.maskedTokens,
    })
    const latentShards = writeLatentShards(csr, { docOffset: partStart })
    const keys = { docs: layout.documentsShard(part), byDoc: layout.byDocumentShard(part), byLat: layout.byLatentShard(part) }
    await objects.put(prefix + keys.docs, docsShard.bytes)
    await objects.put(prefix + keys.byDoc, latentShards.byDocument.bytes)
    await objects.put(prefix + keys.byLat, latentShards.byLatent.bytes)
    documentFiles.push({ key: keys.docs, ...docsShard.file })
    byDocumentFiles.push({ key: keys.byDoc, ...latentShards.byDocument.file })
    byLatentFiles.push({ key: keys.byLat, ...latentShards.byLatent.file })
    const partStats = statsFromCsr(csr, partStart)
    stats = stats ? mergeStats(stats, partStats) : partStats
    nnz += pooled.length
    seconds.write += (performance.now() - t0) / 1000
    log(`part ${part}: ${nDocs} documents, ${pooled.length} pooled latents`)
    part++
    partStart = row
    columns = emptyPart()
    pooled = new PooledRows()
  }

  // Dense per-chunk pooled buffers: chunk x latents, small (512 x 16k floats = 32 MB at most), reused.
  const best = new Float32Array(chunkDocuments * nLatents)
  const bestPos = new Int32Array(chunkDocuments * nLatents)
  const weight = new Float64Array(chunkDocuments)

  const encodeChunk = async (docs: SourceDocument[]) => {
    const tPrepare = performance.now()
    const prepared: Array<{ doc: SourceDocument; prep: PreparedDocument }> = []
    for (const doc of docs) {
      let prep: PreparedDocument
      try {
        prep = prepareDocument(doc, prepareContext)
      } catch (err) {
        skipped['tokenizer-error'] = (skipped['tokenizer-error'] ?? 0) + 1
        log(`skipped document ${doc.id}: ${(err as Error).message}`)
        continue
      }
      if (prep.pooledTokens === 0) { skipped['nothing-to-pool'] = (skipped['nothing-to-pool'] ?? 0) + 1; continue }
      prepared.push({ doc, prep })
    }
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
    for (const batchIdx of planBatches(lengths, { maxTokensPerBatch: opts.maxTokensPerBatch ?? 8192, maxBatchSize: opts.maxBatchSize ?? 32 })) {
      opts.signal?.throwIfAborted()
      const batch = packBatch(Array.from(batchIdx, (i) => windowItems[i]), encoder.padTokenId)
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
      if (prep.truncated) truncatedCount++
      row++
      if (row - partStart >= partDocuments) await flushPart()
    }
  }

  const source: AsyncIterable<SourceDocument | { skip: string }> = 'inline' in record.source
    ? readInlineDocuments(objects, layout.inlineInput(tenant, record.id))
    : readSourceDocuments(record.source as SourceSpec, { allowLocal: opts.allowLocalSources, signal: opts.signal, guard: opts.sourceGuard })
  let chunk: SourceDocument[] = []
  let tRead = performance.now()
  for await (const item of source) {
    seconds.tokenize += (performance.now() - tRead) / 1000
    if ('skip' in item) { skipped[item.skip] = (skipped[item.skip] ?? 0) + 1; continue }
    chunk.push(item)
    if (chunk.length === chunkDocuments) {
      await encodeChunk(chunk)
      chunk = []
      await reportProgress()
    }
    tRead = performance.now()
  }
  if (chunk.length) await encodeChunk(chunk)
  await session.release()
  await flushPart()
  if (row === 0) {
    const reasons = Object.entries(skipped).map(([k, v]) => `${v} ${k}`).join(', ')
    throw new PermanentJobError('no-documents', `the source has no usable documents${reasons ? ` (skipped: ${reasons})` : ''}`)
  }
  await reportProgress(true)

  const finalStats = stats as unknown as LatentStats
  const statsKey = layout.latentStats()
  const tStats = performance.now()
  await objects.put(prefix + statsKey, writeLatentStats(finalStats))
  seconds.write += (performance.now() - tStats) / 1000
  let activeLatents = 0
  for (let s = 0; s < nLatents; s++) if (finalStats.docCount[s] > 0) activeLatents++

  const perLatent = opts.topExamplesPerLatent ?? 5
  let topExamples: Manifest['topExamples']
  if (perLatent > 0) {
    const examplesKey = layout.topExamples()
    const tExamples = performance.now()
    const bytes = await mineTopExamples({ objects, prefix, encoder, stats: finalStats, documentFiles, perLatent, poolRoles, log })
    await objects.put(prefix + examplesKey, bytes)
    seconds.topExamples = (performance.now() - tExamples) / 1000
    topExamples = { key: examplesKey, perLatent }
  }

  const summary: DatasetStats = {
    documents: row, tokens, meanTokens: tokens / row, truncated: truncatedCount, skipped, maskedTokens: masked,
    activeLatents, meanActivePerDocument: nnz / row,
    seconds: { total: (performance.now() - started) / 1000, ...seconds },
  }
  const manifest: Manifest = {
    storeVersion: STORE_VERSION,
    // Derived from the record, not the clock, so a re-run writes a byte-identical manifest.
    datasetId: record.id, tenant, createdAt: record.createdAt,
    encoder: { id: encoder.info.id, hookName: encoder.info.hookName, dSae: nLatents, architecture: encoder.info.architecture },
    encoderFingerprint: datasetFingerprint(encoder.baseFingerprint, pooling, encoder.info.maxTokens, encoder.config.reader.longDocuments),
    pooling, maxTokens: encoder.info.maxTokens, longDocuments: encoder.config.reader.longDocuments,
    documents: { count: row, tokens, files: documentFiles },
    latents: { nnz, byDocument: byDocumentFiles, byLatent: byLatentFiles },
    stats: { key: statsKey, histogramEdges: Array.from(HISTOGRAM_EDGES) },
    ...(topExamples ? { topExamples } : {}),
    summary: { ...summary, seconds: undefined } as unknown as Record<string, unknown>,
  }
  // The manifest goes last, and only if the dataset was not deleted meanwhile.
  await datasets.commitManifest(tenant, record.id, manifest)
  return { manifest, stats: summary }
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
