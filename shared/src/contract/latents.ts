/** @module The latent page contract (GET /latents/{latent}) and the latent reference every analysis result carries to link there. */
import { z } from 'zod'
import { LabelScore } from '../catalog/label-overlay.ts'
import { SliceParam } from './slice.ts'

export { LabelScore }

/** What an analysis result says about a latent it names: enough to show it and to open its page. */
/** What a latent fires on, read off a dataset's stored top examples (for latents without a label). */
export const LatentPeak = z.object({
  token: z
    .string()
    .describe('the token (trimmed) the latent peaks on most often among them; ties go to the better-ranked example'),
  count: z.number().int().describe('how many of the examples peak on it'),
  examples: z.number().int().describe('the examples read'),
  window: z.string().describe('the best-ranked of them as text around its peak, "...before TOKEN after..."')
})
export type LatentPeak = z.infer<typeof LatentPeak>

export const LatentRef = z.object({
  latent: z.number().int(),
  label: z.string().nullable(),
  labelSource: z
    .string()
    .nullable()
    .describe(
      'where the label came from: "imported" (no source stated), the catalog\'s word (e.g. "offline-lift", "neuronpedia"), or "llm:<model>" for a relabel; null without a label'
    ),
  labelScore: LabelScore.nullable()
    .default(null)
    .describe(
      'detection and fuzzing scores of the label (LLM labels from a relabel run; offline labels carry an offline detection score, fuzzing null); null for imported labels'
    ),
  href: z.string().describe('the latent page: /latents/{latent}?dataset=...'),
  peak: LatentPeak.nullable()
    .optional()
    .describe(
      "for a latent without a label: what it fires on in the dataset's top examples (null when none has a visible peak token); absent for labelled latents"
    )
})
export type LatentRef = z.infer<typeof LatentRef>

/** Path of a latent's page within a dataset, relative to the API root. */
export function latentHref(latent: number, dataset: string): string {
  return `/latents/${latent}?dataset=${encodeURIComponent(dataset)}`
}

/**
 * The reference to `latent` with its label, label source and page link, plus `extra` fields (frequency, weight...).
 * `labels` / `sources` are the encoder's per-latent arrays; a missing entry reads as null.
 */
export function latentRef<E extends Record<string, unknown>>(
  labels: ArrayLike<string | null> | null | undefined,
  sources: ArrayLike<string | null> | null | undefined,
  latent: number,
  extra: { dataset: string } & E,
  scores?: { detection: ArrayLike<number>; fuzzing: ArrayLike<number> } | null
): LatentRef & Omit<E, 'dataset'> {
  const { dataset, ...rest } = extra
  return {
    latent,
    label: labels?.[latent] ?? null,
    labelSource: sources?.[latent] ?? null,
    labelScore: scoreAt(scores, latent),
    href: latentHref(latent, dataset),
    ...(rest as Omit<E, 'dataset'>)
  }
}

/** Score arrays (NaN: none) at one latent, as the contract's pair or null. */
export function scoreAt(
  scores: { detection: ArrayLike<number>; fuzzing: ArrayLike<number> } | null | undefined,
  latent: number
): LabelScore | null {
  if (!scores) return null
  const d = scores.detection[latent]
  const f = scores.fuzzing[latent]
  const ok = (x: number | undefined) => x !== undefined && !Number.isNaN(x)
  if (!ok(d) && !ok(f)) return null
  return { detection: ok(d) ? Math.round(d * 1e4) / 1e4 : null, fuzzing: ok(f) ? Math.round(f * 1e4) / 1e4 : null }
}

export const LatentParams = z.object({
  latent: z.coerce.number({ error: 'latent must be a non-negative integer' }).int().nonnegative()
})

export const LatentPageQuery = z.object({
  dataset: z.string({ error: 'dataset is required: the id of the dataset whose examples to show' }).min(1),
  examples: z.coerce
    .number()
    .int()
    .min(0)
    .max(100)
    .optional()
    .describe("top examples to return (default: all stored, the dataset's perLatent)"),
  text: z
    .enum(['true', 'false'])
    .transform(v => v === 'true')
    .default(false)
    .describe("include each example document's full text (tokens and activations are always included)"),
  where: SliceParam.optional().describe(
    'a slice of the dataset (docs/slices.md): statistics over its documents only, and the stored top examples that fall in it'
  )
})
export type LatentPageQuery = z.infer<typeof LatentPageQuery>

export const TopExample = z.object({
  row: z.number().int().describe('dataset row of the document'),
  id: z.string().describe('the document id given at upload'),
  rank: z.number().int().describe('0 for the document where the latent fires most'),
  value: z.number().describe("max activation of the latent over the document's tokens"),
  text: z.string().optional(),
  tokens: z.array(z.string()).describe('a window of tokens around the max'),
  activations: z
    .array(z.number())
    .describe("the latent's activation on each token of the window (same length as tokens)"),
  position: z.number().int().describe('token position of the max in the document'),
  windowStart: z.number().int().describe('token position of tokens[0]; the max is tokens[position - windowStart]')
})
export type TopExample = z.infer<typeof TopExample>

export const LatentPage = z.object({
  latent: z.number().int(),
  label: z.string().nullable(),
  labelSource: z.string().nullable(),
  labelScore: LabelScore.nullable().default(null),
  encoder: z.string(),
  dataset: z.string(),
  where: z
    .string()
    .optional()
    .describe('the slice the page describes (canonical text form); absent for the whole dataset'),
  sliceDocuments: z.number().int().optional().describe('documents in the slice'),
  frequency: z.number().describe("share of the dataset's (or slice's) documents where the latent is present"),
  documents: z.number().int().describe('documents where the latent is present'),
  mean: z.number().nullable().describe('mean pooled value over the documents where it is present'),
  p90: z
    .number()
    .nullable()
    .describe('90th percentile of the pooled value where present (from the histogram: within one bin)'),
  max: z.number(),
  histogram: z.object({
    edges: z.array(z.number()).describe('bin edges (log-spaced); bin i is [edges[i], edges[i+1])'),
    counts: z.array(z.number().int()).describe('documents per bin, edges.length - 1 entries'),
    underflow: z.number().int().describe('present values below edges[0]'),
    overflow: z.number().int().describe('values at or above the last edge')
  }),
  topExamples: z.array(TopExample),
  sliceStrongest: z
    .array(
      z.object({
        row: z.number().int(),
        id: z.string(),
        value: z.number().describe('pooled value of the latent in the document'),
        position: z.number().int().describe('token position of the max (-1 when unknown)'),
        text: z.string().optional()
      })
    )
    .optional()
    .describe(
      "a slice only: the slice's documents where the latent is strongest (pooled value, ties to the lower row), as many as `examples` asks (5 by default). The top examples with token windows are the whole dataset's, so a slice may hold few of them; these come from the latent's own by-latent pages, without windows"
    )
})
export type LatentPage = z.infer<typeof LatentPage>
export const LatentIntervalsQuery = z.object({
  dataset: z.string({ error: 'dataset is required: the id of the dataset whose documents to sample' }).min(1),
  intervals: z.coerce
    .number()
    .int()
    .min(2)
    .max(20)
    .default(5)
    .describe("equal-width intervals of the pooled value over (0, the latent's max]"),
  perInterval: z.coerce.number().int().min(1).max(10).default(3).describe('documents sampled from each interval'),
  seed: z.coerce
    .number()
    .int()
    .min(0)
    .max(2_147_483_647)
    .default(0)
    .describe('the sample (the same seed, the same documents)'),
  where: SliceParam.optional().describe('a slice of the dataset (docs/slices.md): its documents only')
})
export type LatentIntervalsQuery = z.infer<typeof LatentIntervalsQuery>

export const IntervalExample = z.object({
  row: z.number().int().describe('dataset row of the document'),
  id: z.string().describe('the document id given at upload'),
  value: z.number().describe('pooled value of the latent in the document'),
  position: z.number().int().describe('token position of the max in the document (-1 when unknown)'),
  tokens: z
    .array(z.string())
    .nullable()
    .describe(
      'a window of tokens around the max, re-encoded; null where this deployment holds no encoder (see windows)'
    ),
  activations: z.array(z.number()).nullable().describe("the latent's activation on each token of the window"),
  snippet: z.string().describe("the start of the document's text (for documents without a window)")
})
export type IntervalExample = z.infer<typeof IntervalExample>

export const LatentIntervals = z.object({
  latent: z.number().int(),
  label: z.string().nullable(),
  encoder: z.string(),
  dataset: z.string(),
  where: z.string().optional().describe('the slice sampled (canonical text form); absent for the whole dataset'),
  documents: z.number().int().describe('documents (of the slice) where the latent is present'),
  max: z.number().describe('the largest pooled value among them'),
  windows: z
    .boolean()
    .describe(
      "whether the examples carry token windows: the documents are re-encoded by the dataset's encoder, which only a process holding it can do (the local server; not a Worker or Lambda)"
    ),
  intervals: z
    .array(
      z.object({
        from: z.number().describe('exclusive lower bound of the pooled value'),
        to: z.number().describe('inclusive upper bound'),
        documents: z.number().int().describe('documents whose pooled value falls in the interval'),
        examples: z.array(IntervalExample).describe('a seeded uniform sample of them, strongest first')
      })
    )
    .describe('highest first')
})
export type LatentIntervals = z.infer<typeof LatentIntervals>

/** Documents a sliced latent page lists as the slice's strongest when `examples` is not given. */
export const SLICE_STRONGEST_DEFAULT = 5

/** Latents a label query ranks at most (the closest labels; `total` counts those present in the dataset). */
export const LATENT_LIST_MATCHES = 2000

export const LATENT_LIST_SORTS = ['frequent', 'rare', 'max', 'mean', 'npmi'] as const

export const LatentListQuery = z.object({
  dataset: z.string({ error: 'dataset is required: the id of the dataset whose latents to list' }).min(1),
  q: z
    .string()
    .trim()
    .min(1)
    .max(500)
    .optional()
    .describe(
      "rank by how close each latent's label is to this text (the label embedder), best first; unlabelled latents never match. Without q: every latent present in the dataset, most frequent first"
    ),
  where: SliceParam.optional().describe(
    "a slice of the dataset (docs/slices.md): the latents present in its documents, with the slice's frequencies, means and maxima"
  ),
  sort: z
    .enum(LATENT_LIST_SORTS)
    .default('frequent')
    .describe(
      'without q, the order of the latents present: most frequent first (default), rarest first, largest max first, largest mean (over the documents where present) first, or (with where) most tied to the slice first (npmi); ties by latent id'
    ),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0)
})
export type LatentListQuery = z.input<typeof LatentListQuery>

export const LatentListItem = LatentRef.extend({
  frequency: z.number().describe("share of the dataset's (or slice's) documents where the latent is present"),
  documents: z.number().int().describe('documents where the latent is present'),
  mean: z.number().nullable().describe('mean pooled value over those documents (null when absent)'),
  max: z.number().describe('largest pooled value'),
  similarity: z.number().nullable().describe("with q: cosine of the latent's label to q; without q: null"),
  npmi: z
    .number()
    .nullable()
    .optional()
    .describe(
      "with where: normalized PMI of the latent and the slice over the dataset's documents, ln(p(slice, latent) / (p(slice) p(latent))) / -ln p(slice, latent): 1 when it fires in the slice's documents and nowhere else, 0 when independent of it; absent without where"
    )
})
export type LatentListItem = z.infer<typeof LatentListItem>

export const LatentList = z.object({
  dataset: z.string(),
  where: z.string().optional().describe('the slice listed (canonical text form); absent for the whole dataset'),
  encoder: z.string(),
  documents: z.number().int().describe("the dataset's (or slice's) documents"),
  q: z.string().optional(),
  sort: z.enum(LATENT_LIST_SORTS).optional().describe('the order of a list without q'),
  embedder: z.string().nullable().describe('the embedder that matched q to labels (null without q)'),
  total: z
    .number()
    .int()
    .describe(
      `latents in the whole list: present in the dataset or slice (with q: among the ${LATENT_LIST_MATCHES} closest labels)`
    ),
  offset: z.number().int(),
  limit: z.number().int(),
  latents: z.array(LatentListItem)
})
export type LatentList = z.infer<typeof LatentList>
