/**
 * @module Drift: the diff of a new batch (a dataset version) against a baseline batch, cut down to the latents that
 * moved by a watch's thresholds. The diff core does the statistics (diffLatents: Fisher or z test, Newcombe interval,
 * Benjamini-Hochberg q-values); with watched latents the BH family is those latents only.
 */
import type { DiffLatent } from '../contract/diff.ts'
import type { Watch } from '../contract/version-info.ts'
import { diffLatents } from './diff.ts'

export interface DriftSide {
  id: string
  documents: number
  counts: Int32Array
}

export interface DriftOutput {
  tested: number
  moved: DiffLatent[]
}

/** Latents present in `batch` at another frequency than in `baseline`, by the watch's minDifference and maxQValue. */
export function detectDrift(input: {
  batch: DriftSide
  baseline: DriftSide
  watch: Pick<Watch, 'latents' | 'minDifference' | 'maxQValue'>
  labels: ArrayLike<string | null | undefined>
}): DriftOutput {
  const { batch, baseline, watch, labels } = input
  const nLatents = batch.counts.length
  // Watched latents: compact the counts to those, so that the tests' family (and so the q-values) is theirs alone.
  const ids = watch.latents ? Int32Array.from(new Set(watch.latents.filter(l => l < nLatents))).sort() : null
  const take = (c: Int32Array) => (ids ? Int32Array.from(ids, l => c[l]) : c)
  const out = diffLatents({
    a: { id: batch.id, name: batch.id, documents: batch.documents, counts: take(batch.counts) },
    b: [{ id: baseline.id, name: baseline.id, documents: baseline.documents, counts: take(baseline.counts) }],
    labels: ids ? Array.from(ids, l => labels[l]) : labels,
    options: {
      limit: ids ? ids.length : nLatents,
      minFrequency: 0,
      maxFrequency: 1,
      metric: 'absolute',
      direction: 'both'
    }
  })
  const moved = out.latents
    .filter(l => Math.abs(l.difference) >= watch.minDifference && l.qValue !== null && l.qValue <= watch.maxQValue)
    .map(l => (ids ? { ...l, latent: ids[l.latent] } : l))
  return { tested: out.tested, moved }
}
