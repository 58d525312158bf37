/** @module A latent's page: frequency and value distribution from the latent statistics, and its top examples with per-token activations. */
import {
  SLICE_STRONGEST_DEFAULT,
  type LatentPage,
  type LatentPageQuery,
  type TopExample
} from '@latentbase/shared/contract/latents'
import type { EncoderCatalog } from '@latentbase/shared/catalog/catalog'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import { readByLatent, readPositionsAt } from '@latentbase/shared/store/latent-shards/read-by-latent'
import { readDocuments } from '@latentbase/shared/store/documents/read'
import { readLatentExamples, type LatentExamples } from '@latentbase/shared/store/top-examples/read'
import { readLatentStatsRow } from '@latentbase/shared/store/stats/read'
import { inRows, latentStatsOfRows, strongestInRows } from '@latentbase/shared/analysis/slice'
import { documentsOf, sliceDataset } from './slice-service.ts'
import { quantile, HISTOGRAM_EDGES, HISTOGRAM_SLOTS } from '@latentbase/shared/analysis/latent-stats'
import { mergeLabelOverlay, readLabelOverlay, type LabelInfo } from '@latentbase/shared/catalog/label-overlay'
import { scoreAt } from '@latentbase/shared/contract/latents'
import { ApiError } from '../problem.ts'
import { loadReadyDataset, type ReadyDataset } from './ready-dataset.ts'
import type { AnalysisContext } from './context.ts'

export type { LabelInfo }

/** Where a tenant's label overlay is (relabel runs): without it, the encoder's own labels only. */
export interface OverlayScope {
  objects: ObjectStore
  tenant: string
  fingerprint: string
}

/**
 * Sources with "imported" where a label has no stated source, memoized per catalog label array: the same array must
 * come back while nothing changes (merged overlays and label matchers are cached by identity), also from catalogs that
 * build a fresh sources array on every call.
 */
const sourcesWithDefault = new WeakMap<
  ReadonlyArray<string | null>,
  { raw: (string | null)[]; out: (string | null)[] }
>()
function withImported(labels: (string | null)[], sources: (string | null)[]): (string | null)[] {
  const hit = sourcesWithDefault.get(labels)
  if (hit && (hit.raw === sources || sameArray(hit.raw, sources))) return hit.out
  const out = labels.map((l, i) => (l == null ? (sources[i] ?? null) : (sources[i] ?? 'imported')))
  sourcesWithDefault.set(labels, { raw: sources, out })
  return out
}

function sameArray(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

const noOverlay = { signature: '', lines: new Map() }

/**
 * The encoder's labels, their sources and scores, with the tenant's label overlay (LLM labels of relabel runs) merged
 * on top when `scope` is given. A catalog that fails (unknown encoder) gives all-null labels rather than failing the
 * result; an overlay that cannot be read leaves the encoder's own labels.
 */
export async function loadLabelInfo(
  encoders: EncoderCatalog,
  encoderId: string,
  dSae: number,
  scope?: OverlayScope
): Promise<LabelInfo> {
  const blank = () => new Array<string | null>(dSae).fill(null)
  const [labels, sources, detection, overlay] = await Promise.all([
    encoders.labels(encoderId).catch(blank),
    encoders.labelSources ? encoders.labelSources(encoderId).catch(blank) : Promise.resolve(null),
    encoders.labelDetection ? encoders.labelDetection(encoderId).catch(() => null) : Promise.resolve(null),
    scope
      ? readLabelOverlay(scope.objects, scope.tenant, scope.fingerprint).catch(() => noOverlay)
      : Promise.resolve(noOverlay)
  ])
  const base = { labels, sources: withImported(labels, sources ?? blankSources(labels)), detection }
  return mergeLabelOverlay(base, overlay, scope ? `${scope.tenant}/${scope.fingerprint}` : '')
}

const blanks = new WeakMap<ReadonlyArray<string | null>, (string | null)[]>()
function blankSources(labels: (string | null)[]): (string | null)[] {
  let b = blanks.get(labels)
  if (!b) blanks.set(labels, (b = new Array<string | null>(labels.length).fill(null)))
  return b
}

/** The 404 for a latent the dataset's encoder does not have. */
export function checkLatent(ds: ReadyDataset, latent: number): void {
  const dSae = ds.manifest.encoder.dSae
  if (!(Number.isInteger(latent) && latent >= 0 && latent < dSae)) {
    throw new ApiError(
      404,
      'latent-not-found',
      `latent ${latent} does not exist: encoder ${ds.manifest.encoder.id} of dataset "${ds.record.id}" has latents 0-${dSae - 1}`
    )
  }
}

/** GET /latents/{latent}?dataset=ID */
export async function getLatentPage(ctx: AnalysisContext, latent: number, query: LatentPageQuery): Promise<LatentPage> {
  const whole = await loadReadyDataset(ctx.datasets, ctx.tenant, query.dataset, 'dataset')
  checkLatent(whole, latent)
  const ds = await sliceDataset(ctx.objects, whole, query.where, 'where')
  const { manifest, prefix, slice } = ds
  // A slice's statistics and strongest documents come from the latent's own pages of the by-latent shards, restricted
  // to the slice's rows (the positions of the few strongest read at their file rows).
  const strongestWanted = query.examples ?? SLICE_STRONGEST_DEFAULT
  const sliceStats = async () => {
    const csc = await readByLatent(
      ctx.objects,
      prefix,
      manifest.latents.byLatent,
      [latent],
      { nDocs: manifest.documents.count, nLatents: manifest.encoder.dSae },
      { positions: false }
    )
    const a = csc.indptr[latent]
    const b = csc.indptr[latent + 1]
    const docs = csc.docs.subarray(a, b)
    const values = csc.values.subarray(a, b)
    const top = strongestInRows(docs, values, slice!.rows, strongestWanted)
    const topDocs = top.map(e => docs[e])
    const topPositions = top.map(e => csc.positions[a + e])
    return {
      stats: latentStatsOfRows(docs, values, slice!.rows),
      strongest: {
        doc: topDocs,
        value: Float32Array.from(top, e => values[e]),
        position: csc.fileRows
          ? await readPositionsAt(ctx.objects, prefix, manifest.latents.byLatent, topDocs, topPositions)
          : topPositions
      }
    }
  }
  const [{ stats, strongest }, labels, stored] = await Promise.all([
    slice
      ? sliceStats()
      : readLatentStatsRow(ctx.objects, prefix + manifest.stats.key, latent).then(stats => ({
          stats,
          strongest: undefined
        })),
    loadLabelInfo(ctx.encoders, manifest.encoder.id, manifest.encoder.dSae, {
      objects: ctx.objects,
      tenant: ctx.tenant,
      fingerprint: manifest.encoderFingerprint
    }),
    manifest.topExamples && query.examples !== 0
      ? readLatentExamples(
          ctx.objects,
          prefix + manifest.topExamples.key,
          latent,
          slice ? Infinity : (query.examples ?? Infinity)
        )
      : Promise.resolve(null)
  ])
  const examples = stored && slice ? examplesInSlice(stored, slice.rows, query.examples ?? Infinity) : stored
  const documents = stats.docCount[0]
  const slots = stats.histogram.subarray(0, HISTOGRAM_SLOTS)

  const topExamples: TopExample[] = []
  // One read of the documents for the top examples and the slice's strongest.
  const shown = [...(examples?.doc ?? []), ...(strongest?.doc ?? [])]
  const docs = shown.length
    ? await readDocuments(ctx.objects, prefix, manifest.documents.files, shown, query.text ? ['id', 'text'] : ['id'])
    : null
  const at = new Map<number, number>()
  for (let i = 0; i < (docs?.row.length ?? 0); i++) at.set(docs!.row[i], i)
  const textAt = (j: number | undefined) =>
    query.text && j !== undefined ? { text: String((docs as { text?: string[] }).text![j]) } : {}
  if (examples && docs) {
    for (let i = 0; i < examples.doc.length; i++) {
      const j = at.get(examples.doc[i])
      topExamples.push({
        row: examples.doc[i],
        id: j === undefined ? '' : String(docs.id[j]),
        rank: examples.rank[i],
        value: examples.value[i],
        ...textAt(j),
        tokens: examples.tokens[i],
        activations: examples.activations[i],
        position: examples.position[i],
        windowStart: examples.windowStart[i]
      })
    }
  }
  const p90 = quantile(stats, 0, 0.9)
  return {
    latent,
    label: labels.labels[latent] ?? null,
    labelSource: labels.sources[latent] ?? null,
    labelScore: scoreAt(labels, latent),
    encoder: manifest.encoder.id,
    dataset: ds.record.id,
    ...(slice ? { where: slice.text, sliceDocuments: slice.rows.length } : {}),
    frequency: documentsOf(ds) ? documents / documentsOf(ds) : 0,
    documents,
    mean: documents ? stats.sum[0] / documents : null,
    p90: Number.isNaN(p90) ? null : p90,
    max: stats.max[0],
    histogram: {
      edges: Array.from(HISTOGRAM_EDGES),
      counts: Array.from(slots.subarray(1, HISTOGRAM_SLOTS - 1)),
      underflow: slots[0],
      overflow: slots[HISTOGRAM_SLOTS - 1]
    },
    topExamples,
    ...(strongest
      ? {
          sliceStrongest: Array.from(strongest.doc, (row, i) => ({
            row,
            id: docs && at.has(row) ? String(docs.id[at.get(row)!]) : '',
            value: strongest.value[i],
            position: strongest.position[i],
            ...textAt(at.get(row))
          }))
        }
      : {})
  }
}

/** The stored top examples (the whole dataset's best) whose documents are in the slice, in rank order, at most `limit`. */
function examplesInSlice(ex: LatentExamples, rows: Int32Array, limit: number): LatentExamples {
  const keep = inRows(rows, ex.doc)
  const at: number[] = []
  for (let i = 0; i < keep.length && at.length < limit; i++) if (keep[i]) at.push(i)
  const pickTyped = <T extends Int32Array | Float32Array>(a: T): T => {
    const out = new (a.constructor as { new (n: number): T })(at.length)
    at.forEach((i, j) => {
      out[j] = a[i]
    })
    return out
  }
  return {
    rank: pickTyped(ex.rank),
    doc: pickTyped(ex.doc),
    value: pickTyped(ex.value),
    position: pickTyped(ex.position),
    windowStart: pickTyped(ex.windowStart),
    tokens: at.map(i => ex.tokens[i]),
    activations: at.map(i => ex.activations[i])
  }
}
