/** @module The drift report: what a dataset's watch found when a version landed (the body of a dataset.drift webhook). */
import { z } from 'zod'
import { DiffLatent } from './diff.ts'
import { Watch } from './version-info.ts'

export const DriftReport = z.object({
  dataset: z.string().describe('the dataset id'),
  version: z.number().int().describe('the version that landed: its batch is side a of the diff'),
  baseline: z.number().int().describe('the version whose batch is side b'),
  documents: z.object({ version: z.number().int(), baseline: z.number().int() }),
  watch: Watch,
  tested: z.number().int().describe('latents compared (the Benjamini-Hochberg family)'),
  moved: z
    .array(DiffLatent)
    .describe(
      'latents whose |difference| >= minDifference and qValue <= maxQValue, largest change first; empty: none moved'
    )
})
export type DriftReport = z.infer<typeof DriftReport>
