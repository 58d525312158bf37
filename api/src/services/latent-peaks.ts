/** @module What latents without a label fire on, read off a dataset's stored top examples: the `peak` of diffs, correlations and clusters. */
import type { LatentPeak } from '@latentbase/shared/contract/latents'
import type { Manifest } from '@latentbase/shared/contract/manifest'
import type { ObjectStore } from '@latentbase/shared/store/object-store'
import { firingSummary } from '@latentbase/shared/analysis/firing-summary'
import { readExamplesOfLatents } from '@latentbase/shared/store/top-examples/read'

/** A dataset (or version) whose top examples to read. */
export interface PeakSource {
  prefix: string
  manifest: Pick<Manifest, 'topExamples'>
}

/**
 * Each of `latents` with its peak in the dataset's top examples, or null (no stored examples of it, none with a
 * visible peak token, or a dataset written without top examples). One read of the examples file for all of them.
 */
export async function readPeaks(
  objects: ObjectStore,
  ds: PeakSource,
  latents: Iterable<number>
): Promise<Map<number, LatentPeak | null>> {
  const wanted = [...new Set(latents)]
  const out = new Map<number, LatentPeak | null>(wanted.map(l => [l, null]))
  if (!wanted.length || !ds.manifest.topExamples) return out
  const found = await readExamplesOfLatents(objects, ds.prefix + ds.manifest.topExamples.key, wanted)
  for (const [latent, ex] of found) {
    const windows = Array.from(ex.doc, (_, i) => ({
      tokens: ex.tokens[i],
      position: ex.position[i],
      windowStart: ex.windowStart[i]
    }))
    out.set(latent, firingSummary(windows))
  }
  return out
}

/**
 * `refs` with a `peak` on each latent without a label (labelled ones as they are), from one read of the dataset's
 * examples for all of them.
 */
export async function withPeaks<T extends { latent: number; label: string | null }>(
  objects: ObjectStore,
  ds: PeakSource,
  refs: readonly T[]
): Promise<Array<T & { peak?: LatentPeak | null }>> {
  const peaks = await readPeaks(
    objects,
    ds,
    refs.filter(r => !r.label).map(r => r.latent)
  )
  return refs.map(r => (r.label ? r : { ...r, peak: peaks.get(r.latent) ?? null }))
}
