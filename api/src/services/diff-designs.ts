/**
 * @module The paired and length-stratified diff designs' counts, read from the store in blocks of latents (both sides
 * at once), so that a design over large datasets holds a block, not every document's latents.
 */
import type { PairedCounts, StratumCounts } from '@latentbase/shared/analysis/diff'
import type { PooledCsc } from '@latentbase/shared/analysis/sparse'
import { readByLatent } from '@latentbase/shared/store/latent-shards/read-by-latent'
import type { AnalysisContext } from './context.ts'
import type { ReadyDataset } from './ready-dataset.ts'

/** What a design reads of a side: its dataset (or version) and where its objects are. */
type DesignSide = Pick<ReadyDataset, 'prefix' | 'manifest'>

/**
 * Entries per read of a design's blocks of latents (per side): memory stays about this, whatever the dataset's size.
 * A field, so that a test can make blocks of a few latents.
 */
export const designBlocks = { entries: 4_000_000 }

/**
 * Each block of latents with its documents on every side (dataset rows and values, from the by-latent shards: their
 * sidecars where written), the same latents on every side at once; the next block is read while this one is visited.
 */
async function forLatentBlocks(
  ctx: AnalysisContext,
  sides: DesignSide[],
  visit: (columns: PooledCsc[], start: number, end: number) => void
): Promise<void> {
  const nLatents = sides[0].manifest.encoder.dSae
  const perLatent = Math.max(
    ...sides.map(s => s.manifest.latents.byLatent.reduce((n, f) => n + f.rows, 0) / Math.max(1, nLatents))
  )
  const step = Math.max(1, Math.floor(designBlocks.entries / Math.max(1, perLatent)))
  // Two slices of one dataset version (the usual paired or stratified comparison within a dataset) share each read.
  const keyOf = (s: DesignSide) => `${s.prefix}\u0000${s.manifest.documents.count}`
  const distinct = [...new Map(sides.map(s => [keyOf(s), s])).values()]
  const read = (start: number) => {
    const range = { start, end: Math.min(nLatents, start + step) }
    const pending = Promise.all(
      distinct.map(s =>
        readByLatent(
          ctx.objects,
          s.prefix,
          s.manifest.latents.byLatent,
          range,
          { nDocs: s.manifest.documents.count, nLatents },
          { positions: false }
        )
      )
    ).then(read => sides.map(s => read[distinct.findIndex(d => keyOf(d) === keyOf(s))]))
    // Awaited on the next turn; a failure meanwhile must not count as unhandled.
    pending.catch(() => {})
    return pending
  }
  let next = read(0)
  for (let start = 0; start < nLatents; start += step) {
    const columns = await next
    if (start + step < nLatents) next = read(start + step)
    visit(columns, start, Math.min(nLatents, start + step))
  }
}

/** The paired design's counts: pair i is dataset row rowsA[i] of a with dataset row rowsB[i] of b. */
export async function pairedCountsOf(
  ctx: AnalysisContext,
  a: DesignSide,
  b: DesignSide,
  rowsA: Int32Array,
  rowsB: Int32Array
): Promise<PairedCounts> {
  const pairOf = (side: DesignSide, rows: Int32Array) => {
    const at = new Int32Array(side.manifest.documents.count).fill(-1)
    for (let i = 0; i < rows.length; i++) at[rows[i]] = i
    return at
  }
  const inA = pairOf(a, rowsA)
  const inB = pairOf(b, rowsB)
  const nLatents = a.manifest.encoder.dSae
  const counts: PairedCounts = {
    countA: new Int32Array(nLatents),
    countB: new Int32Array(nLatents),
    both: new Int32Array(nLatents),
    pairs: rowsA.length
  }
  // stamp[pair] = 1 + the latent whose documents in a last included the pair's: "present in both" per latent.
  const stamp = new Int32Array(rowsA.length)
  await forLatentBlocks(ctx, [a, b], ([ca, cb], start, end) => {
    for (let l = start; l < end; l++) {
      for (let k = ca.indptr[l]; k < ca.indptr[l + 1]; k++) {
        const pair = inA[ca.docs[k]]
        if (pair >= 0 && ca.values[k] > 0) {
          counts.countA[l]++
          stamp[pair] = l + 1
        }
      }
      for (let k = cb.indptr[l]; k < cb.indptr[l + 1]; k++) {
        const pair = inB[cb.docs[k]]
        if (pair >= 0 && cb.values[k] > 0) {
          counts.countB[l]++
          if (stamp[pair] === l + 1) counts.both[l]++
        }
      }
    }
  })
  return counts
}

/** The length-stratified design's counts: each side's documents (dataset rows) with their stratum. */
export async function stratumCountsOf(
  ctx: AnalysisContext,
  a: DesignSide,
  b: DesignSide,
  docsA: { rows: Int32Array; strata: Uint8Array },
  docsB: { rows: Int32Array; strata: Uint8Array },
  K: number
): Promise<StratumCounts> {
  const nLatents = a.manifest.encoder.dSae
  // stratum + 1 of each dataset row of the side, 0 for a row outside it.
  const stratumOf = (side: DesignSide, docs: { rows: Int32Array; strata: Uint8Array }, size: Float64Array) => {
    const at = new Uint8Array(side.manifest.documents.count)
    for (let i = 0; i < docs.rows.length; i++) {
      at[docs.rows[i]] = docs.strata[i] + 1
      size[docs.strata[i]]++
    }
    return at
  }
  const counts: StratumCounts = {
    strata: K,
    sizeA: new Float64Array(K),
    sizeB: new Float64Array(K),
    presentA: new Int32Array(nLatents * K),
    presentB: new Int32Array(nLatents * K)
  }
  const inA = stratumOf(a, docsA, counts.sizeA)
  const inB = stratumOf(b, docsB, counts.sizeB)
  const add = (c: PooledCsc, at: Uint8Array, present: Int32Array, l: number) => {
    for (let k = c.indptr[l]; k < c.indptr[l + 1]; k++) {
      const s = at[c.docs[k]]
      if (s !== 0 && c.values[k] > 0) present[l * K + s - 1]++
    }
  }
  await forLatentBlocks(ctx, [a, b], ([ca, cb], start, end) => {
    for (let l = start; l < end; l++) {
      add(ca, inA, counts.presentA, l)
      add(cb, inB, counts.presentB, l)
    }
  })
  return counts
}
