/** @module The diff contract: query parameters and result of GET /diff. */
import { z } from 'zod'
import { LabelScore } from '../catalog/label-overlay.ts'
import { LatentPeak } from './latents.ts'
import { parseSliceParam, SliceError, SLICE_MAX_TEXT, type Slice } from './slice.ts'

const csvInts = z
  .string()
  .regex(/^\d+(,\d+)*$/, 'a comma-separated list of latent ids, e.g. 12,40,977')
  .transform(s => s.split(',').map(Number))

export const DiffQuery = z.object({
  a: z.string({ error: 'a is required: the dataset id to compare' }).min(1),
  b: z
    .union([z.string().min(1), z.array(z.string().min(1)).min(1)], {
      error: 'b is required: the dataset id(s) to compare against (repeat b=... for several)'
    })
    .transform(b => (Array.isArray(b) ? b : [b])),
  limit: z.coerce.number().int().min(1).max(5000).default(50),
  minFrequency: z.coerce.number().min(0).max(1).default(0),
  maxFrequency: z.coerce.number().min(0).max(1).default(1),
  metric: z.enum(['absolute', 'relative']).default('absolute'),
  direction: z.enum(['a', 'b', 'both']).default('a'),
  latents: csvInts.optional(),
  pairBy: z.string().min(1).optional(),
  controlLength: z
    .enum(['true', 'false'])
    .transform(v => v === 'true')
    .optional(),
  aWhere: z
    .string()
    .max(SLICE_MAX_TEXT)
    .optional()
    .transform((v, ctx) => sliceOrIssue(v, ctx, []))
    .describe('a slice of a (text or JSON form, see docs/slices.md): only its documents are compared'),
  bWhere: z
    .union([z.string().max(SLICE_MAX_TEXT), z.array(z.string().max(SLICE_MAX_TEXT))])
    .optional()
    .transform((v, ctx) =>
      v === undefined ? undefined : (Array.isArray(v) ? v : [v]).map((s, i) => sliceOrIssue(s, ctx, [i]))
    )
    .describe(
      "slices of the b datasets, one per b in the same order (an empty bWhere= takes the whole dataset); without any bWhere, a b that is a's own dataset with aWhere given is the rest of it (not aWhere)"
    ),
  peaks: z
    .enum(['unlabelled', 'all', 'none'])
    .default('unlabelled')
    .describe(
      'which latents get a `peak` (what they fire on, read off the stored top examples): those without a label (default), all, or none (the diff then reads statistics only)'
    )
})
export type DiffQuery = z.infer<typeof DiffQuery>

export const DiffSide = z.object({
  id: z.string(),
  name: z.string(),
  documents: z.number().int(),
  meanTokens: z.number(),
  where: z.string().optional().describe('the slice compared (canonical text form); absent for the whole dataset')
})

/** Parse one query-string slice, turning its problems into zod issues at `path` (so a 400 names the parameter). */
/** `path` is below the parameter (zod puts the parameter's name in front): [] for aWhere, [i] for the i-th bWhere. */
function sliceOrIssue(v: string | undefined, ctx: z.RefinementCtx, path: (string | number)[]): Slice | undefined {
  if (v === undefined) return undefined
  try {
    return parseSliceParam(v)
  } catch (e) {
    if (!(e instanceof SliceError)) throw e
    for (const i of e.issues) ctx.addIssue({ code: 'custom', message: i.message, path: [...path, ...i.path] })
    return undefined
  }
}

export const DiffPeak = LatentPeak.extend({
  dataset: z
    .string()
    .describe('the dataset whose top examples were read: a when the difference is >= 0, else the b it is against')
})
export type DiffPeak = z.infer<typeof DiffPeak>

export const DiffTest = z.enum(['fisher', 'z', 'mcnemar', 'cmh'])

export const DiffLatent = z.object({
  latent: z.number().int(),
  label: z.string().nullable(),
  labelSource: z
    .string()
    .nullable()
    .optional()
    .describe(
      '"imported", the catalog\'s word (e.g. "offline-lift"), or "llm:<model>" for a relabel; null without a label'
    ),
  labelScore: LabelScore.nullable()
    .optional()
    .describe(
      'detection and fuzzing scores of the label; null for imported labels (offline labels carry an offline detection score, fuzzing null) (always sent by this server; optional for older ones)'
    ),
  frequencyA: z.number(),
  frequencyB: z.number(),
  countA: z.number().int(),
  countB: z.number().int(),
  against: z.string().describe('the b dataset with the highest frequency of this latent'),
  againstIndex: z.number().int().optional().describe('its index in b (tells apart two slices of one dataset)'),
  difference: z.number().describe('frequencyA - frequencyB (absolute) or that over max(fA, fB) (relative)'),
  ci95: z.tuple([z.number(), z.number()]).describe('95% interval on frequencyA - frequencyB'),
  pValue: z.number(),
  qValue: z.number().nullable().describe('Benjamini-Hochberg over the latents passing the coverage masks'),
  test: DiffTest,
  peak: DiffPeak.nullable()
    .optional()
    .describe(
      "what the latent fires on in the dataset where it is more frequent (the whole dataset's top examples, also for a slice); null when it has no stored examples with a visible peak token; absent when `peaks` leaves it out"
    )
})
export type DiffLatent = z.infer<typeof DiffLatent>

export const DiffResult = z.object({
  a: DiffSide,
  b: z.array(DiffSide),
  encoder: z.string(),
  metric: z.enum(['absolute', 'relative']),
  design: z.enum(['independent', 'paired', 'length-stratified']),
  pairs: z.number().int().optional().describe('paired designs: documents matched by pairBy'),
  tested: z.number().int().describe('latents that passed the coverage masks (the BH family)'),
  latents: z.array(DiffLatent)
})
export type DiffResult = z.infer<typeof DiffResult>
