/** @module What a dataset record says of its versions (no imports from dataset.ts): the per-version counts and the drift watch. */
import { z } from 'zod'

export const Watch = z
  .object({
    against: z
      .union([z.literal('previous'), z.number().int().min(1)])
      .describe(
        'the baseline: "previous" (the batch the version before added) or a version number (the batch that version added)'
      ),
    latents: z
      .array(z.number().int().nonnegative())
      .min(1)
      .max(1000)
      .optional()
      .describe('watch only these latents (default: every latent)'),
    minDifference: z
      .number()
      .min(0)
      .max(1)
      .default(0.05)
      .describe('a latent moved when |frequency in the new batch - frequency in the baseline| is at least this'),
    maxQValue: z.number().gt(0).max(1).default(0.05).describe('... and its Benjamini-Hochberg q-value is at most this')
  })
  .strict()
export type Watch = z.infer<typeof Watch>

/** One version of a dataset: the rows its batch added (rows are stable: a batch continues the numbering). */
export const VersionInfo = z.object({
  version: z.number().int().min(1),
  documents: z
    .object({ start: z.number().int().nonnegative(), count: z.number().int().nonnegative() })
    .describe('rows [start, start + count) are the documents this version added'),
  tokens: z.number().int().nonnegative(),
  createdAt: z.string()
})
export type VersionInfo = z.infer<typeof VersionInfo>
