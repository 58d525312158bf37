/** @module The finalize step of an encoding: merge the parts' statistics and top examples, and commit the manifest, written once and last. */
import type { DatasetRecord, DatasetStats } from '@latentbase/shared/contract/dataset'
import { STORE_VERSION, type Manifest } from '@latentbase/shared/contract/manifest'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import { layout } from '@latentbase/shared/store/layout'
import { mergeStats, HISTOGRAM_EDGES, type LatentStats } from '@latentbase/shared/analysis/latent-stats'
import { writeLatentP90, writeLatentStats } from '@latentbase/shared/store/stats/write'
import { readLatentStats } from '@latentbase/shared/store/stats/read'
import { readFacets, writeFacets } from '@latentbase/shared/store/stats/facets'
import { FacetsMerger } from '@latentbase/shared/analysis/facets'
import type { EncodePlan, PartMarker } from '@latentbase/shared/contract/encode-plan'
import { mapLimit } from '@latentbase/shared/util/map-limit'
import { datasetFingerprint } from '../encode/runtime.ts'
import { mineTopExamples } from './top-examples.ts'
import { mergePartExamples, partExamplesPerLatent } from './example-capture.ts'
import { failIfDeleted, poolRolesOf, readPartMarker, type EncodeOptions, type EncodeResult } from './encode-options.ts'

/**
 * Once every part is done: merge the parts' statistics in part order, mine top examples, and commit the manifest
 * create-only (exactly once however many finalizers race). `committed` is false when another had committed it.
 */
export function finalizeEncode(
  record: DatasetRecord,
  plan: EncodePlan,
  opts: EncodeOptions
): Promise<EncodeResult & { committed: boolean }> {
  return failIfDeleted(record, opts.datasets, () => finalizeParts(record, plan, opts))
}

async function finalizeParts(
  record: DatasetRecord,
  plan: EncodePlan,
  opts: EncodeOptions
): Promise<EncodeResult & { committed: boolean }> {
  const { encoder, objects, datasets } = opts
  const log = opts.log ?? (() => {})
  const tenant = record.tenant
  const prefix = layout.datasetPrefix(tenant, record.id)
  const nLatents = encoder.info.dSae
  const markers = await mapLimit(
    plan.parts.map((_, p) => p),
    16,
    async p => {
      const marker = await readPartMarker(objects, record, p)
      if (!marker) throw new Error(`part ${p} is not done yet: the manifest waits for every part`)
      return marker
    }
  )
  const seconds = { plan: plan.seconds, tokenize: 0, encode: 0, write: 0, topExamples: 0 }
  let captureSeconds = 0
  const masked = { special: 0, outlier: 0, role: 0 }
  let tokens = 0,
    truncated = 0,
    nnz = 0,
    documents = 0,
    redelivered = 0
  for (const m of markers) {
    seconds.tokenize += m.seconds.tokenize
    seconds.encode += m.seconds.encode
    seconds.write += m.seconds.write
    captureSeconds += m.seconds.examples ?? 0
    masked.special += m.masked.special
    masked.outlier += m.masked.outlier
    masked.role += m.masked.role
    tokens += m.tokens
    truncated += m.truncated
    nnz += m.nnz
    documents += m.docCount
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
  const facets = await mergedFacets(objects, prefix, markers)
  seconds.write += (performance.now() - t0) / 1000
  let activeLatents = 0
  for (let s = 0; s < nLatents; s++) if (finalStats.docCount[s] > 0) activeLatents++

  const documentFiles = markers.map(m => m.files.documents)
  const perLatent = opts.topExamplesPerLatent ?? 5
  let topExamples: Manifest['topExamples']
  if (perLatent > 0) {
    const examplesKey = layout.topExamples()
    const tExamples = performance.now()
    const bytes =
      (await capturedTopExamples(objects, prefix, markers, finalStats, perLatent, log)) ??
      (await mineTopExamples({
        objects,
        prefix,
        encoder,
        stats: finalStats,
        documentFiles,
        perLatent,
        poolRoles: poolRolesOf(record),
        log
      }))
    await objects.put(prefix + examplesKey, bytes)
    // The parts' capture (host side: cutting windows, the running lists, their files) plus this merge.
    seconds.topExamples = captureSeconds + (performance.now() - tExamples) / 1000
    topExamples = { key: examplesKey, perLatent }
  }

  const summary: DatasetStats = {
    documents,
    tokens,
    meanTokens: tokens / documents,
    truncated,
    skipped: plan.skipped,
    maskedTokens: masked,
    activeLatents,
    meanActivePerDocument: nnz / documents,
    seconds: { total: (Date.now() - Date.parse(plan.startedAt)) / 1000, ...seconds },
    parts: { count: markers.length, redelivered }
  }
  const manifest: Manifest = {
    storeVersion: STORE_VERSION,
    // Derived from the record, not the clock, so a re-run writes a byte-identical manifest.
    datasetId: record.id,
    tenant,
    createdAt: record.createdAt,
    encoder: {
      id: encoder.info.id,
      hookName: encoder.info.hookName,
      dSae: nLatents,
      architecture: encoder.info.architecture
    },
    encoderFingerprint: datasetFingerprint(
      encoder.baseFingerprint,
      record.pooling,
      encoder.info.maxTokens,
      encoder.config.reader.longDocuments
    ),
    pooling: record.pooling,
    maxTokens: encoder.info.maxTokens,
    longDocuments: encoder.config.reader.longDocuments,
    documents: { count: documents, tokens, files: documentFiles },
    latents: { nnz, byDocument: markers.map(m => m.files.byDocument), byLatent: markers.map(m => m.files.byLatent) },
    stats: { key: statsKey, histogramEdges: Array.from(HISTOGRAM_EDGES) },
    ...(topExamples ? { topExamples } : {}),
    ...(facets ? { facets } : {}),
    // Timings and redeliveries differ from run to run: the record has them, the manifest stays reproducible.
    summary: { ...summary, seconds: undefined, parts: undefined } as unknown as Record<string, unknown>
  }
  // The manifest goes last, and only if the dataset was not deleted meanwhile.
  const committed = await datasets.commitManifest(tenant, record.id, manifest, { once: true })
  return { manifest, stats: summary, committed }
}

/**
 * The parts' facets merged and written, or null when a part has none (a part from before facets, on a redelivered
 * job): a metadata slice then reads its rows, as it would without facets.
 */
async function mergedFacets(
  objects: ObjectStore,
  prefix: string,
  markers: PartMarker[]
): Promise<Manifest['facets'] | null> {
  if (!markers.every(m => m.facetsKey)) return null
  // Parts in row order, one in memory at a time.
  const merger = new FacetsMerger()
  for (const m of markers) merger.add(await readFacets(objects, prefix + m.facetsKey))
  const merged = merger.result()
  const key = layout.facets()
  await objects.put(prefix + key, writeFacets(merged))
  return { key, fields: merged.fields.map(f => f.key) }
}

/**
 * The parts' captured top examples merged, or null when a part has none (encoded without capture, or for fewer
 * examples per latent than asked) or when they disagree with the statistics: the caller then mines them.
 */
async function capturedTopExamples(
  objects: ObjectStore,
  prefix: string,
  markers: PartMarker[],
  stats: LatentStats,
  perLatent: number,
  log: (line: string) => void
): Promise<Uint8Array | null> {
  const want = Math.min(perLatent, stats.topK)
  const files: Uint8Array[] = []
  for (const m of markers) {
    const bytes = m.examplesKey ? await objects.get(prefix + m.examplesKey) : null
    if (!bytes || partExamplesPerLatent(bytes) < want) {
      log(
        `top examples: part ${m.part} has no captured examples (for ${want} per latent): mining them in a second pass`
      )
      return null
    }
    files.push(bytes)
  }
  const merged = await mergePartExamples(files, stats, want)
  if ('mismatch' in merged) {
    log(
      `top examples: the captured lists disagree with the statistics (${merged.mismatch}): mining them in a second pass`
    )
    return null
  }
  log(`top examples: merged ${merged.rows} captured examples of ${markers.length} part(s)`)
  return merged.bytes
}
