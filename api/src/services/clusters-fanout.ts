/**
 * @module Clustering past one process: reading a sample of rows in bounded ranges, one assignment part (the rows of
 * one document range to their nearest fitted centroid, with additive counts), and the merge of the parts into the
 * clusters answer. No queue here: analysis-jobs.ts routes the messages; clusters-service.ts fits and plans.
 */
import type { Cluster, ClustersResult } from '@latentbase/shared/contract/clusters'
import { latentRef } from '@latentbase/shared/contract/latents'
import type { PooledCsr } from '@latentbase/shared/analysis/sparse'
import { selectRows } from '@latentbase/shared/analysis/slice'
import { binarize } from '@latentbase/shared/analysis/clustering/jaccard'
import { describeFromCounts, type ClusterLatent } from '@latentbase/shared/analysis/clustering/cluster'
import {
  addCounts,
  assignNearest,
  centralRows,
  centroidCosines,
  centroidTable,
  emptyCentral,
  mergeCentral,
  type CentralRows,
  countClusterLatents,
  decodeAssignPartial,
  emptyCounts,
  encodeAssignPartial,
  type AssignPartial,
  type FittedSample
} from '@latentbase/shared/analysis/clustering/assign'
import { lowerBound } from '@latentbase/shared/util/sorted'
import type { AnalysisContext } from './context.ts'
import { loadReadyDataset, readDocumentRange, type ReadyDataset } from './ready-dataset.ts'
import { sliceDataset } from './slice-service.ts'
import { parseSliceText } from '@latentbase/shared/contract/slice'
import { loadLabelInfo } from './latent-page-service.ts'
import { withPeaks, type PeakSource } from './latent-peaks.ts'
import { nameClusters } from './cluster-names.ts'
import { requireLlm } from './llm-helpers.ts'
import { addUsage } from '@latentbase/shared/llm/cost'
import type { ObjectStore } from '@latentbase/shared/store/object-store'

/** Documents per assignment part by default (one part's rows are what a worker holds besides the fit). */
export const DEFAULT_CLUSTER_PART_DOCS = 50_000

/** LATENTBASE_CLUSTER_PART_DOCS (default 50,000): documents per assignment part of a sampled clustering. */
export function clusterPartDocsFromEnv(env: Record<string, string | undefined> = {}): number {
  const v = Number(env.LATENTBASE_CLUSTER_PART_DOCS ?? DEFAULT_CLUSTER_PART_DOCS)
  if (!(Number.isInteger(v) && v >= 1))
    throw new RangeError(`LATENTBASE_CLUSTER_PART_DOCS must be a whole number >= 1 (got ${v})`)
  return v
}

/** What every assignment part and the merge share (plan.json); the fitted sample itself is stored as bytes beside it. */
export interface ClustersPlan {
  version: 1
  analysis: 'clusters'
  dataset: string
  /**
   * A slice's canonical text: then nDocs, the part boundaries, the fit's rows and the parts' rows are indexes into the
   * slice's rows (each part and the merge evaluate it again; a ready dataset's slice does not change).
   */
  where?: string
  nDocs: number
  k: number
  /** Part boundaries in dataset rows (in slice indexes with `where`): [0, b1, ..., nDocs]. */
  bounds: number[]
  /** The answer as fitted on the sample, without its per-row arrays; the merge fills in sizes, latents, assignments. */
  head: Omit<ClustersResult, 'assignments' | 'affinities' | 'rows'>
  /** nameClusters: the merge names the clusters once they are final (their sizes, latents and central rows). */
  nameClusters?: boolean
  /** When the job began (ms since the epoch), for the answer's `seconds`. */
  startedAt: number
}

/** Ranges of about `partDocs` rows covering [0, n). */
export function partBounds(n: number, partDocs: number): number[] {
  const parts = Math.max(1, Math.ceil(n / partDocs))
  return Array.from({ length: parts + 1 }, (_, p) => Math.round((p * n) / parts))
}

/** The pooled rows `rows` (ascending dataset rows) read range by range, so memory holds one range and the rows kept. */
export async function readRowsInRanges(
  read: (start: number, end: number) => Promise<PooledCsr & { docStart: number }>,
  rows: Int32Array,
  nDocs: number,
  rangeDocs: number
): Promise<PooledCsr> {
  const pieces: PooledCsr[] = []
  const bounds = partBounds(nDocs, rangeDocs)
  for (let p = 0; p + 1 < bounds.length; p++) {
    const lo = lowerBound(rows, bounds[p])
    const hi = lowerBound(rows, bounds[p + 1], lo)
    if (hi > lo) pieces.push(selectRows(await read(rows[lo], rows[hi - 1] + 1), rows.subarray(lo, hi)))
  }
  return concatRows(pieces, rows.length)
}

function concatRows(pieces: PooledCsr[], nDocs: number): PooledCsr {
  const nnz = pieces.reduce((s, p) => s + p.latents.length, 0)
  const indptr = new Int32Array(nDocs + 1)
  const latents = new Int32Array(nnz)
  const values = new Float32Array(nnz)
  const positions = new Int32Array(nnz)
  let row = 0
  let at = 0
  let nLatents = 0
  for (const p of pieces) {
    nLatents = p.nLatents
    for (let i = 0; i < p.nDocs; i++) indptr[row + i + 1] = at + p.indptr[i + 1]
    latents.set(p.latents, at)
    values.set(p.values, at)
    positions.set(p.positions, at)
    row += p.nDocs
    at += p.latents.length
  }
  return { nDocs, nLatents, indptr, latents, values, positions }
}

/**
 * The clusters' latents as the answer shows them (labels, sources, frequencies; a latent without a label with what it
 * peaks on in the dataset's top examples, one read for all clusters).
 */
export async function clusterLatentRefs(
  objects: ObjectStore,
  ds: PeakSource,
  described: ClusterLatent[][],
  labels: Awaited<ReturnType<typeof loadLabelInfo>>,
  dataset: string
): Promise<Cluster['latents'][]> {
  const refs = described.map(latents =>
    latents.map(l =>
      latentRef(
        labels.labels,
        labels.sources,
        l.latent,
        { dataset, frequencyIn: l.frequencyIn, frequencyOut: l.frequencyOut, difference: l.difference },
        labels
      )
    )
  )
  const peaked = await withPeaks(objects, ds, refs.flat())
  let at = 0
  return refs.map(latents => latents.map(() => peaked[at++]))
}

/** Assign the rows of part `part` to their nearest fitted cluster: the stored partial's bytes. */
export async function assignPartBytes(
  ctx: AnalysisContext,
  plan: ClustersPlan,
  fit: FittedSample,
  part: number
): Promise<Uint8Array> {
  if (!(part >= 0 && part + 1 < plan.bounds.length))
    throw new RangeError(`part ${part} is not one of the plan's ${plan.bounds.length - 1}`)
  const { ds, sliceRows } = await planDataset(ctx, plan)
  const start = plan.bounds[part]
  const end = plan.bounds[part + 1]
  const csr = sliceRows
    ? await readRowsInRanges(
        (a, b) => readDocumentRange(ctx.objects, ds, a, b),
        sliceRows.subarray(start, end),
        ds.manifest.documents.count,
        DEFAULT_CLUSTER_PART_DOCS
      )
    : await readDocumentRange(ctx.objects, ds, start, end)
  ctx.signal?.throwIfAborted()
  return encodeAssignPartial(assignRows(binarize(csr, fit.latentOf), fit, start))
}

/** The plan's dataset, and its slice's rows when it clustered a slice; checked against what the plan counted. */
async function planDataset(
  ctx: AnalysisContext,
  plan: ClustersPlan
): Promise<{ ds: ReadyDataset; sliceRows: Int32Array | null }> {
  const ds = await loadReadyDataset(ctx.datasets, ctx.tenant, plan.dataset, 'dataset')
  const sliceRows = plan.where
    ? ((await sliceDataset(ctx.objects, ds, parseSliceText(plan.where), 'where')).slice?.rows ?? null)
    : null
  const n = sliceRows ? sliceRows.length : ds.manifest.documents.count
  if (n !== plan.nDocs)
    throw new Error(
      `the plan clustered ${plan.nDocs} documents, ${plan.where ? 'the slice' : 'the dataset'} now has ${n}`
    )
  return { ds, sliceRows }
}

/** Central rows per cluster in an answer (the contract's "5 most central rows"). */
const CENTRAL_ROWS = 5

/**
 * The pure part: rows starting at dataset row `start` to their clusters, with their counts and each cluster's most
 * central rows of the part (cosine to the fitted centroid, the rule the rows were assigned by).
 */
export function assignRows(rows: ReturnType<typeof binarize>, fit: FittedSample, start: number): AssignPartial {
  const k = fit.counts.k
  const table = centroidTable(fit.counts)
  const assignments = assignNearest(rows, table, k, {
    rows: fit.rows,
    clusters: fit.assignments,
    offset: start
  })
  let empty = 0
  for (let i = 0; i < rows.nDocs; i++) if (rows.indptr[i + 1] === rows.indptr[i]) empty++
  const cosines = centroidCosines(rows, table, k, assignments)
  return {
    start,
    assignments,
    counts: countClusterLatents(rows, assignments, k),
    empty,
    central: centralRows(assignments, cosines, rows, start, k, CENTRAL_ROWS)
  }
}

/** Each cluster's new number: by size, largest first, ties in their old order. */
export function rankBySize(sizes: ArrayLike<number>): Int32Array {
  const order = Array.from({ length: sizes.length }, (_, c) => c).sort((a, b) => sizes[b] - sizes[a] || a - b)
  const rank = new Int32Array(sizes.length)
  order.forEach((c, r) => {
    rank[c] = r
  })
  return rank
}

/** The answer from every part's partial: assignments in dataset order, sizes, numbering and latents from the summed counts. */
export async function mergeClusterParts(
  ctx: AnalysisContext,
  plan: ClustersPlan,
  fit: FittedSample,
  partials: Array<Uint8Array | AssignPartial>
): Promise<ClustersResult> {
  const { k, nDocs } = plan
  const m = fit.latentOf.length
  const assignments = new Int32Array(nDocs)
  const counts = emptyCounts(k, m)
  // Central rows over every document when each part brought its own (a part of an older worker did not: then the fit's).
  let central: CentralRows | null = emptyCentral(k, CENTRAL_ROWS)
  let covered = 0
  let empty = 0
  for (const raw of partials) {
    const p = raw instanceof Uint8Array ? decodeAssignPartial(raw) : raw
    assignments.set(p.assignments, p.start)
    addCounts(counts, p.counts)
    central = central && p.central ? mergeCentral(central, p.central) : null
    covered += p.assignments.length
    empty += p.empty
  }
  if (covered !== nDocs) throw new Error(`the parts assigned ${covered} of ${nDocs} documents`)
  const { ds, sliceRows } = await planDataset(ctx, plan)
  const labels = await loadLabelInfo(ctx.encoders, ds.manifest.encoder.id, ds.manifest.encoder.dSae, {
    objects: ctx.objects,
    tenant: ctx.tenant,
    fingerprint: ds.manifest.encoderFingerprint
  })
  const refs = await clusterLatentRefs(
    ctx.objects,
    ds,
    describeFromCounts(counts, nDocs, fit.latentOf, labels.labels),
    labels,
    plan.dataset
  )
  // The sample numbered its clusters by its own sizes; the answer numbers them by the whole dataset's, largest first.
  const rank = rankBySize(counts.sizes)
  for (let i = 0; i < nDocs; i++) assignments[i] = rank[assignments[i]]
  const clusters: Cluster[] = new Array(k)
  plan.head.clusters.forEach((c, i) => {
    // The parts' central rows are indexes into a slice's rows: the answer names dataset rows.
    const rows =
      central &&
      Array.from(central.rows.subarray(i * CENTRAL_ROWS, (i + 1) * CENTRAL_ROWS))
        .filter(r => r >= 0)
        .map(r => (sliceRows ? sliceRows[r] : r))
    clusters[rank[i]] = {
      ...c,
      id: rank[i],
      size: counts.sizes[i],
      latents: refs[i],
      ...(rows ? { central: rows } : {})
    }
  })
  let { usage, failed } = plan.head
  if (plan.nameClusters) {
    const llm = requireLlm(ctx.llm, 'nameClusters')
    const ledger = llm.newLedger()
    failed = [...(failed ?? [])]
    await nameClusters(ctx.objects, ds, clusters, llm, ledger, failed)
    usage = addUsage(usage, ledger.summary())
  }
  return {
    ...plan.head,
    ...(usage ? { usage } : {}),
    ...(failed ? { failed } : {}),
    emptyDocuments: empty,
    seconds: (Date.now() - plan.startedAt) / 1000,
    clusters,
    ...(sliceRows ? { rows: Array.from(sliceRows) } : {}),
    assignments: Array.from(assignments)
  }
}
