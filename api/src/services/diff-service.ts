/** @module Loads what a diff needs from the store (counts; for paired and stratified designs, their counts by block of latents) and runs the pure analysis. */
import type { DiffLatent, DiffQuery, DiffResult } from '@latentbase/shared/contract/diff'
import { readByDocument } from '@latentbase/shared/store/latent-shards/read-by-document'
import { readDocuments } from '@latentbase/shared/store/documents/read'
import { readLatentStats } from '@latentbase/shared/store/stats/read'
import { diffLatents, diffPairedCounts, diffStratifiedCounts, lengthStrata } from '@latentbase/shared/analysis/diff'
import { pairedCountsOf, stratumCountsOf } from './diff-designs.ts'
import { presenceCountsOfRows } from '@latentbase/shared/analysis/slice'
import { slicePresenceCounts } from '@latentbase/shared/store/latent-shards/slice-counts'
import { restOfSlice, sliceToText } from '@latentbase/shared/contract/slice'
import type { AnalysisContext } from './context.ts'
import { scoreAt } from '@latentbase/shared/contract/latents'
import type { LabelInfo } from '@latentbase/shared/catalog/label-overlay'
import { ApiError } from '../problem.ts'
import { loadLabelInfo } from './latent-page-service.ts'
import { loadReadyDataset } from './ready-dataset.ts'
import { readPeaks } from './latent-peaks.ts'
import { checkSliceFor, facetSliceCounts, sliceDataset, type SlicedDataset } from './slice-service.ts'

type Slice = NonNullable<DiffQuery['aWhere']>
/**
 * A diff's side: a dataset or a slice of it, with its documents and tokens. A slice on one faceted metadata key comes
 * with its presence counts from the facets and no rows; other slices have their rows.
 */
type Side = Omit<SlicedDataset, 'slice'> & {
  slice?: { where: Slice; text: string; rows?: Int32Array }
  documents: number
  tokens: number
  counts?: Int32Array
}

/** `facets`: the design counts presence only (the independent one), so a slice the facets answer needs no rows. */
async function loadSide(
  ctx: AnalysisContext,
  id: string,
  where: Slice | undefined,
  param: string,
  facets: boolean
): Promise<Side> {
  const ready = await loadReadyDataset(ctx.datasets, ctx.tenant, id, param.replace('Where', ''))
  if (where && facets) {
    checkSliceFor(ready, where, param)
    const counted = await facetSliceCounts(ctx.objects, ready, where)
    if (counted) {
      const { docs, tokens, counts } = counted
      return { ...ready, slice: { where, text: sliceToText(where) }, documents: docs, tokens, counts }
    }
  }
  const ds = await sliceDataset(ctx.objects, ready, where, param)
  if (!ds.slice) return { ...ds, documents: ds.manifest.documents.count, tokens: ds.manifest.documents.tokens }
  // The slice's own token total (its mean length is part of the result), from the token_count pages of its rows.
  const rows = ds.slice.rows
  const docs = rows.length
    ? await readDocuments(ctx.objects, ds.prefix, ds.manifest.documents.files, rows, ['token_count'])
    : { token_count: new Int32Array(0) }
  let tokens = 0
  for (const t of docs.token_count) tokens += t
  return { ...ds, documents: rows.length, tokens }
}

function sideInfo(s: Side) {
  const n = s.documents
  return {
    id: s.record.id,
    name: s.record.name,
    documents: n,
    meanTokens: n ? s.tokens / n : 0,
    ...(s.slice ? { where: s.slice.text } : {})
  }
}

/**
 * Per-latent presence counts of each side: the stats file for a whole dataset; for a slice the facets answered, their
 * counts; for other slices, one pass over the dataset's by-latent sidecars shared by its slices (bounded chunks), else
 * one read of the by-document shards over their span.
 */
async function sideCounts(ctx: AnalysisContext, sides: Side[]): Promise<Int32Array[]> {
  // Slices of the same dataset version are counted together.
  const groups = new Map<string, Side[]>()
  for (const s of sides) {
    if (!s.slice?.rows?.length) continue
    const key = `${s.prefix}\u0000${s.manifest.documents.count}`
    const group = groups.get(key)
    if (group) group.push(s)
    else groups.set(key, [s])
  }
  const sliceCounts = new Map<Side, Int32Array>()
  await Promise.all(
    [...groups.values()].map(async group => {
      const { manifest, prefix } = group[0]
      const slices = group.map(s => s.slice!.rows!)
      const nLatents = manifest.encoder.dSae
      let counts = await slicePresenceCounts(ctx.objects, prefix, manifest.latents.byLatent, slices, {
        nDocs: manifest.documents.count,
        nLatents
      })
      if (!counts) {
        const start = Math.min(...slices.map(rows => rows[0]))
        const end = Math.max(...slices.map(rows => rows[rows.length - 1] + 1))
        const csr = await readByDocument(ctx.objects, prefix, manifest.latents.byDocument, { start, end }, { nLatents })
        counts = slices.map(rows => presenceCountsOfRows(csr, rows))
      }
      for (const [i, s] of group.entries()) sliceCounts.set(s, counts[i])
    })
  )
  return Promise.all(
    sides.map(async s => {
      if (s.counts) return s.counts
      if (!s.slice) return (await readLatentStats(ctx.objects, s.prefix + s.manifest.stats.key, ['doc_count'])).docCount
      return sliceCounts.get(s) ?? new Int32Array(s.manifest.encoder.dSae)
    })
  )
}

/** Rows of a documents read (ascending `row`) at the given dataset rows, as indexes into its columns. */
function indexesOf(docRows: Int32Array, rows: Int32Array): Int32Array {
  const out = new Int32Array(rows.length)
  let j = 0
  for (let i = 0; i < rows.length; i++) {
    while (j < docRows.length && docRows[j] < rows[i]) j++
    if (docRows[j] !== rows[i]) throw new Error(`document row ${rows[i]} is missing from the documents shards`)
    out[i] = j
  }
  return out
}

export async function runDiff(ctx: AnalysisContext, q: DiffQuery): Promise<DiffResult> {
  // No bWhere at all: a b that is a's own dataset is the rest of it (an empty bWhere= still takes the whole).
  const bWhere = q.bWhere ?? (q.aWhere && q.b.includes(q.a) ? q.b.map(b => restOfSlice(q.a, q.aWhere, b)) : [])
  if (bWhere.length && bWhere.length !== q.b.length) {
    throw new ApiError(
      400,
      'invalid-request',
      `bWhere is given ${bWhere.length} time(s) for ${q.b.length} b dataset(s): give one bWhere per b, in the same order (an empty bWhere= takes the whole dataset)`
    )
  }
  const textOf = (w: Slice | undefined) => (w ? sliceToText(w) : '')
  const same = q.b.findIndex((b, i) => b === q.a && textOf(bWhere[i]) === textOf(q.aWhere))
  if (same >= 0) {
    throw new ApiError(
      400,
      'invalid-request',
      q.aWhere || bWhere[same]
        ? `a and b[${same}] are the same slice of dataset "${q.a}": give them different aWhere / bWhere`
        : `dataset "${q.a}" is both a and b; to compare parts of one dataset, give aWhere and bWhere slices`
    )
  }
  if (q.minFrequency > q.maxFrequency)
    throw new ApiError(
      400,
      'invalid-request',
      `minFrequency (${q.minFrequency}) is above maxFrequency (${q.maxFrequency})`
    )
  if ((q.pairBy || q.controlLength) && q.b.length > 1) {
    throw new ApiError(
      400,
      'invalid-request',
      `${q.pairBy ? 'pairBy' : 'controlLength'} compares a with exactly one b; got ${q.b.length}`
    )
  }
  if (q.pairBy && q.controlLength)
    throw new ApiError(400, 'invalid-request', 'choose either pairBy or controlLength, not both')

  const facets = !q.pairBy && !q.controlLength
  const a = await loadSide(ctx, q.a, q.aWhere, 'aWhere', facets)
  const bs = await Promise.all(
    q.b.map((id, i) => loadSide(ctx, id, bWhere[i], bWhere.length > 1 ? `bWhere[${i}]` : 'bWhere', facets))
  )
  for (const b of bs) {
    if (b.manifest.encoderFingerprint !== a.manifest.encoderFingerprint) {
      throw new ApiError(
        409,
        'encoder-mismatch',
        `datasets were encoded differently and cannot be compared: "${a.record.id}" with ${a.manifest.encoder.id} (${a.manifest.encoderFingerprint.slice(0, 12)}, pooling ${a.manifest.pooling.method}) and "${b.record.id}" with ${b.manifest.encoder.id} (${b.manifest.encoderFingerprint.slice(0, 12)}, pooling ${b.manifest.pooling.method}); re-encode one of them with the other's encoder and pooling`
      )
    }
  }
  const nLatents = a.manifest.encoder.dSae
  if (q.latents) {
    const bad = q.latents.find(l => l >= nLatents)
    if (bad !== undefined)
      throw new ApiError(
        400,
        'invalid-request',
        `latent ${bad} does not exist: encoder ${a.manifest.encoder.id} has latents 0-${nLatents - 1}`
      )
  }
  const info = await loadLabelInfo(ctx.encoders, a.manifest.encoder.id, nLatents, {
    objects: ctx.objects,
    tenant: ctx.tenant,
    fingerprint: a.manifest.encoderFingerprint
  })
  const labels = info.labels
  const scored = <T extends { latent: number; label: string | null }>(latents: T[]) => withLabelScores(latents, info)
  const options = {
    limit: q.limit,
    minFrequency: q.minFrequency,
    maxFrequency: q.maxFrequency,
    metric: q.metric,
    direction: q.direction,
    latents: q.latents
  }
  const base = { a: sideInfo(a), b: bs.map(sideInfo), encoder: a.manifest.encoder.id, metric: q.metric }
  const finish = async (result: DiffResult): Promise<DiffResult> => ({
    ...result,
    latents: await diffPeaks(ctx, result.latents, [a, ...bs], q.peaks)
  })

  if (q.pairBy || q.controlLength) {
    // Paired and stratified designs need one documents column of each side, then each latent's documents on both
    // sides together: read in blocks of latents, so memory stays bounded whatever the datasets' sizes.
    const b = bs[0]
    const column = q.pairBy ? 'metadata' : 'token_count'
    // Two slices of one dataset version read its column once.
    const sameVersion = a.prefix === b.prefix && a.manifest.documents.count === b.manifest.documents.count
    const readColumn = (s: Side) =>
      readDocuments(ctx.objects, s.prefix, s.manifest.documents.files, undefined, [column])
    const [docsA, docsB] = await Promise.all([readColumn(a), sameVersion ? null : readColumn(b)])
    // A slice keeps its rows only: the designs then run on them as if the slice were its own dataset.
    const restrict = <T extends { row: Int32Array }>(side: Side, docs: T): T => {
      if (!side.slice) return docs
      const at = indexesOf(docs.row, side.slice.rows!)
      return Object.fromEntries(
        Object.entries(docs).map(([k, col]) => [
          k,
          Array.isArray(col) ? Array.from(at, i => col[i]) : Int32Array.from(at, i => (col as Int32Array)[i])
        ])
      ) as unknown as T
    }
    const A = restrict(a, docsA)
    const B = restrict(b, docsB ?? docsA)
    if (q.pairBy) {
      const { rowsA, rowsB } = matchPairs(
        (A as unknown as { metadata: string[] }).metadata,
        (B as unknown as { metadata: string[] }).metadata,
        q.pairBy
      )
      if (rowsA.length === 0) {
        throw new ApiError(
          422,
          'no-pairs',
          `no document of "${a.record.id}" shares a metadata "${q.pairBy}" value with a document of "${b.record.id}"; was "${q.pairBy}" listed in metadataFields when the datasets were created?`
        )
      }
      const counts = await pairedCountsOf(
        ctx,
        a,
        b,
        rowsA.map(i => A.row[i]),
        rowsB.map(i => B.row[i])
      )
      const out = diffPairedCounts({ counts, labels, against: b.record.id, options })
      return finish({
        ...base,
        design: 'paired',
        pairs: rowsA.length,
        tested: out.tested,
        latents: scored(out.latents)
      })
    }
    const tokensOf = (docs: typeof A) =>
      Int32Array.from((docs as { token_count: ArrayLike<number> }).token_count, Number)
    const K = 5
    const { strataA, strataB } = lengthStrata(tokensOf(A), tokensOf(B), K)
    const counts = await stratumCountsOf(
      ctx,
      a,
      b,
      { rows: A.row, strata: strataA },
      { rows: B.row, strata: strataB },
      K
    )
    const out = diffStratifiedCounts({ counts, labels, against: b.record.id, options })
    return finish({ ...base, design: 'length-stratified', tested: out.tested, latents: scored(out.latents) })
  }
  const counts = await sideCounts(ctx, [a, ...bs])
  const out = diffLatents({
    a: { id: a.record.id, name: a.record.name, documents: a.documents, counts: counts[0] },
    b: bs.map((s, i) => ({ id: s.record.id, name: s.record.name, documents: s.documents, counts: counts[i + 1] })),
    labels,
    options
  })
  return finish({ ...base, design: 'independent', tested: out.tested, latents: scored(out.latents) })
}

/**
 * Each latent `peaks` asks for, with what it peaks on in the top examples of the side where it is more frequent
 * (a for a difference >= 0, else the b it is against): one read of each side's examples file for all its latents.
 */
async function diffPeaks(
  ctx: AnalysisContext,
  latents: DiffLatent[],
  sides: Side[],
  peaks: DiffQuery['peaks']
): Promise<DiffLatent[]> {
  if (peaks === 'none') return latents
  const described = (l: DiffLatent) => peaks === 'all' || !l.label
  const sideOf = (l: DiffLatent) => (l.difference >= 0 ? 0 : 1 + (l.againstIndex ?? 0))
  const found = await Promise.all(
    sides.map((s, i) =>
      readPeaks(
        ctx.objects,
        s,
        latents.filter(l => described(l) && sideOf(l) === i).map(l => l.latent)
      )
    )
  )
  return latents.map(l => {
    if (!described(l)) return l
    const peak = found[sideOf(l)].get(l.latent)
    return { ...l, peak: peak ? { dataset: sides[sideOf(l)].record.id, ...peak } : null }
  })
}

/** Each latent with its label's source and scores (the label itself is already the merged one). */
function withLabelScores<T extends { latent: number; label: string | null }>(
  latents: T[],
  info: LabelInfo
): Array<T & { labelSource: string | null; labelScore: ReturnType<typeof scoreAt> }> {
  return latents.map(l => ({
    ...l,
    labelSource: l.label == null ? null : (info.sources[l.latent] ?? 'imported'),
    labelScore: scoreAt(info, l.latent)
  }))
}

/** Rows of A and B whose metadata[field] values match; values that repeat within a dataset are ambiguous and left out. */
export function matchPairs(
  metaA: ArrayLike<unknown>,
  metaB: ArrayLike<unknown>,
  field: string
): { rowsA: Int32Array; rowsB: Int32Array } {
  const index = (meta: ArrayLike<unknown>) => {
    const rows = new Map<string, number>()
    const repeated = new Set<string>()
    for (let i = 0; i < meta.length; i++) {
      const m = typeof meta[i] === 'string' ? JSON.parse(meta[i] as string) : meta[i]
      const v = m && typeof m === 'object' ? (m as Record<string, unknown>)[field] : undefined
      if (v === undefined || v === null) continue
      const key = typeof v === 'string' ? v : JSON.stringify(v)
      if (rows.has(key)) repeated.add(key)
      else rows.set(key, i)
    }
    for (const k of repeated) rows.delete(k)
    return rows
  }
  const ia = index(metaA)
  const ib = index(metaB)
  const rowsA: number[] = []
  const rowsB: number[] = []
  for (const [key, row] of ia) {
    const other = ib.get(key)
    if (other !== undefined) {
      rowsA.push(row)
      rowsB.push(other)
    }
  }
  return { rowsA: Int32Array.from(rowsA), rowsB: Int32Array.from(rowsB) }
}
